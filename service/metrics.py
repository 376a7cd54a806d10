"""Prometheus metrics of the service (process-wide, default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("reid_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "reid_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
EMBED_BATCH = Histogram(
    "reid_embed_batch_size", "Images per model call", buckets=(1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 128)
)
EMBED_SECONDS = Histogram("reid_embed_batch_seconds", "Model time per batch")
INDEX_VECTORS = Gauge("reid_index_vectors", "Vectors held in the FAISS indexes", ["store"])
SIGHTINGS = Counter("reid_sightings_total", "Sightings stored", ["new_visitor"])
PURGED = Counter("reid_retention_purged_total", "Rows and vectors removed by retention", ["kind"])
