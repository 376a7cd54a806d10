"""Bounds of the ids the API accepts (32-bit rows, 64-bit sightings and visitors)."""

MAX_ID = 2**31 - 1
MAX_BIG_ID = 2**63 - 1
