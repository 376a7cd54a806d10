"""Service test fixtures: a quickly trained and exported model, distinct synthetic people, databases, apps."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import model as model_pkg
from model import build_model, export_model, load_embedder
from model.preprocess import normalize_batch, resize_rgb
from service.app import create_app
from service.embedding.model import LoadedModel
from service.settings import Settings
from service.storage.db import migrate
from training.datasets.synthetic import render_person
from training.losses import batch_hard_triplet

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
ADMIN_KEY = "test-admin-key"
LONG_RETENTION_DAYS = 36500
INPUT_SIZE = (64, 32)
TRAIN_IDS = range(1, 41)
TRAIN_CAMERAS = range(4)
TRAIN_SEEDS = range(3)
TRAIN_STEPS = 300
P, K = 8, 4
CANDIDATE_IDS = range(2000, 2040)
RECIPE = f"resnet18-rgasc-{INPUT_SIZE}-{list(TRAIN_IDS)}-{TRAIN_STEPS}-{P}x{K}-adam1e-3-v1"


def png_bytes(image: np.ndarray) -> bytes:
    """Lossless PNG encoding, so the service decodes exactly the array the test drew."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _train_quick_model() -> torch.nn.Module:
    """Cross-entropy + batch-hard triplet on synthetic people, PK batches, fixed number of steps."""
    generator = torch.Generator().manual_seed(0)
    images, labels = [], []
    for label, person in enumerate(TRAIN_IDS):
        for camera in TRAIN_CAMERAS:
            for seed in TRAIN_SEEDS:
                images.append(resize_rgb(render_person(person, camera, seed), INPUT_SIZE))
                labels.append(label)
    inputs, targets = normalize_batch(np.stack(images)), torch.tensor(labels)
    per_id = [torch.nonzero(targets == label).flatten() for label in range(len(TRAIN_IDS))]
    torch.manual_seed(0)
    net = build_model("resnet18", "rgasc", INPUT_SIZE, num_classes=len(TRAIN_IDS))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=5e-4)
    net.train()
    for _ in range(TRAIN_STEPS):
        chosen = torch.randperm(len(TRAIN_IDS), generator=generator)[:P]
        rows = torch.cat([per_id[c][torch.randperm(len(per_id[c]), generator=generator)[:K]] for c in chosen])
        batch = inputs[rows]
        if torch.rand(1, generator=generator).item() < 0.5:
            batch = batch.flip(3)
        pooled, _, logits = net(batch)
        loss = F.cross_entropy(logits, targets[rows], label_smoothing=0.1) + batch_hard_triplet(
            pooled, targets[rows]
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return net.eval()


def _recipe_key() -> str:
    digest = hashlib.sha256(RECIPE.encode())
    for source in sorted(Path(model_pkg.__file__).parent.glob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def model_dir(request: pytest.FixtureRequest) -> Path:
    """An exported quick model, cached in pytest's cache dir by recipe and model source.

    The export is written to a private folder and renamed into place, so concurrent sessions never
    see a half-written one.
    """
    final = request.config.cache.mkdir("reid-service-model") / _recipe_key()
    try:
        load_embedder(final, device="cpu")
        return final
    except model_pkg.ExportError:
        shutil.rmtree(final, ignore_errors=True)
    torch.set_num_threads(2)
    started = time.perf_counter()
    net = _train_quick_model()
    staging = final.with_name(f"{final.name}.{os.getpid()}.tmp")
    export_model(net, staging, {"recipe": RECIPE, "train_seconds": round(time.perf_counter() - started, 1)})
    try:
        os.rename(staging, final)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return final


@pytest.fixture(scope="session")
def loaded_model(model_dir: Path) -> LoadedModel:
    """The exported model loaded once for the whole session (as one process would)."""
    return LoadedModel(load_embedder(model_dir, device="cpu"), trained=True)


@dataclass(frozen=True)
class Cast:
    """Synthetic people the model tells apart, and a threshold that separates them."""

    people: list[int]
    threshold: float
    min_same: float
    max_cross: float


STORY_VIEWS = [(0, 0), (1, 1), (2, 2), (3, 3), (1, 9)]


def story_image(person: int, view: int) -> np.ndarray:
    """The ``view``-th photo of a story person (the last view is kept back as the /match query)."""
    camera, seed = STORY_VIEWS[view]
    return render_person(person, camera, seed + 100)


@pytest.fixture(scope="session")
def cast(loaded_model: LoadedModel) -> Cast:
    """Pick held-out people whose every story photo is closer to their own photos than to anyone else's."""
    embedder = loaded_model.embedder
    views = {p: embedder.embed([story_image(p, v) for v in range(len(STORY_VIEWS))]) for p in CANDIDATE_IDS}
    self_sim = {p: float((e @ e.T).min()) for p, e in views.items()}
    chosen: list[int] = []
    min_same, max_cross = 1.0, -1.0
    for person in sorted(CANDIDATE_IDS, key=lambda p: -self_sim[p]):
        cross = max((float((views[person] @ views[c].T).max()) for c in chosen), default=-1.0)
        new_same, new_cross = min(min_same, self_sim[person]), max(max_cross, cross)
        if new_cross < new_same - 0.04:
            chosen.append(person)
            min_same, max_cross = new_same, new_cross
        if len(chosen) == 5:
            break
    assert len(chosen) >= 4, f"the quick model separates only {len(chosen)} people"
    return Cast(chosen, (min_same + max_cross) / 2, min_same, max_cross)


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """The PostgreSQL server tests create their databases on (must be reachable: no skipping)."""
    return os.environ.get("REID_TEST_POSTGRES_URL", DEFAULT_PG_URL)


@pytest.fixture(scope="session")
def pg_databases(pg_admin_url: str) -> Iterator[Callable[[], str]]:
    """A factory of fresh PostgreSQL databases, all dropped at the end of the session."""
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    created: list[str] = []

    def make() -> str:
        name = f"reid_test_{uuid.uuid4().hex[:12]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)

    yield make
    with admin.connect() as connection:
        for name in created:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: a SQLite file or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'reid.db'}"
    else:
        url = request.getfixturevalue("pg_databases")()
    migrate(url)
    return url


@pytest.fixture
def settings_for(cast: Cast, tmp_path: Path) -> Callable[..., Settings]:
    """Settings for an app on ``url`` with the cast's threshold and a private index dir."""

    def make(url: str, **overrides) -> Settings:
        values = {
            "database_url": url,
            "index_dir": tmp_path / "indexes",
            "admin_key": ADMIN_KEY,
            "match_threshold": cast.threshold,
            "embed_max_wait_ms": 2.0,
            "retention_days": LONG_RETENTION_DAYS,
            "relink_interval_s": 0,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


@pytest.fixture
def start_app(loaded_model: LoadedModel) -> Iterator[Callable[[Settings], TestClient]]:
    """Start app instances (entering their lifespan); all are shut down at teardown."""
    clients: list[TestClient] = []

    def start(settings: Settings) -> TestClient:
        client = TestClient(create_app(settings, loaded_model))
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in reversed(clients):
        client.__exit__(None, None, None)


@pytest.fixture
def client(database_url: str, settings_for, start_app) -> TestClient:
    """One app on a fresh database."""
    return start_app(settings_for(database_url))


ADMIN = {"X-API-Key": ADMIN_KEY}


def make_store(
    client: TestClient, zones: list[str], timezone: str = "UTC", person_search: bool = True
) -> dict:
    """Create a store with one camera per zone and a key; returns ids and the key header."""
    body = {"name": "Test store", "timezone": timezone, "match_enabled": person_search}
    store = client.post("/stores", json=body, headers=ADMIN).json()
    zone_ids, camera_ids = {}, {}
    for name in zones:
        zone = client.post(f"/stores/{store['id']}/zones", json={"name": name}, headers=ADMIN).json()
        camera = client.post(
            f"/stores/{store['id']}/cameras",
            json={"name": f"{name}-cam", "zone_id": zone["id"]},
            headers=ADMIN,
        ).json()
        zone_ids[name], camera_ids[name] = zone["id"], camera["id"]
    key = client.post(f"/stores/{store['id']}/keys", json={"name": "test"}, headers=ADMIN).json()["key"]
    return {"id": store["id"], "zones": zone_ids, "cameras": camera_ids, "headers": {"X-API-Key": key}}


def post_sighting(client: TestClient, store: dict, zone: str, image: np.ndarray, captured_at: str):
    """POST one image to /sightings from the zone's camera."""
    return client.post(
        "/sightings",
        data={"camera_id": store["cameras"][zone], "captured_at": captured_at},
        files=[("images", ("crop.png", png_bytes(image), "image/png"))],
        headers=store["headers"],
    )


def post_match(client: TestClient, store: dict, image: np.ndarray, **fields):
    """POST a photo to /match (for case ``test-case`` unless ``case_id`` or ``reason`` is given)."""
    if "case_id" not in fields and "reason" not in fields:
        fields["case_id"] = "test-case"
    return client.post(
        "/match",
        data={k: str(v) for k, v in fields.items()},
        files={"image": ("query.png", png_bytes(image), "image/png")},
        headers=store["headers"],
    )


@pytest.fixture
def helpers():
    """The helper functions, for tests (tests/service has no package to import them from)."""
    return type(
        "Helpers",
        (),
        {
            "png": staticmethod(png_bytes),
            "make_store": staticmethod(make_store),
            "post_sighting": staticmethod(post_sighting),
            "post_match": staticmethod(post_match),
            "story_image": staticmethod(story_image),
            "admin": ADMIN,
        },
    )
