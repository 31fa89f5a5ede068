"""Idempotency keys as providers honour them: a replay gets the stored answer.

The same key with the same request (method, path, body) answers what the first
request answered, without doing it again; the same key with a different request is
a conflict the sandbox reports (409). Keys expire after ``window`` seconds; expired
answers are dropped as new ones are saved, so a long-running sandbox keeps only a
window's worth. Only answers of requests that were carried out are stored: a request
refused by validation may be corrected and sent again with the same key.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from attrs import frozen

__all__ = ["IdempotencyStore", "StoredResponse", "fingerprint"]

DEFAULT_WINDOW = 24 * 3600.0


def fingerprint(method: str, path: str, body: Any) -> str:
    """A digest of a request, insensitive to JSON key order and whitespace."""
    canonical = json.dumps([method.upper(), path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@frozen
class StoredResponse:
    fingerprint: str
    status_code: int
    body: Any
    stored_at: float


class IdempotencyStore:
    """Answers stored by (scope, key); ``scope`` keeps one account's keys from another's."""

    def __init__(
        self, *, window: float = DEFAULT_WINDOW, clock: Callable[[], float] = time.time
    ) -> None:
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        # Oldest first: answers are appended as they are saved, so the expired ones
        # are always at the front.
        self._stored: OrderedDict[tuple[str, str], StoredResponse] = OrderedDict()

    def __len__(self) -> int:
        """How many answers are held (some may have expired since the last save)."""
        with self._lock:
            return len(self._stored)

    def lookup(self, scope: str, key: str) -> StoredResponse | None:
        """The answer stored for ``key`` within the window, if any."""
        with self._lock:
            stored = self._stored.get((scope, key))
            if stored is not None and self._clock() - stored.stored_at > self.window:
                del self._stored[(scope, key)]
                return None
            return stored

    def save(self, scope: str, key: str, fingerprint: str, status_code: int, body: Any) -> None:
        """Store an answer for ``key``, and drop the answers whose window has passed."""
        with self._lock:
            now = self._clock()
            self._purge(now)
            self._stored[(scope, key)] = StoredResponse(fingerprint, status_code, body, now)
            self._stored.move_to_end((scope, key))

    def _purge(self, now: float) -> None:
        # Each answer is dropped once, from the front, so saving stays O(1) amortised.
        stored = self._stored
        while stored:
            oldest = next(iter(stored.values()))
            if now - oldest.stored_at <= self.window:
                return
            stored.popitem(last=False)
