"""Tenant isolation: a store key reaches only its own store, whatever ids it puts in a request.

Two stores share one app (on SQLite and on PostgreSQL); every route is listed below with the role that
may call it, and every store-scoped id a request can carry is tried with the other store's id.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from httpx import Response
from pydantic import BaseModel

from service.app import create_app
from service.embedding.model import LoadedModel
from service.settings import Settings

PUBLIC, ADMIN, STORE, ANY_KEY = "public", "admin", "store", "any key"
ZONES_A = ["entrance", "toys"]
ZONES_B = ["secret-bakery", "secret-tills"]
NAME_A, NAME_B = "Store A", "Store B (confidential)"
WINDOW = {"start": "2026-11-25T09:00:00Z", "end": "2026-11-25T12:00:00Z", "bucket": "PT1H"}
DAYS = {"start": WINDOW["start"], "end": WINDOW["end"]}  # /flows and /returning
MISSING_ID = 987_654_321
PAGING_CURSORS = {"before_id"}  # "older than this id" pages a store's own list; it names nothing to look up
# the API docs and their Swagger UI / ReDoc files (served from the fastapi-offline package: public, no data)
DOC_ROUTES = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/static-offline-docs"}


@dataclass(frozen=True)
class Ingested:
    """One uploaded crop and the sighting and visitor the service made of it."""

    sighting_id: int
    visitor_id: int
    person: int
    png: bytes


@dataclass(frozen=True)
class Tenant:
    """One store as the tests see it: ``make_store``'s ids and key header, its key's id, what it ingested."""

    name: str
    store: dict
    key_id: int
    ingested: tuple[Ingested, ...]
    staff_id: int = 0

    @property
    def id(self) -> int:
        """The store id."""
        return self.store["id"]

    @property
    def headers(self) -> dict[str, str]:
        """The store key's header."""
        return self.store["headers"]

    @property
    def zone_names(self) -> set[str]:
        """The names of the store's zones."""
        return set(self.store["zones"])


@dataclass(frozen=True)
class World:
    """Stores A and B on one app, and the conftest helpers."""

    client: TestClient
    helpers: Any
    a: Tenant
    b: Tenant


def open_store(
    client: TestClient, helpers: Any, name: str, zones: list[str], visits: list[tuple], staff_person: int
) -> Tenant:
    """Create a named store, one camera per zone, and post a crop per ``(zone, person, view, hh:mm)``;
    returning shoppers are enabled, and ``staff_person`` (seen in no store) is enrolled as staff."""
    store = helpers.make_store(client, zones)
    changes = {"name": name, "returning_enabled": True}
    renamed = client.patch(f"/stores/{store['id']}", json=changes, headers=helpers.admin)
    assert renamed.status_code == 200, renamed.text
    (key,) = client.get(f"/stores/{store['id']}/keys", headers=helpers.admin).json()
    ingested = []
    for zone, person, view, clock in visits:
        image = helpers.story_image(person, view)
        response = helpers.post_sighting(client, store, zone, image, f"2026-11-25T{clock}:00Z")
        assert response.status_code == 201, response.text
        (result,) = response.json()["sightings"]
        ingested.append(Ingested(result["sighting_id"], result["visitor_id"], person, helpers.png(image)))
    photo = ("images", ("staff.png", helpers.png(helpers.story_image(staff_person, 0)), "image/png"))
    staff = client.post("/staff", data={"name": f"{name} staff"}, files=[photo], headers=store["headers"])
    assert staff.status_code == 201 and staff.json()["visitor_ids"] == [], staff.text
    return Tenant(name, store, key["id"], tuple(ingested), staff.json()["id"])


@pytest.fixture
def client_with_crops(
    database_url: str, settings_for: Callable[..., Settings], start_app: Callable[[Settings], TestClient]
) -> TestClient:
    """Like conftest's ``client`` (SQLite and PostgreSQL), but keeping crops so GET .../crop has data."""
    return start_app(settings_for(database_url, store_crops=True))


@pytest.fixture
def world(client_with_crops: TestClient, helpers: Any, cast: Any) -> World:
    """Store A saw two people, store B two others (one of them twice); nobody visited both."""
    one, two, three, four = cast.people[:4]
    a = open_store(
        client_with_crops,
        helpers,
        NAME_A,
        ZONES_A,
        [("entrance", one, 0, "10:00"), ("toys", two, 1, "10:05")],
        staff_person=three,
    )
    b = open_store(
        client_with_crops,
        helpers,
        NAME_B,
        ZONES_B,
        [
            ("secret-bakery", three, 0, "10:00"),
            ("secret-tills", three, 1, "10:10"),
            ("secret-bakery", four, 2, "10:20"),
        ],
        staff_person=one,
    )
    return World(client_with_crops, helpers, a, b)


def query_photo(world: World, person: int) -> tuple[str, tuple[str, bytes, str]]:
    """A held-back photo of ``person`` as an upload field named ``image``."""
    return ("image", ("query.png", world.helpers.png(world.helpers.story_image(person, 4)), "image/png"))


def crop_upload(world: World, person: int) -> tuple[str, tuple[str, bytes, str]]:
    """A new photo of ``person`` as an upload field named ``images``."""
    return ("images", ("crop.png", world.helpers.png(world.helpers.story_image(person, 3)), "image/png"))


def snapshot(world: World, tenant: Tenant) -> dict:
    """What the tenant's own key sees: its density report, its crops, and every sighting /match ranks."""
    client = world.client
    density = client.get("/density", params=WINDOW, headers=tenant.headers)
    assert density.status_code == 200, density.text
    crops = {}
    for item in tenant.ingested:
        crop = client.get(f"/sightings/{item.sighting_id}/crop", headers=tenant.headers)
        assert crop.status_code == 200, crop.text
        crops[item.sighting_id] = crop.content
    found = client.post(
        "/match",
        data={"case_id": "snapshot", "top_k": "20"},
        files=[query_photo(world, tenant.ingested[0].person)],
        headers=tenant.headers,
    )
    assert found.status_code == 200, found.text
    matches = sorted((m["sighting_id"], m["visitor_id"]) for m in found.json()["matches"])
    return {"density": density.json(), "crops": crops, "matches": matches}


def redact(detail: str, item_id: int) -> str:
    """The error message with the id the caller sent replaced by a placeholder."""
    return re.sub(rf"\b{item_id}\b", "<id>", detail, count=1)


def assert_not_found_like_a_missing_id(
    foreign: Response, foreign_id: int, missing: Response, owner: Tenant
) -> None:
    """Both are 404 JSON errors that differ only in the id sent, and say nothing about the owner's store."""
    for response in (foreign, missing):
        assert response.status_code == 404, response.text
        assert response.headers["content-type"] == "application/json"
    assert foreign.json().keys() == missing.json().keys() == {"detail"}
    assert redact(foreign.json()["detail"], foreign_id) == redact(missing.json()["detail"], MISSING_ID)
    assert sorted(foreign.headers.keys()) == sorted(missing.headers.keys())
    assert not re.search(rf"\bstore {owner.id}\b", foreign.text), foreign.text
    for secret in owner.zone_names | {owner.name}:
        assert secret not in foreign.text, foreign.text


@dataclass(frozen=True)
class IdCase:
    """A place where a store-scoped id goes, which of the owner's ids to put there, and the request."""

    method: str
    path: str
    param: str
    target: Callable[[Tenant], int]
    send: Callable[[World, Tenant, Tenant, int], Response]


def post_sighting_from(world: World, caller: Tenant, owner: Tenant, camera_id: int) -> Response:
    """The caller posts a photo of the owner's first visitor from camera ``camera_id``."""
    return world.client.post(
        "/sightings",
        data={"camera_id": str(camera_id), "captured_at": "2026-11-25T10:30:00Z"},
        files=[crop_upload(world, owner.ingested[0].person)],
        headers=caller.headers,
    )


def get_crop(world: World, caller: Tenant, owner: Tenant, sighting_id: int) -> Response:
    """The caller asks for the crop of sighting ``sighting_id``."""
    return world.client.get(f"/sightings/{sighting_id}/crop", headers=caller.headers)


def match_in_zone(world: World, caller: Tenant, owner: Tenant, zone_id: int) -> Response:
    """The caller searches zone ``zone_id`` for the owner's first visitor."""
    return world.client.post(
        "/match",
        data={"case_id": "isolation", "zone_id": str(zone_id)},
        files=[query_photo(world, owner.ingested[0].person)],
        headers=caller.headers,
    )


def density_of_zone(world: World, caller: Tenant, owner: Tenant, zone_id: int) -> Response:
    """The caller asks for the density of zone ``zone_id``."""
    return world.client.get("/density", params=WINDOW | {"zone_id": zone_id}, headers=caller.headers)


def list_sightings_filtered(param: str) -> Callable[[World, Tenant, Tenant, int], Response]:
    """The caller lists its sightings filtered by ``param`` (a camera, zone or visitor id)."""

    def send(world: World, caller: Tenant, owner: Tenant, item_id: int) -> Response:
        return world.client.get("/sightings", params={param: item_id}, headers=caller.headers)

    return send


def flows_to_zone(world: World, caller: Tenant, owner: Tenant, zone_id: int) -> Response:
    """The caller asks for its flows with the funnel to zone ``zone_id``."""
    return world.client.get("/flows", params=DAYS | {"zone_id": zone_id}, headers=caller.headers)


def rename_staff(world: World, caller: Tenant, owner: Tenant, staff_id: int) -> Response:
    """The caller renames staff member ``staff_id``."""
    return world.client.patch(f"/staff/{staff_id}", json={"name": "renamed"}, headers=caller.headers)


def remove_staff(world: World, caller: Tenant, owner: Tenant, staff_id: int) -> Response:
    """The caller removes staff member ``staff_id``."""
    return world.client.delete(f"/staff/{staff_id}", headers=caller.headers)


def mark_visitor(world: World, caller: Tenant, owner: Tenant, visitor_id: int) -> Response:
    """The caller marks visitor ``visitor_id`` as a new staff member."""
    return world.client.post(f"/visitors/{visitor_id}/staff", json={"name": "marked"}, headers=caller.headers)


def mark_as_member(world: World, caller: Tenant, owner: Tenant, staff_id: int) -> Response:
    """The caller marks its own first visitor as staff member ``staff_id``."""
    own = caller.ingested[0].visitor_id
    return world.client.post(f"/visitors/{own}/staff", json={"staff_id": staff_id}, headers=caller.headers)


def delete_visitor(world: World, caller: Tenant, owner: Tenant, visitor_id: int) -> Response:
    """The caller erases visitor ``visitor_id``."""
    return world.client.delete(f"/visitors/{visitor_id}", headers=caller.headers)


def first_camera(tenant: Tenant) -> int:
    """The camera of the tenant's first zone."""
    return next(iter(tenant.store["cameras"].values()))


def first_zone(tenant: Tenant) -> int:
    """The tenant's first zone."""
    return next(iter(tenant.store["zones"].values()))


ID_CASES = [
    IdCase("POST", "/sightings", "camera_id", first_camera, post_sighting_from),
    IdCase(
        "GET", "/sightings/{sighting_id}/crop", "sighting_id", lambda t: t.ingested[0].sighting_id, get_crop
    ),
    IdCase("GET", "/sightings", "camera_id", first_camera, list_sightings_filtered("camera_id")),
    IdCase("GET", "/sightings", "zone_id", first_zone, list_sightings_filtered("zone_id")),
    IdCase(
        "GET",
        "/sightings",
        "visitor_id",
        lambda t: t.ingested[0].visitor_id,
        list_sightings_filtered("visitor_id"),
    ),
    IdCase("POST", "/match", "zone_id", first_zone, match_in_zone),
    IdCase("GET", "/density", "zone_id", first_zone, density_of_zone),
    IdCase("GET", "/flows", "zone_id", first_zone, flows_to_zone),
    IdCase("PATCH", "/staff/{staff_id}", "staff_id", lambda t: t.staff_id, rename_staff),
    IdCase("DELETE", "/staff/{staff_id}", "staff_id", lambda t: t.staff_id, remove_staff),
    IdCase(
        "POST", "/visitors/{visitor_id}/staff", "visitor_id", lambda t: t.ingested[0].visitor_id, mark_visitor
    ),
    IdCase("POST", "/visitors/{visitor_id}/staff", "staff_id", lambda t: t.staff_id, mark_as_member),
    IdCase(
        "DELETE", "/visitors/{visitor_id}", "visitor_id", lambda t: t.ingested[0].visitor_id, delete_visitor
    ),
]


@pytest.mark.parametrize("case", ID_CASES, ids=lambda c: f"{c.method} {c.path} {c.param}")
def test_another_stores_id_is_not_found(world: World, case: IdCase) -> None:
    """Each store's key, given the other store's id, gets the 404 of an unknown id and changes nothing."""
    before = snapshot(world, world.a), snapshot(world, world.b)
    for caller, owner in ((world.a, world.b), (world.b, world.a)):
        foreign_id = case.target(owner)
        foreign = case.send(world, caller, owner, foreign_id)
        missing = case.send(world, caller, owner, MISSING_ID)
        assert_not_found_like_a_missing_id(foreign, foreign_id, missing, owner)
        assert (snapshot(world, world.a), snapshot(world, world.b)) == before


def test_answers_without_ids_show_only_the_callers_store(world: World) -> None:
    """/density and /match of store A show only A's zones, sightings and visitors, even for B's shopper."""
    client, helpers, a, b = world.client, world.helpers, world.a, world.b
    report = client.get("/density", params=WINDOW, headers=a.headers).json()
    assert report["store_id"] == a.id
    assert {(z["zone_id"], z["name"]) for z in report["zones"]} == {
        (i, n) for n, i in a.store["zones"].items()
    }
    assert sum(z["totals"]["sightings"] for z in report["zones"]) == len(a.ingested)
    stray = client.get("/density", params=WINDOW | {"store_id": b.id}, headers=a.headers)
    assert stray.json() == report

    b_only = b.ingested[0].person
    own = helpers.post_match(client, b.store, helpers.story_image(b_only, 4), top_k=1).json()
    assert own["matches"][0]["sighting_id"] in {i.sighting_id for i in b.ingested if i.person == b_only}
    for fields in ({}, {"store_id": b.id}):
        found = helpers.post_match(client, a.store, helpers.story_image(b_only, 4), top_k=50, **fields)
        assert found.status_code == 200, found.text
        body = found.json()
        assert {m["sighting_id"] for m in body["matches"]} == {i.sighting_id for i in a.ingested}
        assert {m["visitor_id"] for m in body["matches"]} <= {i.visitor_id for i in a.ingested}
        assert {m["zone_id"] for m in body["matches"]} <= set(a.store["zones"].values())
        assert {m["camera_id"] for m in body["matches"]} <= set(a.store["cameras"].values())
        assert {v["zone_name"] for v in body["visitors"]} <= a.zone_names
        assert {v["visitor_id"] for v in body["visitors"]} <= {i.visitor_id for i in a.ingested}

    for tenant in (a, b):
        audit = client.get(f"/stores/{tenant.id}/match-audit", headers=helpers.admin).json()
        assert audit and all(e["store_id"] == tenant.id and e["key_id"] == tenant.key_id for e in audit)
    assert snapshot(world, b)["crops"] == {i.sighting_id: i.png for i in b.ingested}
    analytics_show_only_the_callers_store(world)


def untimed(body: Any) -> Any:
    """A JSON answer less the server time it was read at (``/occupancy``'s ``at``)."""
    return {k: v for k, v in body.items() if k != "at"} if isinstance(body, dict) else body


def analytics_show_only_the_callers_store(world: World) -> None:
    """/flows, /occupancy, /returning and /staff of store A count and name only A's zones, visitors and
    staff, even when asked for store B."""
    client, a, b = world.client, world.a, world.b
    for path, params in (("/flows", DAYS), ("/occupancy", {}), ("/returning", DAYS), ("/staff", {})):
        answer = client.get(path, params=params | {"store_id": b.id}, headers=a.headers)
        assert answer.status_code == 200, answer.text
        own = client.get(path, params=params, headers=a.headers)
        assert untimed(answer.json()) == untimed(own.json()), path
        assert NAME_B not in answer.text and not any(n in answer.text for n in b.zone_names), answer.text
    zones = set(a.store["zones"].values())
    visitors = {i.visitor_id for i in a.ingested}
    flows = client.get("/flows", params=DAYS, headers=a.headers).json()
    assert flows["store_id"] == a.id and {z["zone_id"] for z in flows["zones"]} == zones
    assert flows["visitors"] == len(visitors)
    present = client.get("/occupancy", headers=a.headers).json()
    assert present["store_id"] == a.id and {z["zone_id"] for z in present["zones"]} == zones
    returning = client.get("/returning", params=DAYS, headers=a.headers).json()
    assert sum(d["visitors"] for d in returning["days"]) == len(visitors)
    staff = client.get("/staff", headers=a.headers).json()
    assert [m["id"] for m in staff] == [a.staff_id] and all(m["visitor_ids"] == [] for m in staff)


@dataclass(frozen=True)
class Endpoint:
    """A route, who may call it, and what a well-formed request carries besides its path."""

    method: str
    path: str
    role: str
    extra: Callable[[World, Tenant], dict] = lambda world, target: {}


def path_ids(tenant: Tenant) -> dict[str, Any]:
    """Values for every path parameter: the tenant's ids, and a file the dashboard serves."""
    first = tenant.ingested[0]
    return {
        "store_id": tenant.id,
        "key_id": tenant.key_id,
        "sighting_id": first.sighting_id,
        "visitor_id": first.visitor_id,
        "camera_id": first_camera(tenant),
        "staff_id": tenant.staff_id,
        "name": "app.js",
    }


ENDPOINTS = [
    Endpoint("GET", "/healthz", PUBLIC),
    Endpoint("GET", "/readyz", PUBLIC),
    Endpoint("GET", "/metrics", PUBLIC),
    Endpoint("GET", "/", PUBLIC),
    Endpoint("GET", "/static/{name}", PUBLIC),
    Endpoint("POST", "/stores", ADMIN, lambda w, t: {"json": {"name": "intruder"}}),
    Endpoint("GET", "/stores", ADMIN),
    Endpoint("GET", "/stores/{store_id}", ADMIN),
    Endpoint("PATCH", "/stores/{store_id}", ADMIN, lambda w, t: {"json": {"name": "renamed"}}),
    Endpoint("GET", "/stores/{store_id}/match-audit", ADMIN),
    Endpoint("GET", "/stores/{store_id}/crop-exports", ADMIN),
    Endpoint("GET", "/stores/{store_id}/audit", ADMIN),
    Endpoint("POST", "/stores/{store_id}/zones", ADMIN, lambda w, t: {"json": {"name": "new-zone"}}),
    Endpoint("GET", "/stores/{store_id}/zones", ADMIN),
    Endpoint(
        "POST",
        "/stores/{store_id}/cameras",
        ADMIN,
        lambda w, t: {"json": {"name": "c", "zone_id": first_zone(t)}},
    ),
    Endpoint("GET", "/stores/{store_id}/cameras", ADMIN),
    Endpoint(
        "PUT",
        "/stores/{store_id}/cameras/{camera_id}/overlaps",
        ADMIN,
        lambda w, t: {"json": {"camera_ids": []}},
    ),
    Endpoint("GET", "/stores/{store_id}/transit-times", ADMIN),
    Endpoint("PUT", "/stores/{store_id}/transit-times", ADMIN, lambda w, t: {"json": {"transits": []}}),
    Endpoint("POST", "/stores/{store_id}/relink", ADMIN, lambda w, t: {"json": {}}),
    Endpoint("POST", "/stores/{store_id}/keys", ADMIN, lambda w, t: {"json": {"name": "intruder"}}),
    Endpoint("GET", "/stores/{store_id}/keys", ADMIN),
    Endpoint("DELETE", "/stores/{store_id}/keys/{key_id}", ADMIN),
    Endpoint("POST", "/embed", ANY_KEY, lambda w, t: {"files": [crop_upload(w, t.ingested[0].person)]}),
    Endpoint(
        "POST",
        "/sightings",
        STORE,
        lambda w, t: {
            "data": {"camera_id": str(first_camera(t)), "captured_at": "2026-11-25T10:30:00Z"},
            "files": [crop_upload(w, t.ingested[0].person)],
        },
    ),
    Endpoint("GET", "/sightings/{sighting_id}/crop", STORE),
    Endpoint("GET", "/sightings", STORE),
    Endpoint(
        "POST",
        "/match",
        STORE,
        lambda w, t: {"data": {"case_id": "roles"}, "files": [query_photo(w, t.ingested[0].person)]},
    ),
    Endpoint("GET", "/density", STORE, lambda w, t: {"params": WINDOW}),
    Endpoint("GET", "/flows", STORE, lambda w, t: {"params": DAYS}),
    Endpoint("GET", "/occupancy", STORE),
    Endpoint("GET", "/occupancy/live", STORE, lambda w, t: {"params": {"max_s": 0}}),
    Endpoint("GET", "/returning", STORE, lambda w, t: {"params": DAYS}),
    Endpoint("GET", "/staff", STORE),
    Endpoint(
        "POST",
        "/staff",
        STORE,
        lambda w, t: {"data": {"name": "new staff"}, "files": [crop_upload(w, t.ingested[-1].person)]},
    ),
    Endpoint("PATCH", "/staff/{staff_id}", STORE, lambda w, t: {"json": {"name": "renamed staff"}}),
    Endpoint("DELETE", "/staff/{staff_id}", STORE),
    Endpoint("POST", "/visitors/{visitor_id}/staff", STORE, lambda w, t: {"json": {"name": "marked"}}),
    Endpoint("DELETE", "/visitors/{visitor_id}", STORE),
]


def send(world: World, endpoint: Endpoint, target: Tenant, headers: dict[str, str]) -> Response:
    """Call the endpoint with ``target``'s ids in its path and the given headers."""
    url = endpoint.path.format(**path_ids(target))
    return world.client.request(endpoint.method, url, headers=headers, **endpoint.extra(world, target))


def admin_view(world: World, tenant: Tenant) -> dict:
    """The admin's view of a store: the store, its zones, cameras and keys (less last use), all stores."""
    client, admin, base = world.client, world.helpers.admin, f"/stores/{tenant.id}"
    keys = client.get(f"{base}/keys", headers=admin).json()
    return {
        "store": client.get(base, headers=admin).json(),
        "zones": client.get(f"{base}/zones", headers=admin).json(),
        "cameras": client.get(f"{base}/cameras", headers=admin).json(),
        "keys": [{k: v for k, v in key.items() if k != "last_used_at"} for key in keys],
        "stores": client.get("/stores", headers=admin).json(),
    }


def assert_json_error(response: Response, status: int) -> None:
    """A JSON error with a message and the given status."""
    assert response.status_code == status, (
        f"{response.request.method} {response.request.url}: {response.text}"
    )
    assert response.headers["content-type"] == "application/json"
    assert response.json()["detail"]


def test_each_role_reaches_only_its_endpoints(world: World) -> None:
    """Admin routes refuse a store key and store routes the admin key (403); the same requests succeed
    with the right key, and public routes and /embed answer without showing store B's data."""
    a, b, admin = world.a, world.b, world.helpers.admin
    before = admin_view(world, b), snapshot(world, a), snapshot(world, b)
    for endpoint in ENDPOINTS:
        if endpoint.role == ADMIN:
            assert_json_error(send(world, endpoint, b, a.headers), 403)
            assert_json_error(send(world, endpoint, a, a.headers), 403)
        elif endpoint.role == STORE:
            assert_json_error(send(world, endpoint, a, admin), 403)
        else:
            callers = [a.headers, b.headers, admin] + ([{}] if endpoint.role == PUBLIC else [])
            for headers in callers:
                response = send(world, endpoint, a, headers)
                assert response.status_code == 200, f"{endpoint.method} {endpoint.path}: {response.text}"
                assert NAME_B not in response.text and not any(n in response.text for n in b.zone_names)
    assert (admin_view(world, b), snapshot(world, a), snapshot(world, b)) == before

    for endpoint in sorted(ENDPOINTS, key=lambda e: e.role != STORE):
        if endpoint.role in (ADMIN, STORE):
            response = send(world, endpoint, a, admin if endpoint.role == ADMIN else a.headers)
            assert response.is_success, f"{endpoint.method} {endpoint.path}: {response.text}"


def test_admin_paths_keep_ids_within_their_store(world: World) -> None:
    """Under /stores/{A}, a key or zone of store B is a 404 like an unknown id; A's audit lists only A."""
    client, a, b, admin = world.client, world.a, world.b, world.helpers.admin
    for tenant in (a, b):
        searched = world.helpers.post_match(
            client, tenant.store, world.helpers.story_image(tenant.ingested[0].person, 4)
        )
        assert searched.status_code == 200, searched.text
    before = admin_view(world, b)
    foreign_key = client.delete(f"/stores/{a.id}/keys/{b.key_id}", headers=admin)
    missing_key = client.delete(f"/stores/{a.id}/keys/{MISSING_ID}", headers=admin)
    assert_json_error(foreign_key, 404)
    assert redact(foreign_key.json()["detail"], b.key_id) == redact(missing_key.json()["detail"], MISSING_ID)

    def add_camera(zone_id: int) -> Response:
        return client.post(f"/stores/{a.id}/cameras", json={"name": "c", "zone_id": zone_id}, headers=admin)

    foreign_zone, missing_zone = add_camera(first_zone(b)), add_camera(MISSING_ID)
    assert_json_error(foreign_zone, 404)
    assert redact(foreign_zone.json()["detail"], first_zone(b)) == redact(
        missing_zone.json()["detail"], MISSING_ID
    )
    audit = client.get(f"/stores/{a.id}/match-audit", params={"before_id": MISSING_ID}, headers=admin).json()
    assert [entry["store_id"] for entry in audit] == [a.id]
    assert admin_view(world, b) == before
    assert client.get("/density", params=WINDOW, headers=b.headers).status_code == 200


def parameters(dependant: Dependant) -> Iterator[tuple[str, Any]]:
    """Name and type of every parameter a route reads, its dependencies' included."""
    for field in (
        dependant.path_params
        + dependant.query_params
        + dependant.header_params
        + dependant.cookie_params
        + dependant.body_params
    ):
        yield field.name, field.field_info.annotation
    for sub in dependant.dependencies:
        yield from parameters(sub)


def id_parameters(route: APIRoute) -> set[str]:
    """The integer ``*_id`` parameters of a route, fields of JSON bodies included."""
    found, pending = set(), list(parameters(route.dependant))
    while pending:
        name, annotation = pending.pop()
        for kind in get_args(annotation) or (annotation,):
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                pending.extend((n, f.annotation) for n, f in kind.model_fields.items())
            elif kind is int and name.endswith("_id") and name not in PAGING_CURSORS:
                found.add(name)
    return found


def test_the_tables_cover_every_route(
    tmp_path: Path, settings_for: Callable[..., Settings], loaded_model: LoadedModel
) -> None:
    """Every route has a role in ENDPOINTS, and every integer id a store key can send is in ID_CASES."""
    app = create_app(settings_for(f"sqlite:///{tmp_path / 'unused.db'}"), loaded_model)
    routes, others = {}, set()
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute) and context.path not in DOC_ROUTES:
            routes.update(
                {(method, context.path): context.original_route for method in context.methods - {"HEAD"}}
            )
        else:
            others.add(context.path)
    assert others <= DOC_ROUTES
    roles = {(e.method, e.path): e.role for e in ENDPOINTS}
    assert set(routes) == set(roles)
    scoped = {
        (method, path, name)
        for (method, path), route in routes.items()
        if roles[(method, path)] in (STORE, ANY_KEY)
        for name in id_parameters(route)
    }
    assert scoped == {(c.method, c.path, c.param) for c in ID_CASES}
