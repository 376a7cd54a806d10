"""Who may call: API keys (hashed), the callers they identify, and rate limits per key."""
