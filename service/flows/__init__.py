"""Paths between zones (GET /flows): transitions within each visit to the store, first and last zones,
and the share of visits that reach a chosen zone."""
