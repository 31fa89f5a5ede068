"""XPAY's side of the envelope (`paycore_xpay.envelope`): open a partner's request,
seal the answer, write an error.

A request's ``Sign`` is checked with the partner's public key over the raw encrypted
key, then ``KeyAES`` is decrypted with XPAY's private key: PKCS#1 v1.5 first, then OAEP
(SHA-1) [PROPOSAL, providers.md §2.3 step 3: the reference connector's padding is
PKCS#1 v1.5, an OAEP partner is still served]; the padding that opened ``Data`` is
reported, for the request log. Codes [PROPOSAL]: a field missing or not base64, ``Data``
not whole AES blocks or not JSON, 400; a signature that does not verify, or a
``KeyAES`` that yields no key opening ``Data``, 401 (a wrong key and a garbled
ciphertext cannot be told apart: both fail the padding check).

An answer is ``{"Code": "200", "Message": "OK", "Data", "KeyAES", "Sign"}`` sealed for
the partner and signed by XPAY; an error ``{"Code", "Message", "Data": null,
"KeyAES": "", "Sign": ""}``, unsealed. Messages name the field, never its content.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import frozen
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from paycore.gateways.json_codec import decode_json
from paycore.sandbox.base import SandboxError
from paycore_xpay.envelope import EnvelopeError, open_envelope, seal

__all__ = ["KEY_PADDINGS", "Opened", "answer_body", "error_body", "failure", "open_request"]

# The paddings a partner's KeyAES is tried with, in order: (name in the log, padding).
KEY_PADDINGS: tuple[tuple[str, padding.AsymmetricPadding], ...] = (
    ("pkcs1v15", padding.PKCS1v15()),
    # OAEP's usual default (OpenSSL, phpseclib): SHA-1 here only masks the padding.
    (
        "oaep",
        padding.OAEP(
            mgf=padding.MGF1(hashes.SHA1()),  # noqa: S303
            algorithm=hashes.SHA1(),  # noqa: S303
            label=None,
        ),
    ),
)


def failure(code: int, message: str) -> SandboxError:
    """An error answer with ``Code`` (and HTTP status) ``code``."""
    return SandboxError(code, str(code), message)


@frozen
class Opened:
    """A request's ``Data``, decrypted and parsed, and the padding its key came in."""

    data: Any
    key_padding: str


def open_request(
    fields: Mapping[str, Any], *, xpay_key: RSAPrivateKey, partner_key: RSAPublicKey
) -> Opened:
    """The ``Data`` of a request envelope, once its signature is the partner's."""
    try:
        unsealed = open_envelope(
            fields,
            recipient=xpay_key,
            sender=partner_key,
            key_paddings=[key_padding for _, key_padding in KEY_PADDINGS],
        )
    except EnvelopeError as error:
        raise failure(400 if error.malformed else 401, str(error)) from None
    try:
        data = decode_json(unsealed.plaintext)
    except ValueError:  # UnicodeDecodeError included
        raise failure(400, "Data does not decrypt to JSON") from None
    name = next(name for name, used in KEY_PADDINGS if used is unsealed.key_padding)
    return Opened(data, name)


def answer_body(
    data: Mapping[str, Any], *, partner_key: RSAPublicKey, xpay_key: RSAPrivateKey
) -> dict[str, Any]:
    """A success answer: ``data`` sealed for the partner, signed by XPAY."""
    sealed = seal(data, recipient=partner_key, signer=xpay_key)
    return {"Code": "200", "Message": "OK", **sealed.as_fields()}


def error_body(error: SandboxError) -> dict[str, Any]:
    """An error answer: its code and message, nothing sealed."""
    return {
        "Code": str(error.status_code),
        "Message": error.message,
        "Data": None,
        "KeyAES": "",
        "Sign": "",
    }
