"""Uploaded crops: count limit, header checks, decode once within a memory budget, resize to the model.

Every image is checked from its header first (format, pixels, longest side, aspect ratio: see
``model.preprocess.DecodeLimits``), all of a request's images before any is decoded. Each decode then
reserves what it may take (``ImageHeader.decode_bytes``) from the process's ``DecodeBudget`` and waits
while other requests' decodes hold it, so that no burst of requests decodes more at once than the budget.
Decoding goes straight to the model's input size (``model.preprocess.decode_resized``): large JPEGs are
decoded at reduced scale and no full-size array is made.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import numpy as np
from fastapi import UploadFile

from model import ImageDecodeError
from model.preprocess import DecodeLimits, ImageHeader, decode_resized, read_header
from service.common.errors import InvalidInputError, LimitExceededError
from service.common.phases import in_thread, phase
from service.settings import Settings

MAGIC_TYPES = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"BM", "image/bmp"))
MIB = 1024 * 1024


@dataclass(frozen=True)
class Upload:
    """One uploaded image: its bytes, the media type sniffed from them, and the resized pixels."""

    data: bytes
    media_type: str
    pixels: np.ndarray


class DecodeBudget:
    """Bytes of image decoding that may be under way at once in this process, shared by every request.

    ``hold(cost)`` waits until ``cost`` fits beside what is held, first come first served, and gives it
    back when the block ends (also on error or cancellation). Thread-safe and usable from any event loop,
    so one budget covers every app of a process. A capacity of 0 means no budget (nothing waits).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._held = 0
        self._peak = 0
        self._waiters: deque[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    @property
    def held(self) -> int:
        """Bytes held now."""
        return self._held

    @property
    def peak(self) -> int:
        """The most bytes ever held at once."""
        return self._peak

    @asynccontextmanager
    async def hold(self, cost: int) -> AsyncIterator[None]:
        """Hold ``cost`` bytes of the budget for the duration of the block (the wait is phase
        ``decode-budget``)."""
        if not self.capacity:
            yield
            return
        if cost > self.capacity:
            raise ValueError(f"{cost} bytes can never fit a budget of {self.capacity}")
        with phase("decode-budget"):
            await self._acquire(cost)
        try:
            yield
        finally:
            self._release(cost)

    async def _acquire(self, cost: int) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if not self._waiters and self._held + cost <= self.capacity:
                self._take(cost)
                return
            future: asyncio.Future[None] = loop.create_future()
            waiter = (cost, loop, future)
            self._waiters.append(waiter)
        try:
            await future
        except asyncio.CancelledError:
            with self._lock:
                if waiter in self._waiters:  # never granted
                    self._waiters.remove(waiter)
                    self._grant_waiters()
                    raise
            if future.done() and not future.cancelled():  # granted, then cancelled before running on
                self._release(cost)
            raise

    def _take(self, cost: int) -> None:
        self._held += cost
        self._peak = max(self._peak, self._held)

    def _release(self, cost: int) -> None:
        with self._lock:
            self._held -= cost
            self._grant_waiters()

    def _grant_waiters(self) -> None:
        """Grant waiters in order while the first one fits (called with the lock held)."""
        while self._waiters and self._held + self._waiters[0][0] <= self.capacity:
            cost, loop, future = self._waiters.popleft()
            self._take(cost)
            try:
                loop.call_soon_threadsafe(self._resolve, future, cost)
            except RuntimeError:  # that loop is closed: nobody waits any more
                self._held -= cost

    def _resolve(self, future: asyncio.Future[None], cost: int) -> None:
        if future.cancelled():
            self._release(cost)
        else:
            future.set_result(None)


_budgets: dict[int, DecodeBudget] = {}
_budgets_lock = threading.Lock()


def decode_budget(capacity: int) -> DecodeBudget:
    """The process's budget of ``capacity`` bytes (one per capacity, so every app of a process shares it)."""
    with _budgets_lock:
        return _budgets.setdefault(capacity, DecodeBudget(capacity))


@dataclass(frozen=True)
class UploadRules:
    """How many images a request may carry, the bounds each must meet, the size the model takes them
    at, and the memory budget their decoding shares with every other request of the process."""

    max_images: int
    input_size: tuple[int, int]
    limits: DecodeLimits = field(default_factory=DecodeLimits)
    budget: DecodeBudget = field(default_factory=lambda: decode_budget(0))

    @classmethod
    def from_settings(cls, settings: Settings, input_size: tuple[int, int]) -> UploadRules:
        """The rules the settings ask for (``REID_IMAGE_MAX_SIDE``, ``REID_IMAGE_MAX_ASPECT``,
        ``REID_DECODE_MEMORY_MB``, ``REID_MAX_IMAGES_PER_REQUEST``)."""
        limits = DecodeLimits(max_side=settings.image_max_side, max_aspect=settings.image_max_aspect)
        budget = decode_budget(settings.decode_memory_mb * MIB)
        return cls(settings.max_images_per_request, input_size, limits, budget)


def sniff_media_type(data: bytes) -> str:
    """The media type from the file's leading bytes (what the client claims is ignored)."""
    return next((kind for magic, kind in MAGIC_TYPES if data.startswith(magic)), "application/octet-stream")


def _headers(blobs: list[tuple[str, bytes]], rules: UploadRules) -> list[ImageHeader]:
    headers = []
    for name, data in blobs:
        try:
            header = read_header(data, name, rules.limits, rules.input_size)
        except ImageDecodeError as exc:
            raise InvalidInputError(str(exc)) from exc
        budget = rules.budget.capacity
        if budget and header.decode_bytes > budget:
            raise LimitExceededError(
                f"{name}: decoding {header.size[0]}x{header.size[1]} pixels takes "
                f"{header.decode_bytes / MIB:.0f} MiB, over the decoding budget of {budget / MIB:.0f} MiB"
            )
        headers.append(header)
    return headers


def _decode(name: str, data: bytes, rules: UploadRules) -> np.ndarray:
    try:
        return decode_resized(data, rules.input_size, name, rules.limits)
    except ImageDecodeError as exc:
        raise InvalidInputError(str(exc)) from exc


async def read_uploads(files: list[UploadFile], rules: UploadRules, field: str = "images") -> list[Upload]:
    """Read, check, decode and resize uploads; InvalidInputError for none, too many or undecodable ones."""
    if not files:
        raise InvalidInputError(f"no files in '{field}'")
    if len(files) > rules.max_images:
        raise InvalidInputError(f"{len(files)} images sent; at most {rules.max_images} per request")
    blobs = []
    for position, upload in enumerate(files):
        name = f"{field}[{position}]" + (f" ({upload.filename})" if upload.filename else "")
        blobs.append((name, await upload.read()))
    headers = await in_thread("image-check", _headers, blobs, rules)
    uploads = []
    for (name, data), header in zip(blobs, headers, strict=True):
        async with rules.budget.hold(header.decode_bytes):
            pixels = await in_thread("decode", _decode, name, data, rules)
        uploads.append(Upload(data, sniff_media_type(data), pixels))
    return uploads
