"""Dispensing: the pure rules of filling a prescription (stock, product identification)."""
