"""Verify and produce ``t=<timestamp>,v1=<hex>`` webhook signature headers.

The scheme (Stripe's, shared by several providers): the provider computes
HMAC-SHA256 of ``f"{t}.".encode() + raw_body`` with the endpoint's secret and sends
``t=1700000000,v1=5f2b…``. While a secret is being rotated the header carries one
``v1`` per active secret; any of them may match. Verification works on the raw bytes
as they arrived (re-serialised JSON would not match), compares in constant time and
refuses timestamps further than ``tolerance`` seconds from now (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterable
from datetime import datetime

from attrs import frozen

from paycore.errors import WebhookSignatureError

__all__ = [
    "DEFAULT_TOLERANCE",
    "SignatureHeader",
    "compute_signature",
    "parse_signature_header",
    "sign",
    "verify_signature",
]

DEFAULT_TOLERANCE = 300  # seconds either side of the clock
SCHEME = "v1"
_MAX_HEADER_LENGTH = 4096
_MAX_TIMESTAMP_DIGITS = 12


@frozen
class SignatureHeader:
    """A parsed signature header: the signed timestamp and every ``v1`` signature."""

    timestamp: int
    signatures: tuple[str, ...]


def compute_signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``f"{timestamp}.".encode() + body`` under ``secret``."""
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(body: bytes, secrets: str | Iterable[str], *, timestamp: int | None = None) -> str:
    """The header value a provider sends for ``body``: ``t=…,v1=…`` (one ``v1`` per secret)."""
    keys = _secrets(secrets)
    if not keys:
        raise ValueError("sign() needs at least one secret")
    signed_at = int(time.time()) if timestamp is None else timestamp
    parts = [f"t={signed_at}"]
    parts.extend(f"{SCHEME}={compute_signature(key, signed_at, body)}" for key in keys)
    return ",".join(parts)


def parse_signature_header(header: str | None, *, gateway: str) -> SignatureHeader:
    """Split a ``t=…,v1=…[,v1=…]`` header; `WebhookSignatureError` when it is malformed.

    Unknown schemes (``v0=…``) are ignored, as providers add schemes over time.
    """
    if not header:
        raise WebhookSignatureError("the delivery has no signature header", gateway=gateway)
    if len(header) > _MAX_HEADER_LENGTH:
        raise WebhookSignatureError("the signature header is too long", gateway=gateway)
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise WebhookSignatureError(
                "the signature header is not a list of key=value pairs", gateway=gateway
            )
        if key == "t":
            # Seconds since the epoch: ten digits until 2286; more is not a timestamp.
            well_formed = (
                value.isascii() and value.isdigit() and len(value) <= _MAX_TIMESTAMP_DIGITS
            )
            if not well_formed or timestamp is not None:
                raise WebhookSignatureError(
                    "the signature header's timestamp is missing or malformed", gateway=gateway
                )
            timestamp = int(value)
        elif key == SCHEME:
            signatures.append(value)
    if timestamp is None:
        raise WebhookSignatureError("the signature header has no timestamp", gateway=gateway)
    if not signatures:
        raise WebhookSignatureError(
            f"the signature header has no {SCHEME} signature", gateway=gateway
        )
    return SignatureHeader(timestamp, tuple(signatures))


def verify_signature(
    header: str | None,
    body: bytes,
    secrets: str | Iterable[str],
    *,
    gateway: str,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | datetime | Callable[[], float] | None = None,
) -> SignatureHeader:
    """Check ``header`` against the raw ``body``; return it parsed, or raise.

    ``secrets`` may list several (old and new, while rotating). ``now`` is the
    moment to judge the timestamp against: a clock function, an instant (when the
    delivery was received) or None for the system clock. Raises
    `WebhookSignatureError`; its message never quotes a secret or a signature.
    """
    parsed = parse_signature_header(header, gateway=gateway)
    age = _now(now) - parsed.timestamp
    if abs(age) > tolerance:
        direction = "old" if age > 0 else "in the future"
        raise WebhookSignatureError(
            f"the signature timestamp is {int(abs(age))} s {direction}, beyond the tolerance "
            f"of {tolerance:g} s: a replay, or a clock out of sync",
            gateway=gateway,
        )
    keys = _secrets(secrets)
    if not keys:
        raise WebhookSignatureError("no webhook secret is configured", gateway=gateway)
    expected = [compute_signature(key, parsed.timestamp, body) for key in keys]
    # Compare every pair, so the time taken does not tell which one matched.
    matched = False
    for candidate in parsed.signatures:
        for signature in expected:
            matched |= hmac.compare_digest(candidate.encode(), signature.encode())
    if not matched:
        raise WebhookSignatureError(
            "no signature in the header matches the body: check the webhook secret, and "
            "that the body is verified exactly as received",
            gateway=gateway,
        )
    return parsed


def _secrets(secrets: str | Iterable[str]) -> tuple[str, ...]:
    keys = (secrets,) if isinstance(secrets, str) else tuple(secrets)
    return tuple(key for key in keys if key)


def _now(now: float | datetime | Callable[[], float] | None) -> float:
    if now is None:
        return time.time()
    if isinstance(now, datetime):
        return now.timestamp()
    if callable(now):
        return now()
    return float(now)
