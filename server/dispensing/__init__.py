"""Dispensing: fills, the product check, will-call and pick-up (docs/dispensing.md)."""
