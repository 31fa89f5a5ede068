"""The OMS's vocabulary: instructions about an order's payments and what they did (DESIGN §7).

An `Instruction` is one thing an order management system asks of an order's money:

- ``capture``: a fulfilment (a shipment) is on its way, take ``amount`` for it;
- ``cancel``: release what is authorized and not captured (all of it, or ``amount``);
- ``refund``: a return came back, give ``amount`` back.

Each carries the order's id and the merchant's id of the event (the fulfilment, the
return, the cancellation): the idempotency keys derive from it, so carrying out an
instruction twice, from one process or many, does it once. `Instruction.from_json`
reads the JSON Lines form batch jobs take, one object per line::

    {"op": "capture", "order_id": "o1", "fulfillment_id": "s1", "amount": 2500, "currency": "EUR"}
    {"op": "capture", "order_id": "o1", "fulfillment_id": "s2", "amount": 500, "currency": "EUR",
     "final": true}
    {"op": "cancel", "order_id": "o2"}
    {"op": "cancel", "order_id": "o3", "cancellation_id": "c1", "amount": 1000, "currency": "EUR"}
    {"op": "refund", "order_id": "o1", "return_id": "r1", "amount": 1200, "currency": "EUR"}

Amounts are integers of minor units with their currency, never floats.

An `InstructionResult` says what came of one: ``succeeded``, ``declined``, ``failed``
(definitely not done: safe to run again), ``unknown`` (sent, the outcome is not known:
reconciliation finds out, never resend blindly) or ``skipped`` (done before: nothing
was sent), with the ledger's transactions it made or found.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import Any

from attrs import field, frozen

from paycore.errors import InvalidAmount, InvalidRequest
from paycore.gateways.scrub import Scrubber
from paycore.money import Money
from paycore.transactions.model import _member
from paycore.transactions.records import PaymentTransaction

__all__ = [
    "Instruction",
    "InstructionKind",
    "InstructionOutcome",
    "InstructionResult",
]

# The merchant's ids travel inside idempotency keys: visible ASCII, no colon.
_REFERENCE = re.compile(r"[!-9;-~]{1,200}")
_ORDER = re.compile(r"[!-~]{1,255}")


class InstructionKind(enum.StrEnum):
    CAPTURE = "capture"
    CANCEL = "cancel"
    REFUND = "refund"


class InstructionOutcome(enum.StrEnum):
    """What came of an instruction, worst first when several payments took part."""

    UNKNOWN = "unknown"  # sent; reconciliation will tell
    FAILED = "failed"  # definitely not done: safe to run again
    DECLINED = "declined"  # the gateway refused
    SUCCEEDED = "succeeded"
    SKIPPED = "skipped"  # done before; nothing was sent now


# The JSON key naming each kind's reference, and whether it is required.
_REFERENCE_KEYS = {
    InstructionKind.CAPTURE: ("fulfillment_id", True),
    InstructionKind.CANCEL: ("cancellation_id", False),
    InstructionKind.REFUND: ("return_id", True),
}
_KNOWN_KEYS = frozenset(
    {"op", "order_id", "amount", "currency", "final"} | {k for k, _ in _REFERENCE_KEYS.values()}
)


_MASK_CARDS = Scrubber(())


def _kind(value: InstructionKind | str) -> InstructionKind:
    return _member(InstructionKind, value, "op")


@frozen(kw_only=True)
class Instruction:
    """One instruction about an order's payments; see the module docstring.

    ``reference`` is the fulfilment id (capture), return id (refund) or cancellation
    id (cancel: required with an amount; a cancel of everything without one is keyed
    by the order).
    ``final`` (capture only): the order's last capture, releasing what stays authorized.
    """

    kind: InstructionKind = field(converter=_kind)
    order_id: str
    reference: str | None = None
    amount: Money | None = None
    final: bool = False

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.order_id, str) or not _ORDER.fullmatch(self.order_id):
            raise InvalidRequest("order_id must be 1 to 255 visible ASCII characters")
        name, required = _REFERENCE_KEYS[self.kind]
        if self.reference is None:
            if required:
                raise InvalidRequest(f"a {self.kind} needs a {name}")
        elif not isinstance(self.reference, str) or not _REFERENCE.fullmatch(self.reference):
            raise InvalidRequest(f"{name} must be 1 to 200 visible ASCII characters, no ':'")
        if self.amount is None:
            if self.kind is not InstructionKind.CANCEL:
                raise InvalidRequest(f"a {self.kind} needs an amount")
        elif self.kind is InstructionKind.CANCEL and self.reference is None:
            # Each partial cancel is its own event: keyed by the order alone, a second
            # one would be taken for the first, done before.
            raise InvalidRequest("a cancel of an amount needs a cancellation_id")
        elif not isinstance(self.amount, Money):
            raise InvalidAmount(f"amount must be Money, not {type(self.amount).__name__}")
        elif not self.amount.is_positive():
            raise InvalidAmount(f"amount must be positive, got {self.amount}")
        if not isinstance(self.final, bool):
            raise InvalidRequest("final must be true or false")
        if self.final and self.kind is not InstructionKind.CAPTURE:
            raise InvalidRequest("only a capture can be final")

    @property
    def key(self) -> str:
        """The idempotency key of what it does to each payment (``capture:shp_1`` …)."""
        reference = self.reference if self.reference is not None else f"order:{self.order_id}"
        return f"{self.kind}:{reference}"

    @classmethod
    def from_json(cls, data: Any) -> Instruction:
        """Read the JSON Lines form (a decoded object); `InvalidRequest` says what is wrong."""
        if not isinstance(data, Mapping):
            raise InvalidRequest(f"an instruction is a JSON object, not {type(data).__name__}")
        # Named masked: a key may be anything a merchant's system wrote, a card number too.
        unknown = sorted(
            _MASK_CARDS.text(str(key)[:64])[:32] for key in data if key not in _KNOWN_KEYS
        )
        if unknown:
            raise InvalidRequest(f"unknown field(s): {', '.join(unknown)}")
        kind = _kind(data.get("op", ""))
        name, _ = _REFERENCE_KEYS[kind]
        for other, _ in _REFERENCE_KEYS.values():
            if other != name and other in data:
                raise InvalidRequest(f"a {kind} takes {name}, not {other}")
        return cls(
            kind=kind,
            order_id=data.get("order_id"),  # type: ignore[arg-type]
            reference=data.get(name),
            amount=_amount(data),
            final=data.get("final", False),
        )

    def as_json(self) -> dict[str, Any]:
        """The JSON Lines form `from_json` reads."""
        data: dict[str, Any] = {"op": self.kind.value, "order_id": self.order_id}
        if self.reference is not None:
            data[_REFERENCE_KEYS[self.kind][0]] = self.reference
        if self.amount is not None:
            data["amount"] = self.amount.minor_units
            data["currency"] = self.amount.currency.code
        if self.final:
            data["final"] = True
        return data


def _amount(data: Mapping[str, Any]) -> Money | None:
    amount, currency = data.get("amount"), data.get("currency")
    if amount is None and currency is None:
        return None
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidAmount(
            "amount must be an integer of minor units (1050 for 10.50), "
            f"not {type(amount).__name__}"
        )
    if not isinstance(currency, str):
        raise InvalidRequest("currency must be an ISO 4217 code such as 'EUR'")
    return Money(amount, currency)


@frozen(kw_only=True)
class InstructionResult:
    """What carrying out an instruction did: its ``outcome`` (the worst of its payments'),
    the ledger's ``transactions`` it made or found, ``message`` saying why when it did
    not succeed, and for a cancel what stays ``held`` (an authorization that can only
    be released whole, or by the order's final capture)."""

    instruction: Instruction
    outcome: InstructionOutcome = field(converter=InstructionOutcome)
    transactions: tuple[PaymentTransaction, ...] = ()
    message: str | None = None
    held: Money | None = None

    @property
    def done(self) -> bool:
        return self.outcome in (InstructionOutcome.SUCCEEDED, InstructionOutcome.SKIPPED)
