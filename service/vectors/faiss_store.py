"""FAISS vector store sharded by store and UTC day: exact inner product when small, IVF+SQ8 above a size.

Each shard is an ``IndexIDMap2`` keyed by sighting id. Beside the index it keeps the ids, capture
times and zones of its vectors so that filters become FAISS ID selectors (an id range when the
allowed vectors are contiguous, a batch of ids otherwise). With GPUs present, shards are searched
through a GPU copy and filtered results are over-fetched and filtered on the host.
"""

from __future__ import annotations

import json
import math
import re
import threading
from pathlib import Path

import faiss
import numpy as np

from model.files import atomic_write, atomic_write_text
from service.vectors.base import Hit, SavedStateError, VectorFilter

DAY_MS = 86_400_000
GPU_MAX_K = 2048
TRAIN_PER_LIST = 40
SHARD_FORMAT = 1
MANIFEST = "shards.json"
SHARD_FILE = re.compile(r"^day_(-?\d+)\.(?:faiss|npz)$")


def ivf_lists(count: int) -> int:
    """Number of IVF lists for a shard of ``count`` vectors (about sqrt(n))."""
    return int(min(65536, max(16, math.sqrt(count))))


def build_ivf(vectors: np.ndarray, ids: np.ndarray, nprobe: int) -> faiss.Index:
    """An ``IndexIDMap2`` over IVF with 8-bit scalar quantisation, trained on (a sample of) ``vectors``."""
    ivf = new_ivf(vectors.shape[1], ivf_lists(len(vectors)), nprobe)
    ivf.train(training_sample(vectors, ivf.nlist))
    index = faiss.IndexIDMap2(ivf)
    index.add_with_ids(np.ascontiguousarray(vectors), ids)
    return index


def training_sample(vectors: np.ndarray, nlist: int) -> np.ndarray:
    """At most ``TRAIN_PER_LIST * nlist`` rows of ``vectors`` for k-means."""
    if len(vectors) <= nlist * TRAIN_PER_LIST:
        return np.ascontiguousarray(vectors)
    rows = np.random.default_rng(0).choice(len(vectors), nlist * TRAIN_PER_LIST, replace=False)
    return np.ascontiguousarray(vectors[np.sort(rows)])


def new_ivf(dim: int, nlist: int, nprobe: int) -> faiss.Index:
    """An untrained IVF index with 8-bit scalar quantisation and inner product."""
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFScalarQuantizer(
        quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )
    ivf.nprobe = nprobe
    return ivf


class Shard:
    """The vectors of one store captured on one UTC day."""

    def __init__(self, dim: int, index: faiss.Index | None = None) -> None:
        self.dim = dim
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self.ids = np.empty(0, dtype=np.int64)
        self.ms = np.empty(0, dtype=np.int64)
        self.zones = np.empty(0, dtype=np.int64)
        self.gpu_index: faiss.Index | None = None

    @property
    def exact(self) -> bool:
        """Whether the shard is still a flat (exact) index."""
        return isinstance(faiss.downcast_index(self.index.index), faiss.IndexFlat)

    @property
    def last_id(self) -> int:
        """The largest id ever added (ids arrive in increasing order)."""
        return int(self.ids[-1]) if len(self.ids) else -1

    def add(self, ids: np.ndarray, vectors: np.ndarray, ms: np.ndarray, zones: np.ndarray) -> None:
        """Append vectors with increasing ids."""
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        self.ids = np.concatenate([self.ids, ids])
        self.ms = np.concatenate([self.ms, ms])
        self.zones = np.concatenate([self.zones, zones])
        self.gpu_index = None

    def remove(self, ids: np.ndarray) -> int:
        """Remove ids; returns how many were present."""
        keep = ~np.isin(self.ids, ids)
        if keep.all():
            return 0
        removed = int(self.index.remove_ids(faiss.IDSelectorBatch(self.ids[~keep])))
        self.ids, self.ms, self.zones = self.ids[keep], self.ms[keep], self.zones[keep]
        self.gpu_index = None
        return removed

    def to_ivf(self, nprobe: int) -> None:
        """Rebuild a flat shard as IVF+SQ8."""
        flat = faiss.downcast_index(self.index.index)
        vectors = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * self.dim).reshape(flat.ntotal, self.dim)
        ids = faiss.vector_to_array(self.index.id_map).astype(np.int64)
        self.index = build_ivf(np.array(vectors), ids, nprobe)
        self.gpu_index = None

    def allowed(self, where: VectorFilter) -> np.ndarray | None:
        """Boolean mask of the vectors that pass ``where``; None when all do."""
        mask = where.mask(self.ms, self.zones)
        return None if mask.all() else mask


def id_selector(ids: np.ndarray, mask: np.ndarray) -> faiss.IDSelector:
    """An id-range selector when the allowed ids are contiguous in the shard, else a batch selector."""
    positions = np.flatnonzero(mask)
    first, last = int(positions[0]), int(positions[-1])
    if last - first + 1 == len(positions):
        return faiss.IDSelectorRange(int(ids[first]), int(ids[last]) + 1)
    return faiss.IDSelectorBatch(ids[positions])


class FaissVectorStore:
    """Sharded FAISS indexes for every store, thread-safe; see the module docstring."""

    def __init__(
        self, dim: int, exact_max: int = 200_000, nprobe: int = 16, use_gpu: bool | None = None
    ) -> None:
        self.dim = dim
        self.exact_max = exact_max
        self.nprobe = nprobe
        self.use_gpu = faiss.get_num_gpus() > 0 if use_gpu is None else use_gpu
        self._gpu_resources = faiss.StandardGpuResources() if self.use_gpu else None
        self._shards: dict[int, dict[int, Shard]] = {}
        self._lock = threading.RLock()

    def add(
        self,
        store_id: int,
        ids: np.ndarray,
        vectors: np.ndarray,
        captured_ms: np.ndarray,
        zone_ids: np.ndarray,
    ) -> int:
        """Add vectors (increasing ids) to their day shards, skipping ids a shard already holds."""
        ids = np.asarray(ids, dtype=np.int64)
        days = np.asarray(captured_ms, dtype=np.int64) // DAY_MS
        added = 0
        with self._lock:
            shards = self._shards.setdefault(store_id, {})
            for day in np.unique(days):
                shard = shards.setdefault(int(day), Shard(self.dim))
                rows = np.flatnonzero((days == day) & (ids > shard.last_id))
                if len(rows) == 0:
                    continue
                shard.add(ids[rows], vectors[rows], np.asarray(captured_ms)[rows], np.asarray(zone_ids)[rows])
                added += len(rows)
                if shard.exact and len(shard.ids) > self.exact_max:
                    shard.to_ivf(self.nprobe)
        return added

    def remove(self, store_id: int, ids: np.ndarray) -> int:
        """Remove ids from whichever shards hold them."""
        ids = np.asarray(ids, dtype=np.int64)
        with self._lock:
            return sum(shard.remove(ids) for shard in self._shards.get(store_id, {}).values())

    def _gpu(self, shard: Shard) -> faiss.Index:
        if shard.gpu_index is None:
            shard.gpu_index = faiss.index_cpu_to_gpu(self._gpu_resources, 0, shard.index)
        return shard.gpu_index

    def _search_shard(self, shard: Shard, queries: np.ndarray, k: int, where: VectorFilter):
        mask = shard.allowed(where)
        if mask is not None and not mask.any():
            return None
        k = min(k, len(shard.ids))
        if self.use_gpu:
            fetch = k if mask is None else min(len(shard.ids), k + int((~mask).sum()))
            if fetch <= GPU_MAX_K:
                sims, ids = self._gpu(shard).search(queries, fetch)
                if mask is not None:
                    allowed = np.isin(ids, shard.ids[mask])
                    sims, ids = np.where(allowed, sims, -np.inf), np.where(allowed, ids, -1)
                return sims, ids
        if mask is None:
            params = faiss.SearchParametersIVF(nprobe=self.nprobe) if not shard.exact else None
        else:
            selector = id_selector(shard.ids, mask)
            if shard.exact:
                params = faiss.SearchParameters(sel=selector)
            else:
                params = faiss.SearchParametersIVF(sel=selector, nprobe=self.nprobe)
        return shard.index.search(queries, k, params=params)

    def search(self, queries: np.ndarray, k: int, where: VectorFilter) -> list[list[Hit]]:
        """Search every shard of the store whose day overlaps the time range and merge the best ``k``."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        first = None if where.min_ms is None else where.min_ms // DAY_MS
        last = None if where.max_ms is None else (where.max_ms - 1) // DAY_MS
        parts = []
        with self._lock:
            for day, shard in self._shards.get(where.store_id, {}).items():
                if (
                    (first is not None and day < first)
                    or (last is not None and day > last)
                    or not len(shard.ids)
                ):
                    continue
                found = self._search_shard(shard, queries, k, where)
                if found is not None:
                    parts.append(found)
        results: list[list[Hit]] = [[] for _ in range(len(queries))]
        if not parts:
            return results
        sims = np.concatenate([p[0] for p in parts], axis=1)
        ids = np.concatenate([p[1] for p in parts], axis=1)
        order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        for row in range(len(queries)):
            results[row] = [
                Hit(int(ids[row, col]), float(sims[row, col])) for col in order[row] if ids[row, col] >= 0
            ]
        return results

    def drop_before(self, store_id: int, cutoff_ms: int) -> int:
        """Drop the shards of days that end at or before ``cutoff_ms``."""
        dropped = 0
        with self._lock:
            shards = self._shards.get(store_id, {})
            for day in [d for d in shards if (d + 1) * DAY_MS <= cutoff_ms]:
                dropped += len(shards.pop(day).ids)
        return dropped

    def clear(self, store_id: int) -> None:
        """Forget every shard of a store."""
        with self._lock:
            self._shards.pop(store_id, None)

    def ids(self, store_id: int) -> np.ndarray:
        """Every id held for a store."""
        with self._lock:
            parts = [s.ids for s in self._shards.get(store_id, {}).values()]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

    def size(self, store_id: int | None = None) -> int:
        """Vectors held for one store or for all."""
        with self._lock:
            stores = [store_id] if store_id is not None else list(self._shards)
            return sum(len(s.ids) for sid in stores for s in self._shards.get(sid, {}).values())

    def stores(self) -> list[int]:
        """Stores that have shards."""
        with self._lock:
            return list(self._shards)

    def save(self, store_id: int, directory: Path) -> None:
        """Write each shard (``day_<n>.faiss`` + ``.npz``) and a manifest, each atomically."""
        directory.mkdir(parents=True, exist_ok=True)
        with self._lock:
            shards = dict(self._shards.get(store_id, {}))
            for day, shard in shards.items():
                atomic_write(
                    directory / f"day_{day}.faiss", lambda p, s=shard: faiss.write_index(s.index, str(p))
                )
                atomic_write(directory / f"day_{day}.npz", lambda p, s=shard: _write_arrays(p, s))
            manifest = {"format": SHARD_FORMAT, "dim": self.dim, "days": sorted(shards)}
        atomic_write_text(directory / MANIFEST, json.dumps(manifest))
        for stale in directory.iterdir():
            named = SHARD_FILE.match(stale.name)
            if named and int(named.group(1)) not in shards and stale.is_file():
                stale.unlink(missing_ok=True)

    def load(self, store_id: int, directory: Path) -> bool:
        """Load a saved store: False when nothing was saved, ``SavedStateError`` when a file is unusable.

        Every file is checked before anything is replaced: the manifest's shape and dimension, each
        shard's index type, metric and size, its id, time and zone arrays (one-dimensional integers of
        the index's length, ids increasing and the very ids the index holds, times within the shard's
        day). Files not named in the manifest are ignored.
        """
        if not (directory / MANIFEST).exists():
            return False
        try:
            shards = self._read_shards(directory)
        except SavedStateError:
            raise
        except Exception as exc:  # any unreadable file (faiss, numpy, zip, json, OS) means: rebuild
            raise SavedStateError(f"{type(exc).__name__}: {exc}") from exc
        with self._lock:
            self._shards[store_id] = shards
        return True

    def _read_shards(self, directory: Path) -> dict[int, Shard]:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        if not isinstance(manifest, dict):
            raise SavedStateError(f"{MANIFEST} holds {type(manifest).__name__}, not an object")
        if not _is_int(manifest.get("format")) or manifest["format"] != SHARD_FORMAT:
            raise SavedStateError(f"{MANIFEST}: format {manifest.get('format')!r}, expected {SHARD_FORMAT}")
        if not _is_int(manifest.get("dim")) or manifest["dim"] != self.dim:
            raise SavedStateError(f"{MANIFEST}: dim {manifest.get('dim')!r}, the model's is {self.dim}")
        days = manifest.get("days")
        if not isinstance(days, list) or not all(_is_int(day) for day in days) or len(set(days)) != len(days):
            raise SavedStateError(f"{MANIFEST}: days must be a list of distinct integers, not {days!r:.80}")
        return {day: self._read_shard(directory, day) for day in days}

    def _read_shard(self, directory: Path, day: int) -> Shard:
        name = f"day_{day}"
        index = faiss.read_index(str(directory / f"{name}.faiss"))
        if not isinstance(index, faiss.IndexIDMap2):
            raise SavedStateError(f"{name}.faiss holds a {type(index).__name__}, not an IndexIDMap2")
        inner = faiss.downcast_index(index.index)
        if not isinstance(inner, faiss.IndexFlat | faiss.IndexIVFScalarQuantizer) or not index.is_trained:
            raise SavedStateError(f"{name}.faiss wraps a {type(inner).__name__}, not a flat or IVF-SQ index")
        if index.d != self.dim or index.metric_type != faiss.METRIC_INNER_PRODUCT:
            found = f"dim {index.d}, metric {index.metric_type}"
            raise SavedStateError(f"{name}.faiss: {found}, not dim {self.dim}, inner product")
        with np.load(directory / f"{name}.npz", allow_pickle=False) as arrays:
            ids, ms, zones = (_int_array(arrays, key, name) for key in ("ids", "ms", "zones"))
        if not len(ids) == len(ms) == len(zones) == index.ntotal:
            raise SavedStateError(
                f"{name}: {index.ntotal} vectors but {len(ids)} ids, {len(ms)} times, {len(zones)} zones"
            )
        if len(ids) and (ids[0] < 1 or np.any(np.diff(ids) <= 0)):
            raise SavedStateError(f"{name}.npz: ids are not positive and increasing")
        if not np.array_equal(np.sort(faiss.vector_to_array(index.id_map).astype(np.int64)), ids):
            raise SavedStateError(f"{name}: the index holds other ids than {name}.npz lists")
        if np.any(ms // DAY_MS != day):
            raise SavedStateError(f"{name}.npz: capture times outside day {day}")
        shard = Shard(self.dim, index)
        shard.ids, shard.ms, shard.zones = ids, ms, zones
        return shard


def _is_int(value: object) -> bool:
    """An integer that is not a bool (JSON ``true`` would otherwise pass for 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _int_array(arrays, key: str, name: str) -> np.ndarray:
    """One saved array: present, one-dimensional, integer; returned as int64."""
    if key not in arrays.files:
        raise SavedStateError(f"{name}.npz has no {key!r} array")
    array = arrays[key]
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise SavedStateError(f"{name}.npz: {key!r} is {array.dtype}{list(array.shape)}, not integers")
    return array.astype(np.int64)


def _write_arrays(path: Path, shard: Shard) -> None:
    """Save a shard's ids, capture times and zones."""
    with path.open("wb") as handle:
        np.savez(handle, ids=shard.ids, ms=shard.ms, zones=shard.zones)
