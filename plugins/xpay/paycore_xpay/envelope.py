"""XPAY's envelope: the encrypted, signed ``Data`` of every request and answer.

As XPAY's documentation and the reference connector (`paycoreio/xpayua`,
``CryptManager``) build it (providers.md §2.3), for one message:

1. a fresh AES-128 key ``k`` and IV ``iv`` (16 random bytes each);
2. ``Data`` = base64(AES-128-CBC(k, iv, PKCS#7 padding, plaintext = iv ‖ JSON)): the IV
   is not sent beside the ciphertext but prepended to the plaintext, so the receiver
   decrypts with any IV and drops the first block;
3. ``KeyAES`` = base64(RSA PKCS#1 v1.5 encryption of ``k`` with the recipient's public
   key);
4. ``Sign`` = base64(RSA-SHA256, PKCS#1 v1.5, by the sender's private key, of the raw
   encrypted key bytes): the signature covers the encrypted key, not the data.

`seal` builds the three fields; `open_envelope` (and `unseal`, for JSON) checks the
signature, then decrypts. Every way a message can be wrong (a part missing or not
base64, a bad signature, a key that does not open ``Data``, not JSON) is one typed
error, `EnvelopeError`, whose message never quotes the message's content or a key.
A wrong RSA key and a garbled ``Data`` cannot be told apart (RSA PKCS#1 v1.5 decryption
may yield noise rather than fail): both are a ``KeyAES`` that does not open ``Data``.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from attrs import frozen
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from paycore.gateways.json_codec import decode_json, encode_json

__all__ = [
    "BLOCK",
    "EnvelopeError",
    "Sealed",
    "Unsealed",
    "decrypt_data",
    "encrypt_data",
    "open_envelope",
    "seal",
    "seal_bytes",
    "unseal",
    "unseal_bytes",
]

BLOCK = 16  # AES's block, key (AES-128) and IV size, in bytes


class EnvelopeError(ValueError):
    """A message that is not a valid XPAY envelope for these keys (says which part).

    ``malformed``: it is no envelope at all (a part missing, not base64, not whole AES
    blocks, not JSON), rather than one these keys do not verify or open.
    """

    def __init__(self, message: str, *, malformed: bool) -> None:
        super().__init__(message)
        self.malformed = malformed


@frozen
class Sealed:
    """The three envelope fields, as base64 text."""

    data: str
    key_aes: str
    sign: str

    def as_fields(self) -> dict[str, str]:
        return {"Data": self.data, "KeyAES": self.key_aes, "Sign": self.sign}


@frozen
class Unsealed:
    """An envelope's plaintext, and the RSA padding its ``KeyAES`` was opened with."""

    plaintext: bytes
    key_padding: rsa_padding.AsymmetricPadding


def seal(
    payload: Mapping[str, Any],
    *,
    recipient: RSAPublicKey,
    signer: RSAPrivateKey,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> Sealed:
    """Encrypt ``payload`` (as compact JSON, exact decimals) for ``recipient``; sign it.

    ``random_bytes`` gives the AES key and IV (a test passes fixed bytes to pin the
    ``Data`` field; the RSA encryption of the key is randomised regardless).
    """
    return seal_bytes(
        encode_json(payload), recipient=recipient, signer=signer, random_bytes=random_bytes
    )


def seal_bytes(
    plaintext: bytes,
    *,
    recipient: RSAPublicKey,
    signer: RSAPrivateKey,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> Sealed:
    """`seal` for plaintext bytes already encoded."""
    key, iv = random_bytes(BLOCK), random_bytes(BLOCK)
    encrypted_key = recipient.encrypt(key, rsa_padding.PKCS1v15())
    signature = signer.sign(encrypted_key, rsa_padding.PKCS1v15(), hashes.SHA256())
    return Sealed(
        data=_b64(encrypt_data(plaintext, key=key, iv=iv)),
        key_aes=_b64(encrypted_key),
        sign=_b64(signature),
    )


def encrypt_data(plaintext: bytes, *, key: bytes, iv: bytes) -> bytes:
    """The ``Data`` ciphertext (before base64): AES-128-CBC of ``iv ‖ plaintext``."""
    if len(key) != BLOCK or len(iv) != BLOCK:
        raise ValueError("the AES key and IV are 16 bytes each")
    padder = padding.PKCS7(BLOCK * 8).padder()
    padded = padder.update(iv + plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def unseal(fields: Mapping[str, Any], *, recipient: RSAPrivateKey, sender: RSAPublicKey) -> Any:
    """The JSON ``fields`` (``Data``, ``KeyAES``, ``Sign``) carry, once verified.

    Non-integer numbers come back as `Decimal`. Raises `EnvelopeError`.
    """
    plaintext = unseal_bytes(fields, recipient=recipient, sender=sender)
    try:
        return decode_json(plaintext)
    except ValueError:  # UnicodeDecodeError included
        raise EnvelopeError("Data does not decrypt to JSON", malformed=True) from None


def unseal_bytes(
    fields: Mapping[str, Any], *, recipient: RSAPrivateKey, sender: RSAPublicKey
) -> bytes:
    """`unseal`, up to the plaintext bytes."""
    return open_envelope(fields, recipient=recipient, sender=sender).plaintext


def open_envelope(
    fields: Mapping[str, Any],
    *,
    recipient: RSAPrivateKey,
    sender: RSAPublicKey,
    key_paddings: Sequence[rsa_padding.AsymmetricPadding] = (rsa_padding.PKCS1v15(),),
) -> Unsealed:
    """Check ``Sign`` with ``sender``'s key, then open ``KeyAES`` with ``recipient``'s,
    trying ``key_paddings`` in turn, and decrypt ``Data``. Raises `EnvelopeError`."""
    data = _unb64(fields, "Data")
    encrypted_key = _unb64(fields, "KeyAES")
    signature = _unb64(fields, "Sign")
    _check_blocks(data)
    try:
        sender.verify(signature, encrypted_key, rsa_padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise EnvelopeError(
            "Sign is not the sender's signature of KeyAES", malformed=False
        ) from None
    for key_padding in key_paddings:
        try:
            key = recipient.decrypt(encrypted_key, key_padding)
            if len(key) == BLOCK:
                return Unsealed(decrypt_data(data, key=key), key_padding)
        except (ValueError, EnvelopeError):  # not this padding, or not the key of Data
            continue
    raise EnvelopeError(
        "KeyAES does not decrypt, with the recipient's key, to the key of Data", malformed=False
    )


def decrypt_data(ciphertext: bytes, *, key: bytes) -> bytes:
    """The plaintext of a ``Data`` ciphertext: decrypted, unpadded, first block dropped."""
    _check_blocks(ciphertext)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(bytes(BLOCK))).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(BLOCK * 8).unpadder()
    try:
        plain = unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise EnvelopeError(
            "Data does not decrypt: its padding is wrong", malformed=False
        ) from None
    return plain[BLOCK:]


def _check_blocks(ciphertext: bytes) -> None:
    if not ciphertext or len(ciphertext) % BLOCK or len(ciphertext) < 2 * BLOCK:
        raise EnvelopeError(
            "Data is not a whole number of AES blocks holding an IV", malformed=True
        )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(fields: Mapping[str, Any], name: str) -> bytes:
    value = fields.get(name)
    if not isinstance(value, str) or not value:
        raise EnvelopeError(f"{name} is missing", malformed=True)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError(f"{name} is not base64", malformed=True) from None
