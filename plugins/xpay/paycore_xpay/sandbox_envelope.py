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

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from attrs import frozen
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from paycore.gateways.json_codec import decode_json
from paycore.sandbox.base import SandboxError
from paycore_xpay.envelope import BLOCK, EnvelopeError, decrypt_data, seal

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
    data = _unb64(fields, "Data")
    encrypted_key = _unb64(fields, "KeyAES")
    signature = _unb64(fields, "Sign")
    if not data or len(data) % BLOCK or len(data) < 2 * BLOCK:
        raise failure(400, "Data is not a whole number of AES blocks holding an IV")
    try:
        partner_key.verify(signature, encrypted_key, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise failure(401, "Sign is not the partner's signature of KeyAES") from None
    for name, key_padding in KEY_PADDINGS:
        try:
            key = xpay_key.decrypt(encrypted_key, key_padding)
        except ValueError:
            continue
        if len(key) != BLOCK:
            continue
        try:
            plaintext = decrypt_data(data, key=key)
        except EnvelopeError:
            continue
        try:
            return Opened(decode_json(plaintext), name)
        except (ValueError, UnicodeDecodeError):
            raise failure(400, "Data does not decrypt to JSON") from None
    raise failure(401, "KeyAES does not decrypt, with XPAY's key, to the key of Data")


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


def _unb64(fields: Mapping[str, Any], name: str) -> bytes:
    value = fields.get(name)
    if not isinstance(value, str) or not value:
        raise failure(400, f"{name} is missing")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise failure(400, f"{name} is not base64") from None
