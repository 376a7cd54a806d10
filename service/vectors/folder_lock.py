"""One index folder, one process: an exclusive lock file held while a process uses the folder.

Two servers (or a server and ``reid-admin rebuild-index``) saving into the same folder would
overwrite each other's indexes and watermarks. Whoever opens a folder takes ``.lock`` in it with
``flock``; a second process is refused with the holder's pid. The kernel drops the lock when the
holder exits, however it exits, so a crash leaves nothing to clean up. Within one process the lock
is shared (counted), so app instances of one process (tests, a restart in place) can reopen it.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path
from types import TracebackType

LOCK_NAME = ".lock"

_held: dict[Path, list[int]] = {}
_guard = threading.Lock()


class IndexFolderBusyError(RuntimeError):
    """Another process holds the index folder."""


class IndexFolderLock:
    """The lock on one index folder (re-entrant within a process); use as a context manager."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder).absolute()
        self.path = self.folder / LOCK_NAME
        self._taken = False

    def acquire(self) -> None:
        """Take the lock (creating the folder), or raise IndexFolderBusyError naming the holder."""
        with _guard:
            held = _held.get(self.path)
            if held is not None:
                held[1] += 1
                self._taken = True
                return
            self.folder.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(descriptor, 32).decode(errors="replace").strip() or "unknown"
                os.close(descriptor)
                raise IndexFolderBusyError(
                    f"the index folder {self.folder} is in use by process {holder} (a running reid-serve "
                    "or reid-admin); one folder belongs to one process at a time. Stop that process, or "
                    "give this one a folder of its own with REID_INDEX_DIR."
                ) from None
            os.ftruncate(descriptor, 0)
            os.write(descriptor, f"{os.getpid()}\n".encode())
            _held[self.path] = [descriptor, 1]
            self._taken = True

    def release(self) -> None:
        """Give the lock back (the file stays; the kernel lock goes with the last holder in this process)."""
        if not self._taken:
            return
        self._taken = False
        with _guard:
            held = _held.get(self.path)
            if held is None:
                return
            held[1] -= 1
            if held[1] == 0:
                del _held[self.path]
                os.close(held[0])

    def __enter__(self) -> IndexFolderLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.release()
