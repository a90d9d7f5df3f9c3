"""The engine's BuildKit cache database, read for one fact: how much of it is free pages.

BuildKit keeps its cache keys in a bbolt file (`<DockerRootDir>/buildkit/cache.db`). bbolt never gives space back to
the file system, and it rewrites its whole list of free pages at every commit: a build records each of its steps, a
cached build too. Once most of the file is free (after a prune, or once it fragmented), every build writes megabytes
for nothing and the engine spends its CPU on them: docs/operations.md (a slow engine) says what it costs and how to
compact the file. tools/bootstrap.py warns with `warning()`.

Standard library only (bootstrap runs with the host's python3). The layout read here is bbolt's: two meta pages at the
file's start (the newer, by transaction ID, is current), each naming the page that holds the free list; that page's
header counts the free page IDs (0xFFFF: the count is the list's first 8-byte entry).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

MAGIC = 0xED0CDAED
PAGE_HEADER = struct.Struct("<QHHI")  # page ID, flags, count, overflow
# magic, version, page size, flags, root bucket (page, sequence), free list page, pages, txid, checksum
META = struct.Struct("<IIIIQQQQQQ")
FREELIST_PAGE = 0x10
# A list of this many free pages is 800 KB rewritten at each commit (8 bytes an ID), over 400 MB of the file unused:
# past it, the rewrites cost a cached build more than the build itself (docs/operations.md: a slow engine).
WARN_FREE_PAGES = 100_000


@dataclass(frozen=True)
class FreePages:
    """What a bbolt file's current meta page and free list say."""

    path: Path
    page_size: int
    pages: int  # the high-water mark: the file holds this many pages
    free: int

    @property
    def file_mb(self) -> float:
        return self.pages * self.page_size / 1e6

    @property
    def list_mb(self) -> float:
        """What each commit writes for the free list alone."""
        return self.free * 8 / 1e6

    @property
    def free_share(self) -> float:
        return self.free / self.pages if self.pages else 0.0


def read(path: Path) -> FreePages | None:
    """The file's free pages, or None when it is missing, unreadable or not a bbolt file."""
    try:
        with path.open("rb") as db:
            head = db.read(2 * 4096)
            metas = []
            for offset in (0, 4096):
                if len(head) < offset + PAGE_HEADER.size + META.size:
                    continue
                fields = META.unpack_from(head, offset + PAGE_HEADER.size)
                if fields[0] == MAGIC:
                    metas.append(fields)
            if not metas:
                return None
            meta = max(metas, key=lambda fields: fields[8])
            page_size, freelist, pages = meta[2], meta[6], meta[7]
            db.seek(freelist * page_size)
            header = db.read(PAGE_HEADER.size + 8)
    except OSError:
        return None
    if len(header) < PAGE_HEADER.size + 8:
        return None
    _, flags, count, _ = PAGE_HEADER.unpack_from(header)
    if not flags & FREELIST_PAGE:
        return None
    if count == 0xFFFF:
        (count,) = struct.unpack_from("<Q", header, PAGE_HEADER.size)
    return FreePages(path=path, page_size=page_size, pages=pages, free=count)


def cache_db(root_dir: str) -> Path:
    return Path(root_dir) / "buildkit" / "cache.db"


def warning(root_dir: str, limit: int = WARN_FREE_PAGES) -> str | None:
    """One line for bootstrap when the engine's cache database has grown a free list past limit, else None (also for
    an engine that names no data directory of its own)."""
    if not Path(root_dir).is_absolute():
        return None
    found = read(cache_db(root_dir))
    if found is None or found.free < limit:
        return None
    return (
        f"the engine's BuildKit cache database ({found.path}, {found.file_mb:,.0f} MB) is {found.free_share:.0%} free "
        f"pages, and the engine rewrites their list ({found.list_mb:.1f} MB) at every build step it records: every "
        "build, a cached one too, takes seconds longer. To compact it, stop the engine, move that file away and "
        "start the engine (the build cache goes with it: the next builds are cold); docs/operations.md, a slow engine"
    )
