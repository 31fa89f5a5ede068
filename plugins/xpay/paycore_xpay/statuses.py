"""XPAY's operation statuses and the reasons an operation failed.

Documented: "10" the operation completed, "21" it failed (providers.md §2.5).
[PROPOSAL] "1": created, waiting for the customer (a checkout link not paid yet); any
other value is not final yet and kept as the raw ``provider_status``. The full
"Reasons of operation rejection" table could not be read: the reasons below are the
ones paycore's sandbox gives, each mapped to the closest `DeclineReason`.
"""

from __future__ import annotations

from collections.abc import Mapping

from paycore.transactions.model import DeclineReason

__all__ = ["CREATED", "DONE", "FAILED", "REASONS", "decline_reason"]

CREATED = "1"  # [PROPOSAL] waiting for the customer on the hosted page
DONE = "10"
FAILED = "21"

# [PROPOSAL] XPAY's Reason of a failed ("21") operation -> the normalised reason.
REASONS: Mapping[str, DeclineReason] = {
    "declined": DeclineReason.CARD_DECLINED,
    "insufficient_funds": DeclineReason.INSUFFICIENT_FUNDS,
    "expired_card": DeclineReason.EXPIRED_CARD,
    "fraud_suspected": DeclineReason.FRAUD_SUSPECTED,
    "page_expired": DeclineReason.EXPIRED,  # the page's TTL passed unpaid
    "rejected_by_partner": DeclineReason.CANCELED,  # the merchant answered the check no
    "check_failed": DeclineReason.PROCESSING_ERROR,  # the merchant did not answer the check
}


def decline_reason(reason: str | None, *, default: DeclineReason) -> DeclineReason:
    """The normalised reason for XPAY's ``reason``; ``default`` for none or an unknown one."""
    return REASONS.get(reason or "", default)
