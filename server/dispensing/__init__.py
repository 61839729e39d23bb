"""Remote dispensing: the fill, product check, label, pick-up and inventory of the hub."""
