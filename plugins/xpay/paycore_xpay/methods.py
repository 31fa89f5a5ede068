"""What XPAY's hosted page offers, as the gateway's config lists it.

XPAY has no call listing payment methods: the page offers what the partner's contract
includes, so the config says it (``payment_methods``: card, Google Pay, Apple Pay)
[PROPOSAL, providers.md §2.7]. The customer chooses and pays on the page, so the
frontend collects nothing; every method takes UAH only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from paycore.money import Money
from paycore.transactions.model import PaymentMethodOption
from paycore_xpay.messages import NAME
from paycore_xpay.payloads import CURRENCY

__all__ = ["DISPLAY_NAMES", "options_for"]

DISPLAY_NAMES: Mapping[str, str] = {
    "card": "Card",
    "google_pay": "Google Pay",
    "apple_pay": "Apple Pay",
}


def options_for(methods: Iterable[str], amount: Money) -> tuple[PaymentMethodOption, ...]:
    """The configured ``methods``, in their order, when ``amount`` is in hryvnias."""
    if amount.currency.code != CURRENCY:
        return ()
    return tuple(
        PaymentMethodOption(gateway=NAME, type=method, display_name=DISPLAY_NAMES[method])
        for method in methods
    )
