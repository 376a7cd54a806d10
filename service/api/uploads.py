"""Validating uploaded images: count limit, decode once (corrupt or unsupported -> 422), resize."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from fastapi import HTTPException, UploadFile
from starlette.concurrency import run_in_threadpool

from model import ImageDecodeError, load_image
from service.state import AppState

MAGIC_TYPES = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"BM", "image/bmp"))


@dataclass(frozen=True)
class Upload:
    """One uploaded image: its bytes, the media type sniffed from them, and the resized pixels."""

    data: bytes
    media_type: str
    pixels: np.ndarray


def sniff_media_type(data: bytes) -> str:
    """The media type from the file's leading bytes (what the client claims is ignored)."""
    return next((kind for magic, kind in MAGIC_TYPES if data.startswith(magic)), "application/octet-stream")


def _decode(state: AppState, blobs: list[tuple[str, bytes]]) -> list[Upload]:
    uploads = []
    for name, data in blobs:
        try:
            pixels = state.batcher.prepare(load_image(data, name=name))
        except ImageDecodeError as exc:
            raise HTTPException(422, str(exc)) from exc
        uploads.append(Upload(data, sniff_media_type(data), pixels))
    return uploads


async def read_uploads(state: AppState, files: list[UploadFile], field: str = "images") -> list[Upload]:
    """Read, decode and resize uploads; 422 for none, too many or undecodable ones."""
    limit = state.settings.max_images_per_request
    if not files:
        raise HTTPException(422, f"no files in '{field}'")
    if len(files) > limit:
        raise HTTPException(422, f"{len(files)} images sent; at most {limit} per request")
    blobs = []
    for position, upload in enumerate(files):
        name = f"{field}[{position}]" + (f" ({upload.filename})" if upload.filename else "")
        blobs.append((name, await upload.read()))
    return await run_in_threadpool(_decode, state, blobs)


async def read_images(state: AppState, files: list[UploadFile], field: str = "images") -> list[np.ndarray]:
    """The resized pixels of valid uploads (see ``read_uploads``)."""
    return [upload.pixels for upload in await read_uploads(state, files, field)]
