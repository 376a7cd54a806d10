"""Uploaded crops: count limit, decode once (corrupt or unsupported is refused), resize to the model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from fastapi import UploadFile
from starlette.concurrency import run_in_threadpool

from model import ImageDecodeError, load_image
from model.preprocess import resize_rgb
from service.common.errors import InvalidInputError

MAGIC_TYPES = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"BM", "image/bmp"))


@dataclass(frozen=True)
class Upload:
    """One uploaded image: its bytes, the media type sniffed from them, and the resized pixels."""

    data: bytes
    media_type: str
    pixels: np.ndarray


@dataclass(frozen=True)
class UploadRules:
    """How many images a request may carry and the size the model takes them at."""

    max_images: int
    input_size: tuple[int, int]


def sniff_media_type(data: bytes) -> str:
    """The media type from the file's leading bytes (what the client claims is ignored)."""
    return next((kind for magic, kind in MAGIC_TYPES if data.startswith(magic)), "application/octet-stream")


def _decode(blobs: list[tuple[str, bytes]], input_size: tuple[int, int]) -> list[Upload]:
    uploads = []
    for name, data in blobs:
        try:
            pixels = resize_rgb(load_image(data, name=name), input_size)
        except ImageDecodeError as exc:
            raise InvalidInputError(str(exc)) from exc
        uploads.append(Upload(data, sniff_media_type(data), pixels))
    return uploads


async def read_uploads(files: list[UploadFile], rules: UploadRules, field: str = "images") -> list[Upload]:
    """Read, decode and resize uploads; InvalidInputError for none, too many or undecodable ones."""
    if not files:
        raise InvalidInputError(f"no files in '{field}'")
    if len(files) > rules.max_images:
        raise InvalidInputError(f"{len(files)} images sent; at most {rules.max_images} per request")
    blobs = []
    for position, upload in enumerate(files):
        name = f"{field}[{position}]" + (f" ({upload.filename})" if upload.filename else "")
        blobs.append((name, await upload.read()))
    return await run_in_threadpool(_decode, blobs, rules.input_size)
