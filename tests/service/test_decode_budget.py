"""Hostile images cost the service almost nothing: refused from their header, decoded at reduced size when
the format allows, and decoded within one memory budget however many requests arrive at once."""

from __future__ import annotations

import asyncio
import io
import random
import struct
import threading
import time
import zlib

import numpy as np
import pytest
from fastapi import UploadFile
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from model.preprocess import DecodeLimits, read_header
from service.common.errors import InvalidInputError, LimitExceededError
from service.embedding.uploads import DecodeBudget, UploadRules, read_uploads
from service.storage.db import migrate

INPUT = (64, 32)


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


def jpeg_declaring(width: int, height: int) -> bytes:
    """A real 16x16 JPEG whose frame header is rewritten to declare ``width`` x ``height``."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "gray").save(buffer, format="JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def bmp_declaring(width: int, height: int) -> bytes:
    """A BMP header declaring ``width`` x ``height`` 24-bit pixels, with almost no pixel data."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + 16, 0, 0, 14 + 40) + info + b"\x00" * 16


def png(width: int, height: int, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


HOSTILE = {
    "1 x 16,000,000 PNG": png_declaring(1, 16_000_000),
    "16,000,000 x 1 PNG": png_declaring(16_000_000, 1),
    "4,097 x 3,000 PNG": png_declaring(4097, 3000),
    "1:9 PNG": png_declaring(300, 2700),
    "65,000 x 65,000 JPEG": jpeg_declaring(65000, 65000),
    "8,000 x 2,000 JPEG": jpeg_declaring(8000, 2000),
    "100,000 x 100 BMP": bmp_declaring(100_000, 100),
    "5,000 x 5,000 BMP": bmp_declaring(5000, 5000),
}


@pytest.fixture
def crops_client(tmp_path, settings_for, start_app, helpers):
    url = f"sqlite:///{tmp_path / 'decode.db'}"
    migrate(url)
    client = start_app(settings_for(url, rate_limit_per_minute=0, store_crops=True))
    return client, helpers.make_store(client, ["entrance"])


def post_images(client, store, images: list[bytes]):
    return client.post(
        "/sightings",
        data={"camera_id": store["cameras"]["entrance"], "captured_at": "2025-11-25T10:00:00Z"},
        files=[("images", (f"{i}.bin", data, "application/octet-stream")) for i, data in enumerate(images)],
        headers=store["headers"],
    )


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_images_are_refused_from_their_header_at_once(crops_client, name):
    client, store = crops_client
    started = time.perf_counter()
    answer = post_images(client, store, [png(32, 64), HOSTILE[name]])
    assert answer.status_code == 422, answer.text
    assert "images[1]" in answer.json()["detail"]
    assert time.perf_counter() - started < 1.0
    for route in ("/embed", "/match"):
        field = "images" if route == "/embed" else "image"
        data = {"case_id": "c"} if route == "/match" else {}
        files = [(field, ("x.bin", HOSTILE[name], "application/octet-stream"))]
        headers = store["headers"]
        assert client.post(route, data=data, files=files, headers=headers).status_code == 422


def test_a_kept_crop_is_served_as_an_image_that_is_never_sniffed(crops_client):
    client, store = crops_client
    posted = post_images(client, store, [png(32, 64)])
    assert posted.status_code == 201, posted.text
    crop = client.get(
        f"/sightings/{posted.json()['sightings'][0]['sighting_id']}/crop", headers=store["headers"]
    )
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/png"
    assert crop.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in crop.headers["content-security-policy"]


def test_an_image_over_the_whole_budget_is_refused(tmp_path, settings_for, start_app, helpers):
    url = f"sqlite:///{tmp_path / 'budget.db'}"
    migrate(url)
    client = start_app(settings_for(url, decode_memory_mb=1))
    store = helpers.make_store(client, ["entrance"])
    answer = post_images(client, store, [png(600, 600)])  # 600 x 600 RGB: 1.4 MiB to decode
    assert answer.status_code == 422 and "decoding budget of 1 MiB" in answer.text, answer.text
    assert post_images(client, store, [png(300, 300)]).status_code == 201


def upload(data: bytes, name: str = "x.png") -> UploadFile:
    return UploadFile(io.BytesIO(data), filename=name)


def test_a_burst_of_requests_never_decodes_more_than_the_budget():
    images = [png(400, 800, seed) for seed in range(8)]
    cost = read_header(images[0], input_size=INPUT).decode_bytes
    budget = DecodeBudget(2 * cost)  # room for two decodes at once
    rules = UploadRules(8, INPUT, DecodeLimits(max_side=4096, max_aspect=8), budget)

    async def burst():
        requests = [read_uploads([upload(d) for d in images], rules) for _ in range(4)]
        return await asyncio.gather(*requests)

    results = asyncio.run(burst())
    assert all(len(r) == 8 and r[0].pixels.shape == (64, 32, 3) for r in results)
    assert budget.peak == 2 * cost and budget.held == 0


def test_header_checks_come_before_any_decode():
    budget = DecodeBudget(10**9)
    rules = UploadRules(8, INPUT, DecodeLimits(max_side=4096, max_aspect=8), budget)
    with pytest.raises(InvalidInputError, match="images\\[2\\]"):
        asyncio.run(
            read_uploads([upload(png(32, 64)), upload(png(32, 64)), upload(HOSTILE["1:9 PNG"])], rules)
        )
    assert budget.peak == 0  # the good images before it were not decoded either
    with pytest.raises(LimitExceededError):
        small = UploadRules(8, INPUT, DecodeLimits(), DecodeBudget(1000))
        asyncio.run(read_uploads([upload(png(32, 64))], small))


@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(
    capacity=st.integers(1, 100),
    costs=st.lists(st.integers(1, 100), min_size=1, max_size=30),
    cancelled=st.sets(st.integers(0, 29), max_size=10),
    seed=st.integers(0, 1000),
)
def test_the_budget_is_never_exceeded_and_always_given_back(capacity, costs, cancelled, seed):
    costs = [min(c, capacity) for c in costs]
    budget = DecodeBudget(capacity)
    shuffle = random.Random(seed)
    over: list[int] = []

    async def one(cost: int) -> None:
        async with budget.hold(cost):
            if budget.held > capacity:
                over.append(budget.held)
            await asyncio.sleep(shuffle.random() / 1000)

    async def main() -> None:
        tasks = [asyncio.create_task(one(c)) for c in costs]
        await asyncio.sleep(0)
        for index in cancelled:
            if index < len(tasks):
                tasks[index].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())
    assert not over and budget.held == 0 and budget.peak <= capacity


def test_one_budget_serves_several_event_loops_at_once():
    budget = DecodeBudget(10)
    over: list[int] = []

    def loop_worker() -> None:
        async def one() -> None:
            async with budget.hold(6):  # two never fit at once, whichever loop they come from
                if budget.held > 10:
                    over.append(budget.held)
                await asyncio.sleep(0.002)

        async def main() -> None:
            await asyncio.gather(*(one() for _ in range(20)))

        asyncio.run(main())

    threads = [threading.Thread(target=loop_worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not over and budget.held == 0 and budget.peak == 6
