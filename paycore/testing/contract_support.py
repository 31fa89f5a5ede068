"""What the gateway contract suite (`paycore.testing.contract`) is built from.

- `ProviderTotals`: what a sandbox says a payment has captured and refunded;
- `needs`: marks a contract test with the capabilities and test methods it needs,
  so it is skipped, with the reason, for a gateway that lacks them;
- `ledger_text`: every row of every table of a ledger database, as text;
- `ExchangeRecorder`: a hook implementation keeping every scrubbed transcript.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import field, frozen

from paycore.hookspecs import hookimpl

if TYPE_CHECKING:
    from paycore.gateways.base import Operation
    from paycore.gateways.scrub import Transcript
    from paycore.transactions.store import Store

__all__ = [
    "ExchangeRecorder",
    "ProviderTotals",
    "Requirement",
    "ledger_text",
    "needs",
    "requirement_of",
]

F = TypeVar("F", bound=Callable[..., Any])

_REQUIREMENT = "_paycore_contract_needs"


@frozen(kw_only=True)
class ProviderTotals:
    """What the provider's sandbox says one payment has captured and refunded.

    Amounts are integers of minor units in the contract's currency. ``captures`` and
    ``refunds`` count the successful operations when the sandbox can tell (None when
    it cannot): they show that a capture retried after a lost answer happened once.
    """

    captured: int
    refunded: int
    captures: int | None = None
    refunds: int | None = None


@frozen
class Requirement:
    """What a contract test needs from the gateway and from the contract subclass.

    ``operations``: every one must be declared. ``any_of``: at least one of them.
    ``flags``: `Capabilities` attributes and the value they must have (``False``
    means the test is about gateways *without* that capability). ``methods``:
    contract attributes (`PaymentMethod` fields such as ``challenge``) that must be set.
    """

    operations: tuple[Operation, ...] = ()
    any_of: tuple[Operation, ...] = ()
    flags: Mapping[str, bool] = field(factory=dict)
    methods: tuple[str, ...] = ()


def needs(
    *operations: Operation,
    any_of: tuple[Operation, ...] = (),
    methods: tuple[str, ...] = (),
    **flags: bool,
) -> Callable[[F], F]:
    """Mark a contract test with its `Requirement` (read by the contract's autouse fixture)."""
    requirement = Requirement(operations, any_of, flags, methods)

    def mark(test: F) -> F:
        setattr(test, _REQUIREMENT, requirement)
        return test

    return mark


def requirement_of(test: Callable[..., Any]) -> Requirement | None:
    requirement = getattr(test, _REQUIREMENT, None)
    return requirement if isinstance(requirement, Requirement) else None


# -- what came out -----------------------------------------------------------------------


def ledger_text(store: Store) -> str:
    """Every row of every table of ``store``'s database, one line each, as text."""
    import sqlalchemy as sa

    tables = sa.MetaData()
    tables.reflect(store.engine)
    lines = []
    with store.engine.connect() as connection:
        for table in tables.sorted_tables:
            for row in connection.execute(table.select()):
                lines.append(f"{table.name}: {tuple(row)!r}")
    return "\n".join(lines)


class ExchangeRecorder:
    """A ``paycore_gateway_exchange`` implementation keeping every transcript it gets."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._transcripts: list[Transcript] = []

    @hookimpl
    def paycore_gateway_exchange(
        self, gateway: str, operation: str, transcript: Transcript
    ) -> None:
        with self._lock:
            self._transcripts.append(transcript)

    @property
    def transcripts(self) -> tuple[Transcript, ...]:
        with self._lock:
            return tuple(self._transcripts)
