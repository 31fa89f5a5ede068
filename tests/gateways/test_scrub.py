"""Scrubbing: card numbers, security codes, credentials and configured secrets."""

from __future__ import annotations

import json
import random
import re
from urllib.parse import urlencode

import httpx
import pytest

from paycore.gateways.scrub import (
    REDACTED,
    Scrubber,
    luhn_valid,
    security_code_name,
    sensitive_name,
)

PAN = "4111111111111111"
DIGIT_RUN = re.compile(r"[0-9](?:[ +.-]?[0-9])*")


def luhn_valid_windows(text: str) -> list[str]:
    """Every 13–19-digit stretch of a digit run in ``text`` that passes Luhn."""
    found = []
    for run in DIGIT_RUN.findall(text):
        digits = re.sub(r"[^0-9]", "", run)
        for start in range(len(digits)):
            for end in range(start + 13, min(start + 19, len(digits)) + 1):
                if luhn_valid(digits[start:end]):
                    found.append(digits[start:end])
    return found


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
        "card 4111.1111.1111.1111 end",
        # Run into other digits, or with form-encoded spaces: once kept whole.
        f"card {PAN} 123",
        "4111 1111 1111 1111 12/27",
        "number=4111+1111+1111+1111",
        f"ref 00{PAN}",
        f"{PAN} 5555555555554444",
    ],
)
def test_card_numbers_are_masked_to_their_last_four(text: str) -> None:
    scrubbed = Scrubber().text(text)
    assert PAN not in re.sub(r"[^0-9]", "", scrubbed)
    assert luhn_valid_windows(scrubbed) == []
    assert re.search(r"\[PAN …[0-9]{4}\]", scrubbed)


def test_a_masked_card_number_keeps_the_text_around_it() -> None:
    assert Scrubber().text("number=4111+1111+1111+1111&cvc_check=pass") == (
        "number=[PAN …1111]&cvc_check=pass"
    )
    assert Scrubber().text(f"cards {PAN}, 5555 5555 5555 4444.") == (
        "cards [PAN …1111], [PAN …4444]."
    )


def test_every_luhn_valid_stretch_of_a_digit_run_is_masked() -> None:
    draw = random.Random(20261122)
    for _ in range(300):
        run = "".join(
            draw.choice("0123456789") + draw.choice(["", "", "", " ", "-", "+", "."])
            for _ in range(draw.randint(13, 40))
        )
        scrubbed = Scrubber().text(f"x {run} y")
        assert luhn_valid_windows(scrubbed) == [], run


@pytest.mark.parametrize(
    "text",
    [
        "order 4111111111111113 at 20261122",
        "ref 1234567812345678",
        "call +1 415 555 0100 on 2026-11-22 10:15:00",
        '{"created": 1732240338, "amount": 199900}',
    ],
)
def test_digit_runs_without_a_luhn_valid_stretch_are_kept(text: str) -> None:
    assert Scrubber().text(text) == text


def test_a_card_number_as_a_json_number_leaves_valid_json() -> None:
    scrubbed = Scrubber().text(f'{{"number": {PAN}, "amount": 1000}}')
    assert json.loads(scrubbed) == {"number": "[PAN …1111]", "amount": 1000}


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
        # Names that only contain a sensitive stem: once kept.
        ("card_cvv", '"737"'),
        ("cvv_code", '"737"'),
        ("cardCvc", '"737"'),
        ("card[cvc]", '"737"'),
        ("secretKey", '"sk"'),
        ("pan", '"4000"'),
        ("pin", '"1234"'),
        ("signature", '"abc"'),
        ("iban", '"DE89370400440532013000"'),
        # Objects and arrays under a sensitive name: once kept.
        ("secret", '{"a": 1}'),
        ("api_key", '["ak_live_x", "ak_live_y"]'),
    ],
)
def test_sensitive_json_fields_are_redacted(name: str, value: str) -> None:
    body = f'{{"{name}": {value}, "amount": 1000}}'
    scrubbed = Scrubber().text(body)
    assert json.loads(scrubbed) == {name: REDACTED, "amount": 1000}


ORDINARY_NAMES = [
    "amount",
    "currency",
    "description",
    "reference",
    "idempotency_key",
    "decline_code",
    "payment_intent",
    "panel",
    "spin",
    "signup",
    "cvc_check",
    "cvv_result",
]


def test_non_sensitive_fields_are_kept_and_the_body_left_as_it_was() -> None:
    body = "{\n  " + ",\n  ".join(f'"{name}": "x1"' for name in ORDINARY_NAMES) + "\n}"
    assert Scrubber().text(body) == body
    form = "&".join(f"{name}=x1" for name in ORDINARY_NAMES)
    assert Scrubber().text(form) == form


@pytest.mark.parametrize("name", ORDINARY_NAMES)
def test_ordinary_names_are_not_sensitive(name: str) -> None:
    assert not sensitive_name(name)


@pytest.mark.parametrize(
    "name",
    ["card[cvc]", "card%5Bcvc%5D", "card.cvc", "Card-Number", "card[number]", "sslpassword"],
)
def test_names_are_decoded_and_judged_by_their_parts(name: str) -> None:
    assert sensitive_name(name)


def test_a_redacted_json_body_is_reserialised_compactly() -> None:
    assert Scrubber().text('{"cvv": "737", "amount": 1000}') == (
        f'{{"cvv":"{REDACTED}","amount":1000}}'
    )


def test_a_repeated_key_does_not_hide_a_value_from_the_scrubber() -> None:
    scrubbed = Scrubber().text('{"cvv": "737", "cvv": null, "note": "x", "note": "y"}')
    assert "737" not in scrubbed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r'"{\"cvv\": \"737\"}"', rf'"{{\"cvv\":\"{REDACTED}\"}}"'),
        (
            r'{"payload": "{\"card\": {\"cvv\": \"737\"}}", "amount": 1}',
            rf'{{"payload":"{{\"card\":{{\"cvv\":\"{REDACTED}\"}}}}","amount":1}}',
        ),
        (
            r'{"message": "declined: {\"cvv\": \"737\"} was wrong"}',
            rf'{{"message":"declined: {{\"cvv\": \"{REDACTED}\"}} was wrong"}}',
        ),
        (
            r'declined: payload="{\"cvv\": \"737\", \"amount\": 1}"',
            rf'declined: payload="{{\"cvv\": \"{REDACTED}\", \"amount\": 1}}"',
        ),
        (
            r'payload="{\"note\": \"a\\nb\", \"pin\": \"1\\\"2\"}"',
            rf'payload="{{\"note\": \"a\\nb\", \"pin\": \"{REDACTED}\"}}"',
        ),
    ],
)
def test_json_escaped_inside_a_json_string_is_scrubbed(text: str, expected: str) -> None:
    assert Scrubber().text(text) == expected


def test_json_in_text_that_is_not_json_is_scrubbed() -> None:
    text = 'error: {"secret": {"a": 1}, "card": {"cvv": "737"}} (retrying)'
    assert Scrubber().text(text) == (
        f'error: {{"secret": "{REDACTED}", "card": {{"cvv": "{REDACTED}"}}}} (retrying)'
    )


def test_form_and_query_fields_are_redacted() -> None:
    assert Scrubber().text("amount=10&cvv=737&password=p") == (
        f"amount=10&cvv={REDACTED}&password={REDACTED}"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("card[cvc]=737&amount=10", f"card[cvc]={REDACTED}&amount=10"),
        ("card%5Bcvc%5D=737&amount=10", f"card%5Bcvc%5D={REDACTED}&amount=10"),
        (
            "pm[card][cvc]=737&pm[card][exp_year]=2027",
            f"pm[card][cvc]={REDACTED}&pm[card][exp_year]=2027",
        ),
        ("a=1;password=p&b=2", f"a=1;password={REDACTED}&b=2"),
    ],
)
def test_bracketed_and_encoded_form_names_are_redacted(text: str, expected: str) -> None:
    assert Scrubber().text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://user:pa55@host/x", f"https://user:{REDACTED}@host/x"),
        ("postgresql://pay:p@ss@db:5432/pay", f"postgresql://pay:{REDACTED}@db:5432/pay"),
        (
            "https://host:8443/x?a=1 and mail@example.com",
            "https://host:8443/x?a=1 and mail@example.com",
        ),
    ],
)
def test_passwords_in_urls_are_redacted(text: str, expected: str) -> None:
    assert Scrubber().text(text) == expected


def test_urls_inside_json_strings_are_scrubbed_as_decoded() -> None:
    body = '{"next": "https:\\/\\/u:pa55@host\\/x?a=1\\u0026password=p", "amount": 1}'
    scrubbed = Scrubber().text(body)
    assert json.loads(scrubbed) == {
        "next": f"https://u:{REDACTED}@host/x?a=1&password={REDACTED}",
        "amount": 1,
    }


def test_configured_secrets_are_removed_wherever_they_appear() -> None:
    scrubber = Scrubber(["sk_live_abcdef123456", "whsec_987654"])
    text = "key sk_live_abcdef123456 in text, whsec_987654 too"
    assert scrubber.text(text) == f"key {REDACTED} in text, {REDACTED} too"


def test_configured_secrets_are_removed_when_escaped_or_encoded() -> None:
    secret = 'sk/live+"key"'
    scrubber = Scrubber([secret])
    for text in [
        json.dumps({"note": f"uses {secret}"}),
        json.dumps({"note": f"uses {secret}"}).replace("/", "\\/"),
        urlencode({"note": f"uses {secret}"}),
    ]:
        scrubbed = scrubber.text(text)
        assert "live" not in scrubbed, text
        assert REDACTED in scrubbed


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


def test_headers_named_like_sensitive_fields_are_redacted() -> None:
    scrubbed = dict(Scrubber().headers({"X-Private-Key": "pk_abc", "X-Card-Number": "4000"}))
    assert scrubbed == {"X-Private-Key": REDACTED, "X-Card-Number": REDACTED}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("paid by card, cvv 737", f"paid by card, cvv {REDACTED}"),
        ("CVC: 0737 given", f"CVC: {REDACTED} given"),
        ("security code 123.", f"security code {REDACTED}."),
        ('{"note": "typed cvc: 737"}', f'{{"note": "typed cvc: {REDACTED}"}}'),
        (
            r'"{\"card\": \"x\", \"cvv2\": \"737\"}"',
            rf'"{{\"card\":\"x\",\"cvv2\":\"{REDACTED}\"}}"',
        ),
    ],
)
def test_security_codes_named_in_prose_are_redacted(text: str, expected: str) -> None:
    assert Scrubber().text(text) == expected


@pytest.mark.parametrize(
    "text", ["cvc_check 123", "cvv 12345", "scvv 123", "order 737 of 2026", "cvc_check: pass"]
)
def test_numbers_that_are_no_security_code_are_kept(text: str) -> None:
    assert Scrubber().text(text) == text


@pytest.mark.parametrize("name", ["cvv", "CVC2", "card_cvc", "securityCode", "card[cvn]", "csc"])
def test_security_code_names(name: str) -> None:
    assert security_code_name(name)


@pytest.mark.parametrize("name", ["cvc_check", "password", "pin", "iban", "card_number", "note"])
def test_other_names_are_no_security_code(name: str) -> None:
    assert not security_code_name(name)
