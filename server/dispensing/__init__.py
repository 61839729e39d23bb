"""Remote dispensing: fills, product checks, labels, will-call and stock, over the pure domain
in ``eprescribe.dispensing``."""
