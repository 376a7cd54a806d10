"""Embeddings for integrators (POST /embed): the model's vectors of uploaded crops, stored nowhere."""
