"""Remote dispensing: filling an approved prescription at a remote site, the product images
the technician takes while filling, and the pharmacist's check of the product at a distance."""
