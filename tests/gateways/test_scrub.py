"""Scrubbing: card numbers, security codes, credentials and configured secrets."""

from __future__ import annotations

import json

import httpx
import pytest

from paycore.gateways.scrub import REDACTED, Scrubber, luhn_valid

PAN = "4111111111111111"


@pytest.mark.parametrize(
    "digits", ["4111111111111111", "5555555555554444", "378282246310005", "6011111111111117"]
)
def test_luhn_accepts_real_test_card_numbers(digits: str) -> None:
    assert luhn_valid(digits)


def test_luhn_rejects_a_changed_digit() -> None:
    assert not luhn_valid("4111111111111112")


@pytest.mark.parametrize(
    "text",
    [
        f"card {PAN} end",
        "card 4111 1111 1111 1111 end",
        "card 4111-1111-1111-1111 end",
        f'{{"pan_like":"{PAN}"}}',
        f"number={PAN}&x=1",
    ],
)
def test_card_numbers_are_masked_to_their_last_four(text: str) -> None:
    scrubbed = Scrubber().text(text)
    assert "4111111111111111" not in scrubbed.replace(" ", "").replace("-", "")
    assert "1111" in scrubbed


def test_digit_runs_that_fail_luhn_are_kept() -> None:
    text = "order 4111111111111112 at 20261122"
    assert Scrubber().text(text) == text


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("cvv", '"737"'),
        ("CVC", "737"),
        ("cvv2", '"0737"'),
        ("security_code", '"737"'),
        ("password", '"hunter2!"'),
        ("api_key", '"ak_live_x"'),
        ("client_secret", '"cs_x"'),
        ("access_token", '"tok"'),
        ("cardNumber", '"4000"'),
        ("Sign", '"c2lnbmF0dXJl"'),
    ],
)
def test_sensitive_json_fields_are_redacted(name: str, value: str) -> None:
    body = f'{{"{name}": {value}, "amount": 1000}}'
    scrubbed = Scrubber().text(body)
    assert json.loads(scrubbed) == {name: REDACTED, "amount": 1000}


def test_non_sensitive_fields_are_kept() -> None:
    body = '{"amount": 1000, "currency": "USD", "idempotency_key": "tx_1", "status": "ok"}'
    assert Scrubber().text(body) == body


def test_form_and_query_fields_are_redacted() -> None:
    assert Scrubber().text("amount=10&cvv=737&password=p") == (
        f"amount=10&cvv={REDACTED}&password={REDACTED}"
    )


def test_configured_secrets_are_removed_wherever_they_appear() -> None:
    scrubber = Scrubber(["sk_live_abcdef123456", "whsec_987654"])
    text = "key sk_live_abcdef123456 in text, whsec_987654 too"
    assert scrubber.text(text) == f"key {REDACTED} in text, {REDACTED} too"


def test_credential_headers_are_redacted_but_idempotency_keys_kept() -> None:
    headers = httpx.Headers(
        {
            "Authorization": "Basic c2tfbGl2ZTo=",
            "X-Api-Key": "k",
            "Wooshpay-Signature": "t=1,v1=abc",
            "X-Signature": "abc",
            "Cookie": "session=1",
            "Idempotency-Key": "tx_123",
            "Content-Type": "application/json",
        }
    )
    scrubbed = dict(Scrubber().headers(headers))
    for name in ("authorization", "x-api-key", "wooshpay-signature", "x-signature", "cookie"):
        assert scrubbed[name] == REDACTED
    assert scrubbed["idempotency-key"] == "tx_123"
    assert scrubbed["content-type"] == "application/json"


def test_binary_bodies_are_described_not_quoted() -> None:
    assert Scrubber().body(b"\xff\xfe" + PAN.encode("utf-16-le")).startswith("<")


def test_long_bodies_are_cut_after_scrubbing() -> None:
    body = ("x" * 9000 + PAN).encode()
    scrubbed = Scrubber().body(body)
    assert PAN not in scrubbed
    assert scrubbed.endswith("<9016 chars>")
