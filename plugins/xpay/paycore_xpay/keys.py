"""The RSA keys of an XPAY connection: read from PEM, checked, written back.

A partner holds its own key pair (it signs requests and decrypts answers) and XPAY's
public key (it encrypts requests and verifies answers). Keys are RSA of at least 2048
bits [DOC: the partner generates RSA-2048]; PEM in PKCS#1 or PKCS#8 (private) and
SubjectPublicKeyInfo or PKCS#1 (public). `KeyProblem` says what is wrong with a key
without quoting it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

__all__ = [
    "MIN_KEY_BITS",
    "KeyProblem",
    "generate_private_key",
    "key_or_problem",
    "private_key_from_pem",
    "private_pem",
    "public_key_from_pem",
    "public_pem",
]

MIN_KEY_BITS = 2048


class KeyProblem(ValueError):
    """A key that cannot serve: not PEM, not RSA, too small (the key is never quoted)."""


def private_key_from_pem(pem: str) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM text (unencrypted PKCS#1 or PKCS#8)."""
    try:
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError):
        raise KeyProblem("is not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyProblem(f"is {_kind(key)} key, not an RSA key")
    _check_size(key.key_size)
    return key


def public_key_from_pem(pem: str) -> rsa.RSAPublicKey:
    """An RSA public key from PEM text (SubjectPublicKeyInfo or PKCS#1)."""
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, TypeError, UnicodeEncodeError):
        raise KeyProblem("is not a PEM public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyProblem(f"is {_kind(key)} key, not an RSA key")
    _check_size(key.key_size)
    return key


K = TypeVar("K")


def key_or_problem(
    setting: str, pem: str | None, reader: Callable[[str], K], problems: list[str]
) -> K | None:
    """The key ``reader`` reads from ``pem``; or None, with a line naming ``setting``
    added to ``problems`` when the key cannot serve. No PEM, no key, no problem."""
    if pem is None:
        return None
    try:
        return reader(pem)
    except KeyProblem as problem:
        problems.append(f"{setting}: {problem}")
        return None


def generate_private_key(bits: int = MIN_KEY_BITS) -> rsa.RSAPrivateKey:
    """A fresh RSA key pair (public exponent 65537)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    """``key`` as unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def public_pem(key: rsa.RSAPublicKey) -> str:
    """``key`` as SubjectPublicKeyInfo PEM (the form XPAY publishes its keys in)."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def _check_size(bits: int) -> None:
    if bits < MIN_KEY_BITS:
        raise KeyProblem(f"is a {bits}-bit RSA key; XPAY's keys are {MIN_KEY_BITS} bits or more")


def _kind(key: object) -> str:
    kinds = (
        ((ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey), "an elliptic-curve"),
        ((ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey), "an Ed25519"),
        ((ed448.Ed448PrivateKey, ed448.Ed448PublicKey), "an Ed448"),
        ((dsa.DSAPrivateKey, dsa.DSAPublicKey), "a DSA"),
    )
    return next((name for types, name in kinds if isinstance(key, types)), "another kind of")
