"""Decoding images from strangers: bounds read from the header before any pixel is decoded, the cost of a
decode known in advance, large JPEGs decoded at reduced scale, and the same pixels as the plain path."""

from __future__ import annotations

import contextlib
import io
import struct
import time
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from model import ImageDecodeError, load_image
from model.preprocess import DecodeLimits, decode_resized, read_header, resize_rgb

CROPS = DecodeLimits(max_side=4096, max_aspect=8.0)
INPUT = (256, 128)


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int, color_type: int = 0) -> bytes:
    """A few dozen bytes of PNG whose header declares ``width`` x ``height`` pixels (8-bit)."""
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


def encode(array: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def test_the_issue_png_of_a_few_bytes_is_refused_from_its_header():
    hostile = png_declaring(1, 16_000_000)
    assert len(hostile) < 100
    assert read_header(hostile).size == (1, 16_000_000)  # the pixel limit alone lets it through
    started = time.perf_counter()
    with pytest.raises(ImageDecodeError, match="side over the limit of 4096"):
        read_header(hostile, "crop", CROPS)
    with pytest.raises(ImageDecodeError, match="side over the limit of 4096"):
        decode_resized(hostile, INPUT, "crop", CROPS)
    assert time.perf_counter() - started < 0.1


@pytest.mark.parametrize(
    ("size", "message"),
    [
        ((16_000_000, 1), "side over the limit"),
        ((5000, 600), "side over the limit"),
        ((4096, 500), "more elongated than the limit of 8:1"),
        ((100, 801), "more elongated"),
        ((5000, 5000), "exceeds (the )?limit of 16000000"),
    ],
)
def test_sides_aspect_and_pixels_are_bounded(size, message):
    with pytest.raises(ImageDecodeError, match=message):
        read_header(png_declaring(*size), "crop", CROPS)


@pytest.mark.parametrize("size", [(100, 800), (4096, 512), (3000, 3000), (1, 1)])
def test_sizes_within_the_bounds_pass_the_header_check(size):
    header = read_header(png_declaring(*size), "crop", CROPS)
    assert header.size == size and header.decoded_size == size
    assert header.decode_bytes == size[0] * size[1] * (1 + 4)  # gray, then its RGB copy


def test_rgb_costs_four_bytes_a_pixel_and_needs_no_copy():
    assert read_header(png_declaring(1000, 2000, color_type=2)).decode_bytes == 1000 * 2000 * 4


def test_a_large_jpeg_is_decoded_at_reduced_scale():
    rng = np.random.default_rng(0)
    photo = np.asarray(
        Image.fromarray(rng.integers(0, 255, (64, 32, 3), dtype=np.uint8)).resize((1024, 2048)), np.uint8
    )
    data = encode(photo, "JPEG", quality=95)
    header = read_header(data, "photo", CROPS, INPUT)
    assert header.size == (1024, 2048) and header.decoded_size == (128, 256)  # 1/8: still the input size
    assert header.decode_bytes == 128 * 256 * 4
    reduced = decode_resized(data, INPUT, "photo", CROPS)
    full = resize_rgb(load_image(data), INPUT)
    assert reduced.shape == full.shape == (256, 128, 3)
    assert np.abs(reduced.astype(int) - full.astype(int)).mean() < 3  # the same picture


def test_a_jpeg_near_the_input_size_is_decoded_in_full():
    crop = np.random.default_rng(1).integers(0, 255, (300, 150, 3), dtype=np.uint8)
    data = encode(crop, "JPEG")
    assert read_header(data, "crop", CROPS, INPUT).decoded_size == (150, 300)
    assert np.array_equal(decode_resized(data, INPUT, "crop", CROPS), resize_rgb(load_image(data), INPUT))


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(
    height=st.integers(1, 300),
    width=st.integers(1, 300),
    fmt=st.sampled_from(["PNG", "BMP"]),
    mode=st.sampled_from(["RGB", "L", "RGBA", "P"]),
    seed=st.integers(0, 2**16),
)
def test_the_same_pixels_as_the_plain_path(height, width, fmt, mode, seed):
    pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(pixels).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    data = buffer.getvalue()
    try:
        expected = resize_rgb(load_image(data), INPUT)
    except ImageDecodeError:
        with pytest.raises(ImageDecodeError):
            decode_resized(data, INPUT)
        return
    assert np.array_equal(decode_resized(data, INPUT), expected)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    data=st.binary(max_size=300)
    | st.builds(lambda n, b: png_declaring(n, 1)[:b], st.integers(1, 10**6), st.integers(0, 80))
)
def test_any_bytes_decode_or_raise_the_one_error(data):
    try:
        header = read_header(data, "x", CROPS, INPUT)
    except ImageDecodeError:
        return
    assert header.decode_bytes <= 16_000_000 * 8
    with contextlib.suppress(ImageDecodeError):  # a header can be fine and the rest broken
        assert decode_resized(data, INPUT, "x", CROPS).shape == (256, 128, 3)
