"""How an amount is spread over an order's payments (pure functions, no I/O).

An order may be paid by several payments (a gift card and a card). A capture takes
from them in the order they were made (the allocation order), each up to what its
authorization still holds; a refund gives back in the reverse order, each up to what
it captured and has not refunded; a partial cancel releases whole authorizations, last
first, as far as the amount goes (an authorization cannot be released in part: what
does not fit stays held until the order's final capture).
"""

from __future__ import annotations

from collections.abc import Sequence

from attrs import frozen

from paycore.errors import InvalidAmount
from paycore.money import Money

__all__ = ["Share", "release", "spread"]


@frozen
class Share:
    """``amount`` of an instruction, taken from (or given back to) one payment."""

    payment_id: str
    amount: Money


def spread(amount: Money, available: Sequence[tuple[str, Money]], *, doing: str) -> list[Share]:
    """``amount`` taken from ``available`` (payment id, what it can give) in order.

    Raises `InvalidAmount`, naming what is available, when they cannot give it all.
    """
    remaining = amount
    shares: list[Share] = []
    for payment_id, can_give in available:
        if not remaining.is_positive():
            break
        if not can_give.is_positive():
            continue
        taken = min(remaining, can_give)
        shares.append(Share(payment_id, taken))
        remaining = remaining - taken
    if remaining.is_positive():
        total = sum((give for _, give in available), Money.zero(amount.currency))
        raise InvalidAmount(
            f"cannot {doing} {amount}: the order's payments have {total} to {doing}"
        )
    return shares


def release(amount: Money, held: Sequence[tuple[str, Money]]) -> tuple[list[Share], Money]:
    """Whole authorizations from ``held`` (in the order given) that fit in ``amount``,
    and what of ``amount`` none of them fits (it stays held)."""
    remaining = amount
    shares: list[Share] = []
    for payment_id, holds in held:
        if holds.is_positive() and holds <= remaining:
            shares.append(Share(payment_id, holds))
            remaining = remaining - holds
    return shares, remaining
