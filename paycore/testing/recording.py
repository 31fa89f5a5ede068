"""Recorded exchanges for gateway plugins' tests: vcrpy cassettes, replay-only by default.

A plugin's recorded tests (``tests/test_recorded.py``) drive its gateway through a
`GatewayDriver` once against a live server and keep every request and answer in a
cassette; from then on they replay the cassettes, with no server at all. That pins the
plugin's wire format: a change in what it sends no longer matches the cassette, and
the test fails (in CI nothing is ever recorded: a request missing from its cassette is
an error).

- `recording()`: whether this run records (``PAYCORE_RECORD=1``, as ``make record``
  sets it) or replays.
- `cassette_recorder(directory, server_url=…, secrets=…)`: a ``vcr.VCR`` that, when
  recording, rewrites the live server's address to `REPLAY_URL` (so replays need no
  server and no port), drops credential headers, and replaces every literal secret and
  every card number in bodies with ``[REDACTED]`` before anything is written.
- `cassette_problems(path, secrets)`: what a cassette must never hold (a secret, a key
  of the shape ``sk_…``/``whsec_…``, a card number, a credential header): the
  meta-test runs it over every cassette.

Requests are matched on method, URL (the query included) and body, so the ids in a
replayed answer must be those the gateway then asks about: record against a seeded
sandbox and fixed transaction ids.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from paycore.gateways.scrub import luhn_valid

if TYPE_CHECKING:
    import vcr

__all__ = [
    "RECORD_ENV",
    "REPLAY_URL",
    "cassette_problems",
    "cassette_recorder",
    "recording",
]

RECORD_ENV = "PAYCORE_RECORD"
# Where a replayed gateway points: a name that resolves nowhere, so a request missing
# from the cassette can never reach a real server.
REPLAY_URL = "http://provider.invalid"

REDACTED = "[REDACTED]"
CREDENTIAL_HEADERS = ("authorization", "cookie", "set-cookie", "x-api-key", "api-key")

# A standalone run of 14 to 19 digits (13 when it starts like a 13-digit Visa): the
# shapes of card numbers. Ids with a prefix (``pi_1787…``) and 13-digit millisecond
# timestamps are left alone.
_CARD_CANDIDATE = re.compile(r"(?<![\w.])(?:\d{14,19}|4\d{12})(?![\w.])")
_KEY_SHAPES = re.compile(r"\b(?:sk|rk)_(?:test|live)_[A-Za-z0-9]{4,}|\bwhsec_[A-Za-z0-9+/=]{4,}")


def recording() -> bool:
    """True when this run records cassettes anew (``PAYCORE_RECORD=1``)."""
    return os.environ.get(RECORD_ENV) == "1"


def cassette_recorder(
    directory: Path | str,
    *,
    server_url: str | None = None,
    secrets: Iterable[str] = (),
    record: bool | None = None,
    same_body: Callable[[bytes, bytes], bool] | None = None,
) -> vcr.VCR:
    """A ``vcr.VCR`` keeping cassettes in ``directory``.

    ``record`` defaults to `recording()`. When recording, ``server_url`` is the live
    server the gateway talks to; its address becomes `REPLAY_URL` in what is written.
    When replaying, point the gateway at `REPLAY_URL`.

    ``same_body(recorded, sent)`` compares request bodies where their bytes cannot
    repeat (a provider whose bodies are encrypted with fresh keys): it says whether the
    two bodies mean the same request. By default the bytes must be equal.
    """
    import vcr

    record = recording() if record is None else record
    if record and not server_url:
        raise ValueError("recording needs the live server_url to rewrite")
    rewrite = _Rewrite(server_url, tuple(secret for secret in secrets if secret))
    recorder = vcr.VCR(
        cassette_library_dir=str(directory),
        record_mode="all" if record else "none",
        match_on=("method", "uri", "body" if same_body is None else "same_body"),
        # Host names the live server's port: noise in every re-recording.
        filter_headers=[*CREDENTIAL_HEADERS, "host"],
        before_record_request=rewrite.request,
        before_record_response=rewrite.response,
        decode_compressed_response=True,
    )
    if same_body is not None:

        def body_means_the_same(recorded: Any, sent: Any) -> bool:
            return same_body(_raw(recorded), _raw(sent))

        recorder.register_matcher("same_body", body_means_the_same)
    return recorder


def _raw(request: Any) -> bytes:
    body = request.body
    if body is None:
        return b""
    return body if isinstance(body, bytes) else str(body).encode("utf-8")


class _Rewrite:
    """What happens to each request and answer before vcrpy stores or matches it."""

    def __init__(self, server_url: str | None, secrets: tuple[str, ...]) -> None:
        self._origin = _origin(server_url) if server_url else None
        self._secrets = secrets

    def request(self, request: Any) -> Any:
        if self._origin is not None and request.uri.startswith(self._origin):
            request.uri = REPLAY_URL + request.uri[len(self._origin) :]
        if request.body:
            request.body = self._text(request.body)
        return request

    def response(self, response: dict[str, Any]) -> dict[str, Any]:
        body = response.get("body", {}).get("string")
        if body:
            response["body"]["string"] = self._text(body)
        headers = response.get("headers", {})
        for name in list(headers):
            if name.lower() in CREDENTIAL_HEADERS:
                del headers[name]
            elif name.lower() == "location":
                headers[name] = [self._text(value) for value in headers[name]]
        return response

    def _text(self, value: bytes | str) -> Any:
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        if self._origin is not None:
            text = text.replace(self._origin, REPLAY_URL)
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        text = _CARD_CANDIDATE.sub(_mask_card, text)
        return text.encode() if isinstance(value, bytes) else text


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _mask_card(match: re.Match[str]) -> str:
    digits = match.group()
    return REDACTED if luhn_valid(digits) else digits


def cassette_problems(path: Path, secrets: Iterable[str] = ()) -> list[str]:
    """Every way the cassette at ``path`` leaks: secrets, keys, card numbers, credentials.

    Messages name the line and the kind of leak, never the value.
    """
    problems = []
    known = [secret for secret in secrets if secret]
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        where = f"{path.name}:{number}"
        if any(secret in line for secret in known):
            problems.append(f"{where}: a configured secret")
        if _KEY_SHAPES.search(line):
            problems.append(f"{where}: something shaped like a secret key")
        if any(luhn_valid(match.group()) for match in _CARD_CANDIDATE.finditer(line)):
            problems.append(f"{where}: a card number")
        stripped = line.strip().lower()
        if any(stripped.startswith(f"{header}:") for header in CREDENTIAL_HEADERS):
            problems.append(f"{where}: a credential header")
    return problems
