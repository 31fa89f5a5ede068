"""What every sandbox's in-memory state needs: one lock, ids, a clock.

Routes run on the server's event loop while tests read the state from their own
thread (``GET /_sandbox/state``, or the sandbox object directly), so every read and
every change happens under `SandboxState.lock`: a state's methods are decorated with
`locked`, which also lets what fell due meanwhile lapse first (`SandboxState._sweep`:
a page or an invoice expires when its time has come, noticed by the next call).
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

__all__ = ["IdGenerator", "SandboxState", "locked"]

S = TypeVar("S", bound="SandboxState")
P = ParamSpec("P")
R = TypeVar("R")


class IdGenerator:
    """Provider-looking ids, ``pay_3f9c…``: a prefix and 24 hex digits (`new`), or
    decimal digits (`numeric`, ``pi_1787730829493927936``).

    Seeded, the sequence repeats from run to run (useful for recorded exchanges).
    """

    def __init__(self, seed: int | None = None) -> None:
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def new(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}_{self._random.getrandbits(96):024x}"

    def numeric(self, prefix: str, digits: int = 19) -> str:
        """``prefix_`` and ``digits`` decimal digits, the first never 0."""
        with self._lock:
            return f"{prefix}_{self._random.randrange(10 ** (digits - 1), 10**digits)}"


class SandboxState:
    """Base of a sandbox's state: subclass it and change it only under ``lock``."""

    def __init__(self, *, seed: int | None = None, clock: Callable[[], float] = time.time) -> None:
        self.lock = threading.RLock()
        self.ids = IdGenerator(seed)
        self.clock = clock

    def now(self) -> int:
        """The current time in whole seconds since the epoch, as providers write it."""
        return int(self.clock())

    def _sweep(self) -> None:
        """Let what is due by now lapse (expiries, deadlines); called under the lock.

        Nothing lapses by default; a provider with deadlines overrides it.
        """


def locked(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Run a state method under the state's lock, after letting what is due lapse."""

    @functools.wraps(method)
    def run(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self.lock:
            self._sweep()
            return method(self, *args, **kwargs)

    return run
