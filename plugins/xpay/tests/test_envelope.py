"""XPAY's envelope: fixed vectors pin the format; a tampered part is refused, typed."""

from __future__ import annotations

import base64

import pytest
from paycore_xpay.envelope import (
    EnvelopeError,
    decrypt_data,
    encrypt_data,
    seal,
    seal_bytes,
    unseal,
    unseal_bytes,
)
from paycore_xpay.keys import generate_private_key

# A vector made outside this code, with OpenSSL: the IV, then the JSON, encrypted
# with AES-128-CBC under KEY and IV (PKCS#7):
#   openssl enc -aes-128-cbc -K 000102…0e0f -iv 101112…1e1f -in <IV ‖ JSON> | base64
KEY = bytes(range(16))
IV = bytes(range(16, 32))
PLAINTEXT = b'{"PaymentSum":2500,"Order":"p_1"}'
DATA = "xqE7N4ePW4JvT4FiocjYeUERtYZT6KGYQVNAMc0yOrLTveHvJjBCq0d0/j3WhjEpHdcDo6a+M1M8dJZXiRnBwA=="


@pytest.fixture(scope="module")
def partner():
    return generate_private_key()


@pytest.fixture(scope="module")
def xpay():
    return generate_private_key()


def test_data_is_aes_128_cbc_of_the_iv_then_the_json_as_openssl_makes_it() -> None:
    assert base64.b64encode(encrypt_data(PLAINTEXT, key=KEY, iv=IV)).decode() == DATA


def test_data_decrypts_with_the_key_alone_the_iv_being_inside() -> None:
    assert decrypt_data(base64.b64decode(DATA), key=KEY) == PLAINTEXT


def test_a_sealed_envelope_carries_that_data_for_the_key_and_iv_drawn(partner, xpay) -> None:
    drawn = iter([KEY, IV])

    sealed = seal_bytes(
        PLAINTEXT, recipient=xpay.public_key(), signer=partner, random_bytes=lambda n: next(drawn)
    )

    assert sealed.data == DATA
    assert unseal_bytes(sealed.as_fields(), recipient=xpay, sender=partner.public_key()) == (
        PLAINTEXT
    )


def test_a_round_trip_with_fresh_keys_gives_back_the_payload(partner, xpay) -> None:
    payload = {"PaymentSum": 2500, "Purpose": "Оплата замовлення №1"}

    sealed = seal(payload, recipient=xpay.public_key(), signer=partner)

    assert unseal(sealed.as_fields(), recipient=xpay, sender=partner.public_key()) == payload
    again = seal(payload, recipient=xpay.public_key(), signer=partner)
    assert (again.data, again.key_aes) != (sealed.data, sealed.key_aes)  # fresh key, fresh IV


def _flip(text: str, at: int = 20) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[at % len(raw)] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize(
    ("field", "problem"),
    [
        ("Data", "to the key of Data|JSON"),  # garbled Data looks like another key's
        ("KeyAES", "Sign is not"),  # the signature covers the encrypted key
        ("Sign", "Sign is not"),
    ],
)
def test_a_tampered_part_is_refused_with_a_typed_error(partner, xpay, field, problem) -> None:
    fields = seal({"a": 1}, recipient=xpay.public_key(), signer=partner).as_fields()
    # The last block of Data: its padding no longer holds (or the JSON breaks).
    fields[field] = _flip(fields[field], at=-1 if field == "Data" else 20)

    with pytest.raises(EnvelopeError, match=problem):
        unseal(fields, recipient=xpay, sender=partner.public_key())


def test_an_envelope_for_or_from_other_keys_is_refused(partner, xpay) -> None:
    stranger = generate_private_key()
    fields = seal({"a": 1}, recipient=xpay.public_key(), signer=partner).as_fields()

    with pytest.raises(EnvelopeError, match="Sign is not"):
        unseal(fields, recipient=xpay, sender=stranger.public_key())
    # RSA PKCS#1 v1.5 with implicit rejection: a wrong key may "decrypt" to noise,
    # which then opens no Data; refused all the same.
    with pytest.raises(EnvelopeError, match="KeyAES does not decrypt"):
        unseal(fields, recipient=stranger, sender=partner.public_key())


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"Data": None}, "Data is missing"),
        ({"KeyAES": ""}, "KeyAES is missing"),
        ({"Sign": "not base64!"}, "Sign is not base64"),
        ({"Data": base64.b64encode(b"short").decode()}, "whole number of AES blocks"),
    ],
)
def test_a_malformed_envelope_is_refused_without_quoting_it(partner, xpay, changes, problem):
    fields = {**seal({"a": 1}, recipient=xpay.public_key(), signer=partner).as_fields(), **changes}

    with pytest.raises(EnvelopeError, match=problem) as raised:
        unseal(fields, recipient=xpay, sender=partner.public_key())
    assert "not base64!" not in str(raised.value)
