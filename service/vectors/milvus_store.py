"""Milvus vector store: one collection for every store, the store id as its partition key.

Sighting ids are the primary keys (unique across stores, as SQL assigns them); capture time (ms) and
zone are scalar fields that searches filter on; the metric is inner product on the service's
L2-normalised embeddings. Milvus persists on its own, so ``save`` is a flush plus a small manifest
naming the collection's generation, and ``load`` says whether that same collection still holds the
store's vectors (True: the service keeps its watermark and catches up; False: it rebuilds from SQL).

Retention deletes by capture time with the FAISS store's granularity (whole UTC days older than the
cutoff), not with Milvus's collection TTL: TTL counts from insertion, so a rebuild from SQL would give
old sightings a fresh lease. The same ``uri`` works for Milvus Lite (a local ``.db`` path), Milvus
standalone and a Milvus cluster (``http://host:19530``).
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException

from model.files import atomic_write_text
from service.vectors.base import Hit, SavedStateError, VectorFilter

DAY_MS = 86_400_000
MAX_TOP_K = 16_384
MANIFEST = "milvus.json"
MANIFEST_FORMAT = 1
GENERATION_KEY = "reid.generation"
OUTPUT_FIELDS = ["id"]


def collection_name(prefix: str, model_version: str) -> str:
    """A valid Milvus collection name for one model version's vectors (letters, digits, underscores)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", f"{prefix}_{model_version}")
    return name if name[0].isalpha() or name[0] == "_" else f"_{name}"


def filter_expr(where: VectorFilter) -> str:
    """The Milvus boolean expression of a search filter (the store first, so partitions are pruned)."""
    terms = [f"store_id == {int(where.store_id)}"]
    if where.min_ms is not None:
        terms.append(f"captured_ms >= {int(where.min_ms)}")
    if where.max_ms is not None:
        terms.append(f"captured_ms < {int(where.max_ms)}")
    if where.zone_id is not None:
        terms.append(f"zone_id == {int(where.zone_id)}")
    return " and ".join(terms)


def ids_expr(store_id: int, ids: np.ndarray | list[int]) -> str:
    """The expression selecting ``ids`` within one store."""
    return f"store_id == {int(store_id)} and id in [{', '.join(str(int(i)) for i in ids)}]"


def chunks(count: int, size: int) -> Iterator[slice]:
    """Consecutive slices of at most ``size`` covering ``range(count)``."""
    for start in range(0, count, size):
        yield slice(start, min(count, start + size))


class MilvusVectorStore:
    """The service's vector store on Milvus; see the module docstring."""

    def __init__(
        self,
        uri: str,
        dim: int,
        collection: str = "sightings",
        *,
        token: str = "",
        index_type: str = "AUTOINDEX",
        index_params: dict | None = None,
        search_params: dict | None = None,
        consistency_level: str = "Session",
        batch_size: int = 1000,
        timeout: float | None = None,
    ) -> None:
        self.dim = dim
        self.collection = collection
        self.search_params = dict(search_params or {})
        self.consistency_level = consistency_level
        self.batch_size = batch_size
        self.client = MilvusClient(uri=uri, token=token, timeout=timeout)
        self._lock = threading.RLock()
        self.generation = self._open(index_type, dict(index_params or {}))

    def _open(self, index_type: str, index_params: dict) -> str:
        """Create the collection when missing, check its dimension, load it; returns its generation."""
        if not self.client.has_collection(self.collection):
            try:
                self._create(index_type, index_params)
            except MilvusException:
                if not self.client.has_collection(self.collection):
                    raise
        described = self.client.describe_collection(self.collection)
        dims = [int(f["params"]["dim"]) for f in described["fields"] if f["name"] == "vector"]
        if dims != [self.dim]:
            raise ValueError(
                f"Milvus collection {self.collection!r} holds vectors of dim {dims}, not {self.dim}"
            )
        self.client.load_collection(self.collection)
        return str(described.get("properties", {}).get(GENERATION_KEY, ""))

    def _create(self, index_type: str, index_params: dict) -> None:
        """Sighting id, store (partition key), capture time and zone (indexed), vector (inner product)."""
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("store_id", DataType.INT64, is_partition_key=True)
        schema.add_field("captured_ms", DataType.INT64)
        schema.add_field("zone_id", DataType.INT64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        indexes = self.client.prepare_index_params()
        indexes.add_index("vector", index_type=index_type, metric_type="IP", params=index_params)
        indexes.add_index("captured_ms", index_type="INVERTED")
        indexes.add_index("zone_id", index_type="INVERTED")
        self.client.create_collection(
            self.collection,
            schema=schema,
            consistency_level=self.consistency_level,
            properties={GENERATION_KEY: uuid.uuid4().hex},
        )
        self.client.create_index(self.collection, indexes, sync=False)

    def close(self) -> None:
        """Release the connection."""
        self.client.close()

    def _query(self, expr: str, fields: list[str]) -> list[dict]:
        return self.client.query(
            self.collection, filter=expr, output_fields=fields, consistency_level=self.consistency_level
        )

    def _count(self, expr: str) -> int:
        return int(self._query(expr, ["count(*)"])[0]["count(*)"])

    def _held(self, ids: np.ndarray) -> dict[int, int]:
        """The store of each of ``ids`` (at most a batch) the collection holds, by primary-key lookup."""
        rows = self.client.query(
            self.collection,
            ids=[int(i) for i in ids],
            output_fields=["id", "store_id"],
            consistency_level=self.consistency_level,
        )
        return {int(r["id"]): int(r["store_id"]) for r in rows}

    def add(
        self,
        store_id: int,
        ids: np.ndarray,
        vectors: np.ndarray,
        captured_ms: np.ndarray,
        zone_ids: np.ndarray,
    ) -> int:
        """Upsert the vectors whose ids the store does not hold yet; returns how many were new."""
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.asarray(vectors, dtype=np.float32)
        captured_ms = np.asarray(captured_ms, dtype=np.int64)
        zone_ids = np.asarray(zone_ids, dtype=np.int64)
        added = 0
        with self._lock:
            for part in chunks(len(ids), self.batch_size):
                rows = self._new_rows(store_id, ids, part)
                if len(rows):
                    self.client.upsert(
                        self.collection,
                        [
                            {
                                "id": int(ids[r]),
                                "store_id": int(store_id),
                                "captured_ms": int(captured_ms[r]),
                                "zone_id": int(zone_ids[r]),
                                "vector": vectors[r],
                            }
                            for r in rows
                        ],
                    )
                    added += len(rows)
        return added

    def _new_rows(self, store_id: int, ids: np.ndarray, part: slice) -> np.ndarray:
        """Positions in ``part`` whose ids the collection lacks; an id held by another store is an error."""
        held = self._held(ids[part])
        foreign = [i for i, owner in held.items() if owner != store_id]
        if foreign:
            raise ValueError(f"ids {foreign[:5]} belong to another store: sighting ids must be unique")
        rows = np.arange(part.start, part.stop)
        return rows[~np.isin(ids[rows], list(held))]

    def remove(self, store_id: int, ids: np.ndarray) -> int:
        """Delete the given ids of the store; returns how many it held."""
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        removed = 0
        with self._lock:
            for part in chunks(len(ids), self.batch_size):
                present = [i for i, owner in self._held(ids[part]).items() if owner == store_id]
                if present:
                    self.client.delete(self.collection, filter=ids_expr(store_id, present))
                    removed += len(present)
        return removed

    def search(self, queries: np.ndarray, k: int, where: VectorFilter) -> list[list[Hit]]:
        """Best ``k`` hits per query among the store's vectors that pass ``where``, most similar first."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        k = min(k, MAX_TOP_K)
        if k <= 0 or not len(queries):
            return [[] for _ in range(len(queries))]
        params = dict(self.search_params)
        if "ef" in params:
            params["ef"] = max(int(params["ef"]), k)
        found = self.client.search(
            self.collection,
            data=list(queries),
            filter=filter_expr(where),
            limit=k,
            output_fields=OUTPUT_FIELDS,
            search_params={"metric_type": "IP", "params": params},
            anns_field="vector",
            consistency_level=self.consistency_level,
        )
        return [[Hit(int(h["id"]), float(h["distance"])) for h in hits] for hits in found]

    def drop_before(self, store_id: int, cutoff_ms: int) -> int:
        """Delete the store's vectors of UTC days that end at or before ``cutoff_ms``; returns how many."""
        expr = f"store_id == {int(store_id)} and captured_ms < {(int(cutoff_ms) // DAY_MS) * DAY_MS}"
        with self._lock:
            dropped = self._count(expr)
            if dropped:
                self.client.delete(self.collection, filter=expr)
        return dropped

    def clear(self, store_id: int) -> None:
        """Delete every vector of a store."""
        with self._lock:
            self.client.delete(self.collection, filter=f"store_id == {int(store_id)}")

    def ids(self, store_id: int) -> np.ndarray:
        """Every id held for a store, ascending."""
        iterator = self.client.query_iterator(
            self.collection,
            batch_size=self.batch_size,
            filter=f"store_id == {int(store_id)}",
            output_fields=OUTPUT_FIELDS,
            consistency_level=self.consistency_level,
        )
        found: list[int] = []
        try:
            while batch := iterator.next():
                found.extend(row["id"] for row in batch)
        finally:
            iterator.close()
        return np.sort(np.asarray(found, dtype=np.int64))

    def size(self, store_id: int | None = None) -> int:
        """Vectors held for one store or for all."""
        return self._count("" if store_id is None else f"store_id == {int(store_id)}")

    def _manifest(self, store_id: int) -> dict:
        return {
            "format": MANIFEST_FORMAT,
            "collection": self.collection,
            "generation": self.generation,
            "dim": self.dim,
            "store_id": store_id,
        }

    def save(self, store_id: int, directory: Path) -> None:
        """Flush the collection and record which collection (and generation) holds the store's vectors."""
        self.client.flush(self.collection)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_text(directory / MANIFEST, json.dumps(self._manifest(store_id)))

    def load(self, store_id: int, directory: Path) -> bool:
        """True when ``directory`` was saved against this very collection (same generation and store).

        False when nothing was saved or it names another collection, generation or store (the
        collection was recreated: rebuild); ``SavedStateError`` when the manifest is unreadable or not
        the object ``save`` writes.
        """
        path = directory / MANIFEST
        if not path.exists():
            return False
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SavedStateError(f"{MANIFEST}: {type(exc).__name__}: {exc}") from exc
        expected = self._manifest(store_id)
        if not isinstance(manifest, dict) or set(manifest) != set(expected):
            raise SavedStateError(f"{MANIFEST} is not the manifest this store writes: {manifest!r:.120}")
        return bool(self.generation) and manifest == expected
