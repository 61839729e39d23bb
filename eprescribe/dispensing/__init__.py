"""Dispensing: fills of approved prescriptions, the product check, labels and pick-up."""
