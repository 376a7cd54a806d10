"""Background work of a running app: the maintenance loop (retention, index catch-up, re-linking) and
the density summary warm-up."""
