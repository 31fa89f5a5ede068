"""Cassettes: recorded once against a live server, replayed with none, never holding secrets."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from vcr.errors import CannotOverwriteExistingCassetteException

from paycore.testing.recording import REPLAY_URL, cassette_problems, cassette_recorder

SECRET = "sk_test_RecordedSecret42"
CARD = "4242424242424242"


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse(
        {
            "id": "pi_1787730829493927936",
            "created": 1692588799000,
            "echo": body.decode(),
            "next": f"{request.base_url}3ds/pi_1",
            "card": CARD,
            "key": SECRET,
        },
        headers={"Set-Cookie": "session=abc", "Location": f"{request.base_url}done"},
    )


@pytest.fixture
def live_url(paycore_sandbox_server) -> str:
    app = Starlette(routes=[Route("/v1/things", echo, methods=["POST"])])
    return str(paycore_sandbox_server(app).url)


def post(base_url: str) -> httpx.Response:
    with httpx.Client(trust_env=False) as client:
        return client.post(
            f"{base_url}/v1/things?expand=all",
            json={"card": CARD, "note": "hello"},
            headers={"Authorization": f"Basic {SECRET}"},
        )


def test_a_recorded_exchange_replays_without_the_server_and_without_its_secrets(
    tmp_path: Path, live_url: str
) -> None:
    recorder = cassette_recorder(tmp_path, server_url=live_url, secrets=[SECRET], record=True)
    with recorder.use_cassette("things.yaml"):
        live = post(live_url)

    replayer = cassette_recorder(tmp_path, secrets=[SECRET], record=False)
    with replayer.use_cassette("things.yaml"):
        replayed = post(REPLAY_URL)

    assert live.json()["key"] == SECRET  # the live answer is untouched
    answer = replayed.json()
    assert answer["id"] == "pi_1787730829493927936"  # ids and timestamps are kept
    assert answer["created"] == 1692588799000
    assert answer["next"] == f"{REPLAY_URL}/3ds/pi_1"
    assert (answer["card"], answer["key"]) == ("[REDACTED]", "[REDACTED]")
    assert replayed.headers["location"] == f"{REPLAY_URL}/done"
    assert "set-cookie" not in replayed.headers
    text = (tmp_path / "things.yaml").read_text()
    assert SECRET not in text and CARD not in text and live_url not in text
    assert cassette_problems(tmp_path / "things.yaml", [SECRET]) == []


def test_a_request_missing_from_the_cassette_fails_instead_of_reaching_a_server(
    tmp_path: Path, live_url: str
) -> None:
    recorder = cassette_recorder(tmp_path, server_url=live_url, record=True)
    with recorder.use_cassette("things.yaml"):
        post(live_url)

    replayer = cassette_recorder(tmp_path, record=False)
    with (
        replayer.use_cassette("things.yaml"),
        httpx.Client(trust_env=False) as client,
        pytest.raises(CannotOverwriteExistingCassetteException),
    ):
        client.post(f"{REPLAY_URL}/v1/things", json={"another": "body"})


def test_bodies_whose_bytes_cannot_repeat_match_by_what_they_mean(
    tmp_path: Path, live_url: str
) -> None:
    # A body with a fresh nonce each time, as an encrypted body has: equal in meaning
    # when all but the nonce is equal.
    def same_body(recorded: bytes, sent: bytes) -> bool:
        return json.loads(recorded)["note"] == json.loads(sent)["note"]

    def send(base_url: str, note: str) -> httpx.Response:
        with httpx.Client(trust_env=False) as client:
            body = {"nonce": secrets.token_hex(8), "note": note}
            return client.post(f"{base_url}/v1/things", json=body)

    recorder = cassette_recorder(tmp_path, server_url=live_url, record=True, same_body=same_body)
    with recorder.use_cassette("nonces.yaml"):
        send(live_url, "hello")

    replayer = cassette_recorder(tmp_path, record=False, same_body=same_body)
    with replayer.use_cassette("nonces.yaml"):
        assert '"note":"hello"' in send(REPLAY_URL, "hello").json()["echo"].replace(" ", "")
    with (
        replayer.use_cassette("nonces.yaml"),
        pytest.raises(CannotOverwriteExistingCassetteException),
    ):
        send(REPLAY_URL, "goodbye")
    strict = cassette_recorder(tmp_path, record=False)
    with (
        strict.use_cassette("nonces.yaml"),
        pytest.raises(CannotOverwriteExistingCassetteException),
    ):
        send(REPLAY_URL, "hello")  # another nonce: other bytes


def test_recording_needs_the_live_address_to_rewrite(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="server_url"):
        cassette_recorder(tmp_path, record=True)


def test_the_meta_check_finds_every_kind_of_leak_by_line_and_never_quotes_it(
    tmp_path: Path,
) -> None:
    cassette = tmp_path / "leaky.yaml"
    cassette.write_text(
        "\n".join(
            [
                "interactions:",
                "- request:",
                '    body: \'{"number": "4000000000003220"}\'',
                "    headers:",
                "      Authorization:",
                f"      - Basic {SECRET}",
                "  response:",
                '    body: {string: \'{"secret": "whsec_abcdef123"}\'}',
                "    created: 1692588799000 pi_4242424242424242",
            ]
        ),
        encoding="utf-8",
    )

    problems = cassette_problems(cassette, [SECRET])

    assert problems == [
        "leaky.yaml:3: a card number",
        "leaky.yaml:5: a credential header",
        "leaky.yaml:6: a configured secret",
        "leaky.yaml:6: something shaped like a secret key",
        "leaky.yaml:8: something shaped like a secret key",
    ]
    assert not any(SECRET in problem or "4000" in problem for problem in problems)
