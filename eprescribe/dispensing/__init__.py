"""Remote dispensing (pure domain code): identifying the product a technician fills from."""
