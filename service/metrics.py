"""Prometheus metrics of the service (process-wide).

Totals go to the default registry, which ``/metrics`` always shows. Series labelled by store go to
``STORE_REGISTRY``, shown only when ``REID_METRICS_PER_STORE`` is on: a store's volume is its own business
and ``/metrics`` needs no key.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REQUESTS = Counter("reid_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "reid_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
PHASE_SECONDS = Histogram(
    "reid_request_phase_seconds",
    "Time per phase of a request (the phases of its Server-Timing header)",
    ["route", "phase"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
GC_PAUSE = Histogram(
    "reid_gc_pause_seconds",
    "Garbage collections (every Python thread stops meanwhile), by generation collected",
    ["generation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
EMBED_BATCH = Histogram(
    "reid_embed_batch_size", "Images per model call", buckets=(1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 128)
)
EMBED_SECONDS = Histogram("reid_embed_batch_seconds", "Model time per batch")
STORE_REGISTRY = CollectorRegistry()
INDEX_VECTORS = Gauge("reid_index_vectors", "Vectors held in the vector indexes, all stores")
STORE_INDEX_VECTORS = Gauge(
    "reid_index_store_vectors", "Vectors held in one store's index", ["store"], registry=STORE_REGISTRY
)
INDEX_REBUILDS = Counter(
    "reid_index_rebuilds_total", "Store indexes rebuilt from SQL instead of loaded or kept", ["reason"]
)
WRITE_FAILURES = Counter("reid_database_write_failures_total", "Database writes refused or failed")
SIGHTINGS = Counter("reid_sightings_total", "Sightings stored", ["new_visitor"])
LINK_RETRIES = Counter(
    "reid_link_retries_total", "Ingests that decided again: another writer of the store committed first"
)
PURGED = Counter("reid_retention_purged_total", "Rows and vectors removed by retention", ["kind"])
RELINKED = Counter("reid_relinked_sightings_total", "Sightings moved to another visitor by re-linking")


def set_index_vectors(store_id: int, store_vectors: int, total_vectors: int) -> None:
    """Publish one store's vector count (per-store registry) and the total (public)."""
    STORE_INDEX_VECTORS.labels(store=str(store_id)).set(store_vectors)
    INDEX_VECTORS.set(total_vectors)
