"""Privacy: erasure of a visitor (on every replica), retention, and the maintenance loop that applies it."""
