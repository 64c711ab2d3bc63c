"""One module per scheduling provider: verify and parse its webhook bodies (pure, no ORM)."""
