"""Dispensing: what a fill decides and prints, as pure domain code."""
