"""Scrubbed transcripts: what was said to a provider, with nothing sensitive left in it.

`Scrubber` removes, from any text, header set or URL:
- card numbers: runs of 13–19 digits (spaces or dashes allowed between them) that
  pass the Luhn check, kept as their last four digits;
- card security codes, PINs, passwords, keys, tokens and signatures, by field name,
  in JSON bodies, form bodies and query strings;
- credential headers (``Authorization``, cookies, API keys, signatures);
- the literal values of the gateway's configured secrets, wherever they appear.

`Transcript` is the record of one exchange, built only from scrubbed parts; the driver
hands it to the ``paycore_gateway_exchange`` hook and to logging.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import httpx
from attrs import asdict, frozen

__all__ = ["ExchangeRecord", "Scrubber", "Transcript", "luhn_valid"]

REDACTED = "[REDACTED]"
MAX_BODY_CHARS = 8192

_CANDIDATE_PAN = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])")

# Field names whose values are never kept, compared after lower-casing and dropping
# "_" and "-", so "cardNumber", "card_number" and "card-number" are one name.
_SENSITIVE_NAMES = frozenset(
    {
        "cvv", "cvv2", "cvc", "cvc2", "cvn", "csc", "cid", "securitycode", "cardcode",
        "cardverification", "cardverificationvalue", "pin", "pinblock",
        "password", "passwd", "passphrase", "secret", "apikey", "privatekey", "secretkey",
        "keyaes", "accesstoken", "refreshtoken", "authtoken", "idtoken", "authorization",
        "signature", "sign", "pan", "cardnumber", "accountnumber", "iban",
    }
)  # fmt: skip


def _sensitive(name: str) -> bool:
    key = name.lower().replace("_", "").replace("-", "")
    return key in _SENSITIVE_NAMES or key.endswith("secret") or key.startswith("secret")


_JSON_FIELD = re.compile(
    r'("([A-Za-z0-9_-]{1,64})"\s*:\s*)("(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+-]*|true|false)'
)
_FORM_FIELD = re.compile(r"(?<![A-Za-z0-9_-])([A-Za-z0-9_-]{1,64})=([^&\s\"']*)")

# Headers whose values are protocol plumbing: kept as they are, without scrubbing.
_PLAIN_HEADERS = frozenset(
    {
        "accept", "accept-encoding", "connection", "content-length", "content-type",
        "date", "host", "idempotency-key", "request-id", "server", "transfer-encoding",
        "user-agent", "x-request-id", "vary", "cache-control",
    }
)  # fmt: skip
_SENSITIVE_HEADER = re.compile(
    r"authorization|proxy-authorization|cookie|set-cookie|x-api-key|api-key|apikey"
    r"|.*(?:secret|token|signature|session|password|-auth).*",
    re.IGNORECASE,
)


def _redact_json_field(match: re.Match[str]) -> str:
    if _sensitive(match.group(2)):
        return f'{match.group(1)}"{REDACTED}"'
    return match.group(0)


def _redact_form_field(match: re.Match[str]) -> str:
    if _sensitive(match.group(1)):
        return f"{match.group(1)}={REDACTED}"
    return match.group(0)


def luhn_valid(digits: str) -> bool:
    """True when the string of digits passes the Luhn (mod 10) check."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _mask_pan(match: re.Match[str]) -> str:
    candidate = match.group(0)
    digits = candidate.replace(" ", "").replace("-", "")
    if 13 <= len(digits) <= 19 and luhn_valid(digits):
        return f"[PAN …{digits[-4:]}]"
    return candidate


class Scrubber:
    """Removes card data and secrets from text, headers and URLs.

    ``secrets`` are literal values (API keys, signing secrets) removed wherever they
    appear; values shorter than 4 characters are ignored as too likely to be noise.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        literals = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)
        self._secrets = re.compile("|".join(map(re.escape, literals))) if literals else None

    def text(self, text: str) -> str:
        """Scrub free text: a body, a message, a URL."""
        if self._secrets is not None:
            text = self._secrets.sub(REDACTED, text)
        if '"' in text:
            text = _JSON_FIELD.sub(_redact_json_field, text)
        if "=" in text:
            text = _FORM_FIELD.sub(_redact_form_field, text)
        return _CANDIDATE_PAN.sub(_mask_pan, text)

    def body(self, content: bytes) -> str:
        """Scrub a body; bodies that are not text are described, never quoted."""
        if not content:
            return ""
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            return f"<{len(content)} bytes, not UTF-8>"
        if len(text) > MAX_BODY_CHARS:
            # Scrub before cutting so a secret straddling the cut is still found.
            return self.text(text)[:MAX_BODY_CHARS] + f"… <{len(text)} chars>"
        return self.text(text)

    def headers(self, headers: Mapping[str, str] | httpx.Headers) -> tuple[tuple[str, str], ...]:
        """Header pairs with credential headers redacted and other values scrubbed."""
        scrubbed = []
        for name, value in headers.items():
            if name.lower() in _PLAIN_HEADERS:
                scrubbed.append((name, value))
            elif _SENSITIVE_HEADER.fullmatch(name):
                scrubbed.append((name, REDACTED))
            else:
                scrubbed.append((name, self.text(value)))
        return tuple(scrubbed)


@frozen(kw_only=True)
class ExchangeRecord:
    """One attempt of one request of an exchange, scrubbed."""

    attempt: int
    method: str
    url: str
    request_headers: tuple[tuple[str, str], ...]
    request_body: str
    status_code: int | None = None
    response_headers: tuple[tuple[str, str], ...] = ()
    response_body: str | None = None
    elapsed_ms: float = 0.0
    error: str | None = None  # what went wrong on the wire, if anything


@frozen(kw_only=True)
class Transcript:
    """Everything that went over the wire for one operation, scrubbed.

    ``outcome`` is ``"completed"`` or the name of the error the driver raised.
    """

    gateway: str
    operation: str
    records: tuple[ExchangeRecord, ...]
    outcome: str

    def summary(self) -> str:
        """One line per attempt: ``POST https://… -> 201 (12.3 ms)``."""
        lines = []
        for record in self.records:
            answer = record.error if record.status_code is None else str(record.status_code)
            lines.append(f"{record.method} {record.url} -> {answer} ({record.elapsed_ms:.1f} ms)")
        return "; ".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
