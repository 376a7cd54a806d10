"""Validating uploaded images: count limit, decode once (corrupt or unsupported -> 422), resize."""

from __future__ import annotations

import numpy as np
from fastapi import HTTPException, UploadFile
from starlette.concurrency import run_in_threadpool

from model import ImageDecodeError, load_image
from service.state import AppState


def _decode(state: AppState, blobs: list[tuple[str, bytes]]) -> list[np.ndarray]:
    images = []
    for name, data in blobs:
        try:
            images.append(state.batcher.prepare(load_image(data, name=name)))
        except ImageDecodeError as exc:
            raise HTTPException(422, str(exc)) from exc
    return images


async def read_images(state: AppState, files: list[UploadFile], field: str = "images") -> list[np.ndarray]:
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
