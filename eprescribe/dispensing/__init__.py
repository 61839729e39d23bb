"""Remote dispensing as pure domain code: the fill, the product it is filled from, the label."""
