"""Corefy's callback signature: ``X-Signature: base64(sha1(secret + body + secret))``.

The platform hashes the raw body between two copies of the commerce account's secret
key (the test or the live one, as the invoice's mode) and sends the standard Base64 of
the raw 20-byte SHA-1 digest (28 characters). It signs nothing else: no timestamp, so
there is no replay window to check; a replayed callback repeats event ids paycore
already holds. Verification runs on the bytes as they arrived (re-serialised JSON
would not match) and compares in constant time against every configured secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

from paycore.errors import WebhookSignatureError

__all__ = ["SIGNATURE_HEADER", "compute_signature", "verify_signature"]

SIGNATURE_HEADER = "X-Signature"
# A Base64 SHA-1 digest is 28 characters; anything much longer is not a signature.
_MAX_HEADER_LENGTH = 256


def compute_signature(secret: str, body: bytes) -> str:
    """The header value the platform sends for ``body`` signed with ``secret``."""
    key = secret.encode()
    # SHA-1 is the platform's choice, used here to check its signatures, not to protect
    # anything of paycore's own.
    digest = hashlib.sha1(key + body + key).digest()  # noqa: S324
    return base64.b64encode(digest).decode("ascii")


def verify_signature(
    header: str | None, body: bytes, secrets: Iterable[str], *, gateway: str
) -> None:
    """Check ``header`` against the raw ``body``; raise `WebhookSignatureError` if no
    secret of ``secrets`` (several while one is rotated) signed it.

    The message never quotes a secret or a signature.
    """
    # Surrounding whitespace is HTTP's, not the value's (parsers strip it anyway).
    value = (header or "").strip()
    if not value:
        raise WebhookSignatureError(
            f"the callback has no {SIGNATURE_HEADER} header: it was not signed by the platform",
            gateway=gateway,
        )
    if len(value) > _MAX_HEADER_LENGTH or not value.isascii():
        raise WebhookSignatureError(f"the {SIGNATURE_HEADER} header is malformed", gateway=gateway)
    keys = [key for key in secrets if key]
    if not keys:
        raise WebhookSignatureError("no callback secret key is configured", gateway=gateway)
    # Compare with every secret, so the time taken does not tell which one matched.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(value.encode(), compute_signature(key, body).encode())
    if not matched:
        raise WebhookSignatureError(
            f"the {SIGNATURE_HEADER} header does not match the body: check secret_key (the "
            "secret of the mode the invoice was made in), and that the body is verified "
            "exactly as received",
            gateway=gateway,
        )
