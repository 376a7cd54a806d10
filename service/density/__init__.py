"""Customer density (GET /density): unique visitors, entries, dwell and occupancy per zone and bucket."""
