"""Embedding crops: loading the model, decoding uploads, and batching concurrent requests."""
