import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from paycore.errors import WebhookSignatureError
from paycore.gateways.webhooks import (
    compute_signature,
    parse_signature_header,
    sign,
    verify_signature,
)

SECRET = "whsec_current"
OLD_SECRET = "whsec_previous"
NOW = 1_700_000_000
BODY = b'{"id": "evt_1", "type": "payment.captured"}'


def verify(header, body=BODY, secrets=SECRET, **options):
    return verify_signature(header, body, secrets, gateway="dummy", now=NOW, **options)


def test_the_signature_is_hmac_sha256_of_the_timestamp_a_dot_and_the_raw_body():
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()

    assert compute_signature(SECRET, NOW, BODY) == expected
    assert sign(BODY, SECRET, timestamp=NOW) == f"t={NOW},v1={expected}"


def test_a_body_signed_with_the_secret_verifies():
    parsed = verify(sign(BODY, SECRET, timestamp=NOW))

    assert parsed.timestamp == NOW
    assert len(parsed.signatures) == 1


def test_a_body_changed_after_signing_is_refused():
    header = sign(BODY, SECRET, timestamp=NOW)

    with pytest.raises(WebhookSignatureError, match="no signature in the header matches"):
        verify(header, BODY.replace(b"captured", b"refunded"))


def test_verification_needs_the_raw_bytes_not_the_json_reserialised():
    header = sign(BODY, SECRET, timestamp=NOW)
    reserialised = json.dumps(json.loads(BODY), separators=(",", ":")).encode()

    with pytest.raises(WebhookSignatureError):
        verify(header, reserialised)


def test_a_wrong_secret_is_refused_without_quoting_any_secret_or_signature():
    header = sign(BODY, "whsec_attacker", timestamp=NOW)

    with pytest.raises(WebhookSignatureError) as caught:
        verify(header)

    message = str(caught.value)
    assert SECRET not in message
    assert "whsec_attacker" not in message
    assert compute_signature("whsec_attacker", NOW, BODY) not in message
    assert caught.value.gateway == "dummy"


def test_a_timestamp_older_than_the_tolerance_is_refused_as_a_replay():
    header = sign(BODY, SECRET, timestamp=NOW - 301)

    with pytest.raises(WebhookSignatureError, match="301 s old, beyond the tolerance of 300 s"):
        verify(header)


def test_a_timestamp_in_the_future_beyond_the_tolerance_is_refused():
    with pytest.raises(WebhookSignatureError, match="in the future"):
        verify(sign(BODY, SECRET, timestamp=NOW + 301))


def test_a_timestamp_within_the_tolerance_is_accepted():
    verify(sign(BODY, SECRET, timestamp=NOW - 300))


def test_the_tolerance_is_configurable():
    header = sign(BODY, SECRET, timestamp=NOW - 60)

    verify(header, tolerance=120)
    with pytest.raises(WebhookSignatureError, match="beyond the tolerance of 30 s"):
        verify(header, tolerance=30)


def test_the_clock_may_be_a_function_or_the_moment_of_receipt():
    header = sign(BODY, SECRET, timestamp=NOW)
    received_at = datetime.fromtimestamp(NOW + 10, UTC)

    verify_signature(header, BODY, SECRET, gateway="dummy", now=lambda: NOW + 10)
    verify_signature(header, BODY, SECRET, gateway="dummy", now=received_at)
    with pytest.raises(WebhookSignatureError, match="beyond the tolerance"):
        verify_signature(header, BODY, SECRET, gateway="dummy", now=lambda: NOW + 1000)


def test_during_a_rotation_a_header_signed_with_both_secrets_verifies_with_either():
    header = sign(BODY, [SECRET, OLD_SECRET], timestamp=NOW)

    assert len(parse_signature_header(header, gateway="dummy").signatures) == 2
    verify(header, secrets=SECRET)
    verify(header, secrets=OLD_SECRET)


def test_a_receiver_may_accept_several_secrets_while_it_rotates():
    header = sign(BODY, OLD_SECRET, timestamp=NOW)

    verify(header, secrets=[SECRET, OLD_SECRET])
    with pytest.raises(WebhookSignatureError):
        verify(header, secrets=[SECRET])


def test_unknown_signature_schemes_are_ignored():
    header = f"t={NOW},v0=deadbeef,{sign(BODY, SECRET, timestamp=NOW).split(',')[1]}"

    assert verify(header).signatures == (compute_signature(SECRET, NOW, BODY),)


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        (None, "has no signature header"),
        ("", "has no signature header"),
        ("garbage", "not a list of key=value pairs"),
        (f"v1={'0' * 64}", "has no timestamp"),
        (f"t=abc,v1={'0' * 64}", "timestamp is missing or malformed"),
        (f"t={NOW},t={NOW},v1={'0' * 64}", "timestamp is missing or malformed"),
        (f"t={NOW}", "has no v1 signature"),
        (f"t={NOW},v1=" + "0" * 5000, "too long"),
    ],
)
def test_a_malformed_header_is_refused_with_a_reason(header, problem):
    with pytest.raises(WebhookSignatureError, match=problem):
        verify(header)


def test_verifying_without_a_configured_secret_is_refused():
    with pytest.raises(WebhookSignatureError, match="no webhook secret is configured"):
        verify(sign(BODY, SECRET, timestamp=NOW), secrets="")


def test_signing_needs_a_secret():
    with pytest.raises(ValueError, match="at least one secret"):
        sign(BODY, [])
