"""A bounded load generator for fault tests: threads sending requests to 127.0.0.1 until a count or a deadline.

It counts 2xx answers, other statuses and connection errors; it never targets anything but the loopback.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

MAX_DURATION = 120.0
MAX_REQUESTS = 100_000


@dataclass
class LoadResult:
    sent: int = 0
    ok: int = 0
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    slowest: float = 0.0  # seconds: the longest any request took, answered or not

    @property
    def failed(self) -> int:
        return self.sent - self.ok

    def __str__(self) -> str:
        other = {status: n for status, n in sorted(self.statuses.items()) if not 200 <= status < 300}
        errors = dict(self.errors) or 0
        return (
            f"{self.sent} sent, {self.ok} ok, {self.failed} failed (non-2xx {other or 0}, errors {errors}); "
            f"slowest {self.slowest:.2f} s"
        )


class Load:
    """`with Load(url, clients=4) as load: ...` sends requests in the background while the block runs."""

    def __init__(self, url: str, clients: int = 4, duration: float = 30.0, max_requests: int = 20_000, timeout=10):
        if urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
            raise ValueError(f"load tests target the loopback only, not {url}")
        self.url, self.clients, self.timeout = url, clients, timeout
        self.duration, self.max_requests = min(duration, MAX_DURATION), min(max_requests, MAX_REQUESTS)
        self.result = LoadResult()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def request(self, session: requests.Session, number: int) -> requests.Response:
        """The `number`-th request of the load (from 1): a GET of the URL; a subclass may send others."""
        return session.get(self.url, timeout=self.timeout)

    def _client(self, deadline: float) -> None:
        session = requests.Session()
        while not self._stop.is_set() and time.monotonic() < deadline:
            with self._lock:
                if self.result.sent >= self.max_requests:
                    return
                self.result.sent += 1
                number = self.result.sent
            started = time.monotonic()
            try:
                status = self.request(session, number).status_code
                error = None
            except requests.RequestException as exc:
                status, error = None, type(exc).__name__
            with self._lock:
                self.result.slowest = max(self.result.slowest, time.monotonic() - started)
                if status is not None:
                    self.result.statuses[status] += 1
                if status is not None and 200 <= status < 300:
                    self.result.ok += 1
                elif error:
                    self.result.errors[error] += 1
        session.close()

    def wait_for_requests(self, count: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while self.result.ok < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"load did not get {count} answers within {timeout} s: {self.result}")
            time.sleep(0.05)

    def __enter__(self) -> Load:
        deadline = time.monotonic() + self.duration
        self._threads = [threading.Thread(target=self._client, args=(deadline,)) for _ in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def run_out(self) -> None:
        """Wait until the load has used its whole duration or request count."""
        for thread in self._threads:
            thread.join(timeout=self.duration + self.timeout + 5)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 5)
