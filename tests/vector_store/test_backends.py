"""One behaviour suite for every vector-store backend (FAISS in memory, Milvus through Milvus Lite)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from pymilvus import MilvusClient
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session, sessionmaker

from service.storage.db import make_engine, make_session_factory
from service.storage.models import Base, Camera, Sighting, Store, Visitor, Zone
from service.vectors.base import SavedStateError, VectorFilter, VectorStore
from service.vectors.faiss_store import FaissVectorStore
from service.vectors.milvus_store import MilvusVectorStore, collection_name, filter_expr
from service.vectors.sync import IndexSync

DIM = 32
DAY = 86_400_000
T0 = 20_000 * DAY
STORE_A, STORE_B = 1, 2
BACKENDS = ["faiss", "milvus"]


@pytest.fixture(scope="module")
def milvus_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One Milvus Lite database for the module (its server starts once); each test gets a collection."""
    return str(tmp_path_factory.mktemp("milvus") / "milvus.db")


def open_store(backend: str, uri: str, collection: str) -> VectorStore:
    """A fresh store of the given backend."""
    if backend == "faiss":
        return FaissVectorStore(DIM, use_gpu=False)
    return MilvusVectorStore(uri, DIM, collection=collection)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend under test."""
    return request.param


@pytest.fixture
def collection(milvus_uri: str) -> Iterator[str]:
    """A collection name used by one test only, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex}"
    yield name
    client = MilvusClient(milvus_uri)
    if client.has_collection(name):
        client.drop_collection(name)
    client.close()


@pytest.fixture
def store(backend: str, milvus_uri: str, collection: str) -> VectorStore:
    """An empty store of the backend under test."""
    return open_store(backend, milvus_uri, collection)


def unit(rows: int, seed: int) -> np.ndarray:
    """Random L2-normalised vectors."""
    vectors = np.random.default_rng(seed).normal(size=(rows, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


class Batch:
    """Sightings of one store: ids, vectors, capture times spread over ``days`` UTC days, zones 1..3."""

    def __init__(self, first_id: int, rows: int, seed: int, days: int = 3) -> None:
        rng = np.random.default_rng(seed + 1)
        self.ids = np.arange(first_id, first_id + rows, dtype=np.int64)
        self.vectors = unit(rows, seed)
        self.ms = np.sort(T0 + rng.integers(0, days * DAY, size=rows)).astype(np.int64)
        self.zones = rng.integers(1, 4, size=rows).astype(np.int64)

    def add_to(self, store: VectorStore, store_id: int, rows: slice = slice(None)) -> int:
        """Add (some of) the batch to a store."""
        return store.add(store_id, self.ids[rows], self.vectors[rows], self.ms[rows], self.zones[rows])

    def exact(self, query: np.ndarray, k: int, where: VectorFilter, gone: np.ndarray | None = None):
        """Ids and similarities of the exact top ``k`` under ``where`` (numpy brute force)."""
        mask = np.ones(len(self.ids), dtype=bool)
        if where.min_ms is not None:
            mask &= self.ms >= where.min_ms
        if where.max_ms is not None:
            mask &= self.ms < where.max_ms
        if where.zone_id is not None:
            mask &= self.zones == where.zone_id
        if gone is not None:
            mask &= ~np.isin(self.ids, gone)
        sims = self.vectors[mask] @ query
        order = np.argsort(-sims)[:k]
        return self.ids[mask][order].tolist(), sims[order]


def assert_exact(store: VectorStore, batch: Batch, query: np.ndarray, k: int, where: VectorFilter, gone=None):
    """The store's hits are exactly the brute-force top ``k``, most similar first."""
    hits = store.search(query[None], k, where)[0]
    ids, sims = batch.exact(query, k, where, gone)
    assert [h.sighting_id for h in hits] == ids
    np.testing.assert_allclose([h.similarity for h in hits], sims, atol=1e-5)


def test_add_then_search_finds_each_vector_first(store: VectorStore):
    batch = Batch(100, 60, seed=1)
    assert batch.add_to(store, STORE_A) == 60
    hits = store.search(batch.vectors[[0, 17, 59]], 5, VectorFilter(STORE_A))
    assert [h[0].sighting_id for h in hits] == [100, 117, 159]
    for row in hits:
        assert len(row) == 5
        assert row[0].similarity == pytest.approx(1.0, abs=1e-5)
        assert [h.similarity for h in row] == sorted((h.similarity for h in row), reverse=True)
    assert_exact(store, batch, unit(1, 99)[0], 10, VectorFilter(STORE_A))


def test_add_skips_ids_already_present(store: VectorStore):
    batch = Batch(100, 40, seed=2)
    assert batch.add_to(store, STORE_A, slice(0, 30)) == 30
    assert batch.add_to(store, STORE_A, slice(0, 30)) == 0
    assert batch.add_to(store, STORE_A) == 10
    assert store.size(STORE_A) == 40
    assert len(store.search(batch.vectors[:1], 100, VectorFilter(STORE_A))[0]) == 40


def test_search_with_time_filter_is_half_open_and_spans_days(store: VectorStore):
    batch = Batch(100, 90, seed=3)
    batch.add_to(store, STORE_A)
    query = unit(1, 98)[0]
    lo, hi = int(batch.ms[10]), int(batch.ms[70])
    for where in (
        VectorFilter(STORE_A, min_ms=lo, max_ms=hi),
        VectorFilter(STORE_A, min_ms=T0 + DAY),
        VectorFilter(STORE_A, max_ms=T0 + DAY // 2),
    ):
        assert_exact(store, batch, query, 8, where)
    hits = store.search(batch.vectors[[70]], 90, VectorFilter(STORE_A, min_ms=lo, max_ms=hi))[0]
    assert 170 not in {h.sighting_id for h in hits}
    assert {h.sighting_id for h in hits} == set(batch.ids[(batch.ms >= lo) & (batch.ms < hi)].tolist())
    assert store.search(batch.vectors[:1], 5, VectorFilter(STORE_A, min_ms=T0 + 5 * DAY)) == [[]]


def test_search_with_zone_filter_alone_and_with_time(store: VectorStore):
    batch = Batch(100, 90, seed=4)
    batch.add_to(store, STORE_A)
    query = unit(1, 97)[0]
    for where in (
        VectorFilter(STORE_A, zone_id=2),
        VectorFilter(STORE_A, min_ms=T0 + DAY // 3, max_ms=T0 + 2 * DAY, zone_id=3),
    ):
        assert_exact(store, batch, query, 6, where)
        hits = store.search(query[None], 90, where)[0]
        assert set(batch.zones[np.isin(batch.ids, [h.sighting_id for h in hits])]) == {where.zone_id}
    assert store.search(query[None], 5, VectorFilter(STORE_A, zone_id=9)) == [[]]


def test_batched_queries_match_single_queries(store: VectorStore):
    batch = Batch(100, 50, seed=5)
    batch.add_to(store, STORE_A)
    queries = unit(7, 96)
    where = VectorFilter(STORE_A, min_ms=T0 + DAY // 2)
    together = store.search(queries, 4, where)
    for query, hits in zip(queries, together, strict=True):
        alone = store.search(query[None], 4, where)[0]
        assert [h.sighting_id for h in hits] == [h.sighting_id for h in alone]
        np.testing.assert_allclose([h.similarity for h in hits], [h.similarity for h in alone], atol=1e-5)


def test_tenant_isolation(store: VectorStore):
    first, second = Batch(100, 40, seed=6), Batch(1000, 40, seed=6)
    first.add_to(store, STORE_A)
    second.add_to(store, STORE_B)
    ids_a, ids_b = set(first.ids.tolist()), set(second.ids.tolist())
    for row in store.search(first.vectors[:5], 40, VectorFilter(STORE_A)):
        assert {h.sighting_id for h in row} <= ids_a
    for row in store.search(first.vectors[:5], 40, VectorFilter(STORE_B)):
        assert {h.sighting_id for h in row} <= ids_b
    assert store.remove(STORE_A, second.ids[:10]) == 0
    assert store.drop_before(STORE_A, T0 + 10 * DAY) == 40
    assert store.size(STORE_A) == 0
    assert store.size(STORE_B) == 40
    store.clear(STORE_B)
    assert store.size() == 0
    assert store.search(first.vectors[:1], 5, VectorFilter(3)) == [[]]


def test_remove_returns_how_many_were_held(store: VectorStore):
    batch = Batch(100, 50, seed=7)
    batch.add_to(store, STORE_A)
    gone = np.array([100, 103, 149, 9999], dtype=np.int64)
    assert store.remove(STORE_A, gone) == 3
    assert store.remove(STORE_A, gone) == 0
    assert store.size(STORE_A) == 47
    assert not np.isin(gone, store.ids(STORE_A)).any()
    assert store.search(batch.vectors[[3]], 1, VectorFilter(STORE_A))[0][0].sighting_id != 103
    assert_exact(store, batch, unit(1, 95)[0], 10, VectorFilter(STORE_A), gone)


def test_erasure_forgets_every_sighting_of_a_person(store: VectorStore):
    person = unit(1, 8)[0]
    views = person + 0.15 * unit(4, 9)
    views /= np.linalg.norm(views, axis=1, keepdims=True)
    others = Batch(100, 30, seed=10)
    others.add_to(store, STORE_A)
    erased = np.array([500, 501, 502, 503], dtype=np.int64)
    ms = np.array([T0 + 100, T0 + DAY + 5, T0 + DAY + 9, T0 + 2 * DAY + 1], dtype=np.int64)
    store.add(STORE_A, erased, views, ms, np.array([1, 2, 2, 3], dtype=np.int64))
    before = {h.sighting_id for h in store.search(person[None], 4, VectorFilter(STORE_A))[0]}
    assert before == set(erased.tolist())
    assert store.remove(STORE_A, erased) == 4
    after = store.search(person[None], 34, VectorFilter(STORE_A))[0]
    assert {h.sighting_id for h in after} == set(others.ids.tolist())
    assert store.size(STORE_A) == 30


def test_rebuild_after_clear_adds_everything_again(store: VectorStore):
    batch = Batch(100, 60, seed=11)
    batch.add_to(store, STORE_A)
    query = unit(1, 94)[0]
    before = store.search(query[None], 10, VectorFilter(STORE_A))
    store.clear(STORE_A)
    assert store.size(STORE_A) == 0
    assert len(store.ids(STORE_A)) == 0
    assert store.search(query[None], 10, VectorFilter(STORE_A)) == [[]]
    assert batch.add_to(store, STORE_A, slice(0, 25)) == 25
    assert batch.add_to(store, STORE_A) == 35
    after = store.search(query[None], 10, VectorFilter(STORE_A))
    assert [h.sighting_id for h in after[0]] == [h.sighting_id for h in before[0]]
    np.testing.assert_allclose([h.similarity for h in after[0]], [h.similarity for h in before[0]], atol=1e-6)


def test_retention_drops_whole_days_before_the_cutoff(store: VectorStore):
    batch = Batch(100, 90, seed=12)
    batch.add_to(store, STORE_A)
    Batch(1000, 20, seed=13).add_to(store, STORE_B)
    cutoff = T0 + 2 * DAY + DAY // 2
    old = batch.ms < T0 + 2 * DAY
    assert store.drop_before(STORE_A, cutoff) == int(old.sum())
    assert store.drop_before(STORE_A, cutoff) == 0
    assert sorted(store.ids(STORE_A).tolist()) == batch.ids[~old].tolist()
    assert store.size(STORE_B) == 20
    hits = store.search(batch.vectors[:1], 90, VectorFilter(STORE_A))[0]
    assert min(batch.ms[np.isin(batch.ids, [h.sighting_id for h in hits])]) >= T0 + 2 * DAY


def test_size_and_ids(store: VectorStore):
    assert store.size() == 0
    assert len(store.ids(STORE_A)) == 0
    first, second = Batch(100, 33, seed=14), Batch(1000, 21, seed=15)
    first.add_to(store, STORE_A)
    second.add_to(store, STORE_B)
    assert (store.size(STORE_A), store.size(STORE_B), store.size()) == (33, 21, 54)
    assert sorted(store.ids(STORE_A).tolist()) == first.ids.tolist()
    assert sorted(store.ids(STORE_B).tolist()) == second.ids.tolist()
    assert store.ids(STORE_A).dtype == np.int64


def test_save_then_load_in_a_new_process_keeps_the_vectors(
    backend: str, milvus_uri: str, collection: str, tmp_path: Path
):
    first = open_store(backend, milvus_uri, collection)
    batch = Batch(100, 40, seed=16)
    batch.add_to(first, STORE_A)
    first.save(STORE_A, tmp_path / "a")
    second = open_store(backend, milvus_uri, collection)
    assert second.load(STORE_A, tmp_path / "a")
    assert sorted(second.ids(STORE_A).tolist()) == batch.ids.tolist()
    assert batch.add_to(second, STORE_A) == 0
    assert_exact(second, batch, unit(1, 93)[0], 5, VectorFilter(STORE_A))
    assert not second.load(STORE_A, tmp_path / "nothing-saved")


def test_milvus_load_refuses_a_recreated_collection(milvus_uri: str, collection: str, tmp_path: Path):
    first = MilvusVectorStore(milvus_uri, DIM, collection=collection)
    Batch(100, 10, seed=17).add_to(first, STORE_A)
    first.save(STORE_A, tmp_path)
    assert MilvusVectorStore(milvus_uri, DIM, collection=collection).load(STORE_A, tmp_path)
    assert not first.load(STORE_B, tmp_path)
    first.client.drop_collection(collection)
    recreated = MilvusVectorStore(milvus_uri, DIM, collection=collection)
    assert recreated.size() == 0
    assert not recreated.load(STORE_A, tmp_path)


def test_milvus_refuses_an_id_another_store_holds(milvus_uri: str, collection: str):
    store = MilvusVectorStore(milvus_uri, DIM, collection=collection)
    Batch(100, 5, seed=19).add_to(store, STORE_A)
    with pytest.raises(ValueError, match="another store"):
        Batch(100, 5, seed=20).add_to(store, STORE_B)
    assert (store.size(STORE_A), store.size(STORE_B)) == (5, 0)


def test_milvus_open_survives_a_replica_creating_the_collection_first(
    milvus_uri: str, collection: str, monkeypatch: pytest.MonkeyPatch
):
    first = MilvusVectorStore(milvus_uri, DIM, collection=collection)
    original = MilvusClient.has_collection
    calls: list[str] = []

    def has_collection(self: MilvusClient, name: str, **kwargs) -> bool:
        calls.append(name)
        return len(calls) > 1 and original(self, name, **kwargs)

    monkeypatch.setattr(MilvusClient, "has_collection", has_collection)
    second = MilvusVectorStore(milvus_uri, DIM, collection=collection)
    assert len(calls) == 2
    assert second.generation == first.generation


def test_milvus_refuses_a_collection_of_another_dimension(milvus_uri: str, collection: str):
    MilvusVectorStore(milvus_uri, DIM, collection=collection)
    with pytest.raises(ValueError, match="dim"):
        MilvusVectorStore(milvus_uri, DIM * 2, collection=collection)


def test_milvus_names_and_filters():
    assert collection_name("sightings", "rga-sc/2026.11@abc") == "sightings_rga_sc_2026_11_abc"
    assert collection_name("9x", "v1") == "_9x_v1"
    where = VectorFilter(3, min_ms=5, max_ms=9, zone_id=2)
    assert filter_expr(where) == "store_id == 3 and captured_ms >= 5 and captured_ms < 9 and zone_id == 2"


def seed_sql(sessions: sessionmaker[Session], batch: Batch, version: str) -> int:
    """A store with one zone, camera and visitor whose sightings are the batch; returns the store id."""
    now = datetime.now(UTC)
    with sessions.begin() as session:
        store = Store(name="s", timezone="UTC", created_at=now, ingest_seq=0)
        session.add(store)
        session.flush()
        zone = Zone(store_id=store.id, name="z")
        session.add(zone)
        session.flush()
        camera = Camera(store_id=store.id, zone_id=zone.id, name="c")
        visitor = Visitor(store_id=store.id, created_at=now)
        session.add_all([camera, visitor])
        session.flush()
        for row in range(len(batch.ids)):
            session.add(
                Sighting(
                    id=int(batch.ids[row]),
                    store_id=store.id,
                    zone_id=zone.id,
                    camera_id=camera.id,
                    visitor_id=visitor.id,
                    captured_at=now,
                    captured_ms=int(batch.ms[row]),
                    received_at=now,
                    model_version=version,
                    embedding=batch.vectors[row].tobytes(),
                )
            )
        return store.id


def test_index_sync_rebuilds_from_sql_then_reloads(
    backend: str, milvus_uri: str, collection: str, tmp_path: Path
):
    engine = make_engine(f"sqlite:///{tmp_path / 'reid.db'}")
    Base.metadata.create_all(engine)
    sessions = make_session_factory(engine)
    batch = Batch(1, 30, seed=18)
    store_id = seed_sql(sessions, batch, "v1")
    first = IndexSync(open_store(backend, milvus_uri, collection), sessions, "v1", tmp_path / "indexes")
    assert first.start() == {"loaded": 0, "rebuilt": 1}
    assert first.vectors.size(store_id) == 30
    first.save()
    with sessions.begin() as session:
        session.delete(session.scalar(select(Sighting).where(Sighting.id == 5)))
    second = IndexSync(open_store(backend, milvus_uri, collection), sessions, "v1", tmp_path / "indexes")
    assert second.start() == {"loaded": 1, "rebuilt": 0}
    assert sorted(second.indexed_ids(store_id).tolist()) == [i for i in range(1, 31) if i != 5]
    assert second.rebuild(store_id) == 29
    assert_exact(second.vectors, batch, unit(1, 92)[0], 5, VectorFilter(store_id), np.array([5]))
    engine.dispose()


def test_index_sync_rebuilds_when_another_backend_saved_last(
    milvus_uri: str, collection: str, tmp_path: Path
):
    engine = make_engine(f"sqlite:///{tmp_path / 'reid.db'}")
    Base.metadata.create_all(engine)
    sessions = make_session_factory(engine)
    store_id = seed_sql(sessions, Batch(1, 12, seed=21), "v1")
    folder = tmp_path / "indexes"

    def milvus_sync() -> IndexSync:
        return IndexSync(MilvusVectorStore(milvus_uri, DIM, collection=collection), sessions, "v1", folder)

    first = milvus_sync()
    assert first.start() == {"loaded": 0, "rebuilt": 1}
    first.save()
    assert milvus_sync().start() == {"loaded": 1, "rebuilt": 0}
    faiss_sync = IndexSync(FaissVectorStore(DIM, use_gpu=False), sessions, "v1", folder)
    assert faiss_sync.start() == {"loaded": 0, "rebuilt": 1}
    faiss_sync.save()
    after_faiss = milvus_sync()
    assert after_faiss.start() == {"loaded": 0, "rebuilt": 1}
    assert after_faiss.indexed_ids(store_id).tolist() == list(range(1, 13))
    engine.dispose()


def add_sql(sessions: sessionmaker[Session], batch: Batch, store_id: int, version: str) -> None:
    """More sightings of an existing store (its first zone, camera and visitor), with the batch's ids."""
    now = datetime.now(UTC)
    with sessions.begin() as session:
        camera = session.scalar(select(Camera).where(Camera.store_id == store_id))
        visitor = session.scalar(select(Visitor.id).where(Visitor.store_id == store_id))
        for row in range(len(batch.ids)):
            session.add(
                Sighting(
                    id=int(batch.ids[row]),
                    store_id=store_id,
                    zone_id=camera.zone_id,
                    camera_id=camera.id,
                    visitor_id=visitor,
                    captured_at=now,
                    captured_ms=int(batch.ms[row]),
                    received_at=now,
                    model_version=version,
                    embedding=batch.vectors[row].tobytes(),
                )
            )


def test_index_sync_notices_a_database_that_went_back(
    backend: str, milvus_uri: str, collection: str, tmp_path: Path
):
    """A restore sends ids back: vectors saved or held under them must not answer for the new rows."""
    engine = make_engine(f"sqlite:///{tmp_path / 'reid.db'}")
    Base.metadata.create_all(engine)
    sessions = make_session_factory(engine)
    store_id = seed_sql(sessions, Batch(1, 30, seed=22), "v1")
    running = IndexSync(open_store(backend, milvus_uri, collection), sessions, "v1", tmp_path / "indexes")
    running.start()
    running.save()
    with sessions.begin() as session:  # what restoring a backup taken at sighting 20 does
        session.execute(delete(Sighting).where(Sighting.id > 20))
        session.execute(text("UPDATE sqlite_sequence SET seq = 20 WHERE name = 'sightings'"))
    fresh = Batch(21, 5, seed=23)
    add_sql(sessions, fresh, store_id, "v1")

    with sessions() as session:
        running.catch_up(session, store_id)
    assert running.rebuilt_while_running == 1
    assert sorted(running.indexed_ids(store_id).tolist()) == list(range(1, 26))
    hit = running.search(store_id, fresh.vectors[2:3], 1, VectorFilter(store_id))[0][0]
    assert (hit.sighting_id, round(hit.similarity, 4)) == (23, 1.0)

    restarted = IndexSync(open_store(backend, milvus_uri, collection), sessions, "v1", tmp_path / "indexes")
    assert restarted.start() == {"loaded": 0, "rebuilt": 1}  # saved before the restore: not trusted
    assert sorted(restarted.indexed_ids(store_id).tolist()) == list(range(1, 26))
    engine.dispose()


def test_index_sync_counts_what_the_current_model_cannot_search(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'reid.db'}")
    Base.metadata.create_all(engine)
    sessions = make_session_factory(engine)
    old = Batch(1, 12, seed=24, days=3)
    store_id = seed_sql(sessions, old, "v1")
    sync = IndexSync(FaissVectorStore(DIM, use_gpu=False), sessions, "v2", tmp_path / "indexes")
    sync.start()
    add_sql(sessions, Batch(13, 4, seed=25), store_id, "v2")
    with sessions() as session:
        sync.catch_up(session, store_id)
        coverage = sync.coverage()
        assert (coverage.by_model, coverage.searchable, coverage.unsearchable) == ({"v2": 4, "v1": 12}, 4, 12)
        day_two = VectorFilter(store_id, min_ms=T0 + DAY, max_ms=T0 + 2 * DAY)
        expected = int(((old.ms >= T0 + DAY) & (old.ms < T0 + 2 * DAY)).sum())
        assert sync.other_model_sightings(session, day_two) == expected
        assert sync.other_model_sightings(session, VectorFilter(store_id, min_ms=T0 + 5 * DAY)) == 0
    with sessions.begin() as session:
        session.execute(delete(Sighting).where(Sighting.id <= 5))
    sync.rebuild(store_id)
    assert sync.coverage().by_model == {"v2": 4, "v1": 7}
    engine.dispose()


@pytest.mark.parametrize("damage", ["[]", "null", "{}", '{"format": "1"}', "\x00 not json"])
def test_a_damaged_manifest_means_a_rebuild(
    backend: str, milvus_uri: str, collection: str, tmp_path: Path, damage: str
):
    engine = make_engine(f"sqlite:///{tmp_path / 'reid.db'}")
    Base.metadata.create_all(engine)
    sessions = make_session_factory(engine)
    store_id = seed_sql(sessions, Batch(1, 12, seed=26), "v1")
    first = IndexSync(open_store(backend, milvus_uri, collection), sessions, "v1", tmp_path / "indexes")
    first.start()
    first.save()
    manifest = "milvus.json" if backend == "milvus" else "shards.json"
    (first.store_dir(store_id) / manifest).write_text(damage)
    with pytest.raises(SavedStateError):
        open_store(backend, milvus_uri, collection).load(store_id, first.store_dir(store_id))
    again = IndexSync(open_store(backend, milvus_uri, collection), sessions, "v1", tmp_path / "indexes")
    assert again.start() == {"loaded": 0, "rebuilt": 1}
    assert sorted(again.indexed_ids(store_id).tolist()) == list(range(1, 13))
    engine.dispose()
