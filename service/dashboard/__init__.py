"""The store dashboard: one page and its script and stylesheet, served from the package."""
