"""What happens to the names in a directory, as the kernel reports it (inotify(7), through libc): the tests watch a
volume's directory on the host, where every create, removal, rename and mode change a container makes shows, in order.
"""

from __future__ import annotations

import ctypes
import os
import struct
from types import TracebackType

# inotify(7)'s event bits this watch asks for, by the name the tests read.
EVENTS = {
    "ATTRIB": 0x004,
    "MOVED_FROM": 0x040,
    "MOVED_TO": 0x080,
    "CREATE": 0x100,
    "DELETE": 0x200,
}
HEADER = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then the name, len bytes


class DirWatch:
    """`with DirWatch(path) as watch: ...; watch.events()`: [(event, name), ...] in the kernel's order."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._fd = -1
        self._seen: list[tuple[str, str]] = []

    def __enter__(self) -> DirWatch:
        # IN_NONBLOCK and IN_CLOEXEC are O_NONBLOCK and O_CLOEXEC (inotify_init1(2)).
        self._fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), f"inotify_init1: {os.strerror(ctypes.get_errno())}")
        mask = sum(EVENTS.values())
        if self._libc.inotify_add_watch(self._fd, self.path.encode(), mask) < 0:
            errno = ctypes.get_errno()
            os.close(self._fd)
            raise OSError(errno, f"inotify_add_watch {self.path}: {os.strerror(errno)}")
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.events()
        os.close(self._fd)
        self._fd = -1

    def events(self) -> list[tuple[str, str]]:
        """Every event so far (read from the kernel's queue, which holds thousands), or until the watch ended."""
        while self._fd >= 0:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                return list(self._seen)
            offset = 0
            while offset < len(data):
                _, mask, _, length = HEADER.unpack_from(data, offset)
                name = data[offset + HEADER.size : offset + HEADER.size + length].rstrip(b"\0").decode()
                offset += HEADER.size + length
                self._seen += [(event, name) for event, bit in EVENTS.items() if mask & bit]
        return list(self._seen)
