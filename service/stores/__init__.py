"""Administration: stores, zones, cameras, store keys, and reading the person-search audit log."""
