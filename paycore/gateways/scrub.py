"""Scrubbed transcripts: what was said to a provider, with nothing sensitive left in it.

`Scrubber` removes, from any text, header set or URL:
- card numbers: within any run of digits joined by single spaces, ``+``, ``.`` or
  ``-``, every 13–19-digit stretch that passes the Luhn check, kept as its last four
  digits;
- card security codes, PINs, passwords, keys, tokens and signatures, by field name
  (see `sensitive_name`), in JSON bodies (JSON nested in strings included), form
  bodies and query strings; in a JSON body, objects and arrays under such a name too;
- security codes named in prose (``cvv 737``, ``CVC: 737``, ``security code 1234``),
  kept as the name alone;
- passwords in URLs (``https://user:pass@host``);
- credential headers (``Authorization``, cookies, API keys, signatures);
- the literal values of the gateway's configured secrets, wherever they appear, also
  JSON-escaped or URL-encoded.

A JSON body is parsed and walked; it is re-serialised, compactly, only when something
in it was redacted, so an untouched body is quoted exactly as it was sent.

`Transcript` is the record of one exchange, built only from scrubbed parts; the driver
hands it to the ``paycore_gateway_exchange`` hook and to logging.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

import httpx
from attrs import asdict, frozen

__all__ = [
    "ExchangeRecord",
    "Scrubber",
    "Transcript",
    "attempt_line",
    "luhn_valid",
    "security_code_name",
    "sensitive_name",
]

REDACTED = "[REDACTED]"
MAX_BODY_CHARS = 8192

# -- field names ----------------------------------------------------------------------

# Stems that make a name sensitive wherever they appear in it: "card_cvv", "cvvCode",
# "client_secret". A verification stem followed by "check", "result" or "response"
# names the provider's verdict ("cvc_check": "pass"), not the code itself.
_SENSITIVE_STEM = re.compile(
    r"(?:cv[cvn]|securitycode)(?!2?(?:check|result|response))"
    r"|cardnumber|password|secret|apikey|privatekey|accesstoken|refreshtoken"
)
# The stems and whole names of a card's security code, among the sensitive ones.
_SECURITY_CODE_STEM = re.compile(
    r"(?:cv[cvn]|securitycode|cardverification)(?!2?(?:check|result|response))"
)
_SECURITY_CODE_NAMES = frozenset({"csc", "cid", "cvd", "cvdvalue", "cardcode"})
# Short or common words, sensitive only as the whole (last) segment of a name: "pan"
# but not "panel", "pin" but not "spin", "sign" but not "signup".
_SENSITIVE_NAMES = frozenset(
    {
        "pan", "pin", "pinblock", "pincode", "csc", "cid", "cvd", "cvdvalue", "cardcode",
        "cardverification", "cardverificationvalue", "passwd", "passphrase", "pwd",
        "keyaes", "authtoken", "idtoken", "authorization", "signature", "sign",
        "accountnumber", "iban",
    }
)  # fmt: skip
_NAME_SEGMENT = re.compile(r"[^\[\].]+")
_NAME_NOISE = str.maketrans("", "", "_- ")


@lru_cache(maxsize=4096)
def sensitive_name(name: str) -> bool:
    """True when a field, key or parameter of this name never has its value kept.

    The name is URL-decoded, lower-cased and stripped of ``_``, ``-`` and spaces, so
    ``cardNumber``, ``card_number`` and ``card-number`` are one name; ``card[cvc]``,
    ``card%5Bcvc%5D`` and ``card.cvc`` are judged by their last segment (``cvc``) and,
    for the stems, by the whole.
    """
    if "%" in name or "+" in name:
        name = unquote_plus(name)
    segments = _NAME_SEGMENT.findall(name.lower().translate(_NAME_NOISE))
    if not segments:
        return False
    return segments[-1] in _SENSITIVE_NAMES or bool(_SENSITIVE_STEM.search("".join(segments)))


@lru_cache(maxsize=1024)
def security_code_name(name: str) -> bool:
    """True when a field of this name holds a card's security code (``cvv``, ``card_cvc``,
    ``securityCode``), judged as `sensitive_name` judges names; ``cvc_check`` is not one."""
    if "%" in name or "+" in name:
        name = unquote_plus(name)
    segments = _NAME_SEGMENT.findall(name.lower().translate(_NAME_NOISE))
    if not segments:
        return False
    return segments[-1] in _SECURITY_CODE_NAMES or bool(
        _SECURITY_CODE_STEM.search("".join(segments))
    )


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

# -- text passes ------------------------------------------------------------------------

# A field in JSON-like text that is not a JSON document (a message, a log line), its
# name quoted as ``"name"`` or, in JSON escaped inside a string, as ``\"name\"``; flat
# objects and arrays are values too, and are searched when their name is not sensitive.
_JSON_FIELD = re.compile(
    r'(?P<q>\\?")(?P<name>[^"\\]{1,64})(?P=q)\s*:\s*'
    r'(?P<value>"(?:[^"\\]|\\.)*"'
    r'|\\"(?:[^"\\]|\\[^"\\]|\\\\(?:\\[\\"]|[^"\\]))*\\"'
    r"|\{[^{}]*\}|\[[^\[\]]*\]|-?[0-9][0-9.eE+-]*|true|false)"
)
# ``name=value`` in a form body or a query string; the name may be bracketed
# (``card[cvc]``) or percent-encoded (``card%5Bcvc%5D``).
_FORM_FIELD = re.compile(r"(?<![\w.%\[\]-])([\w.%\[\]-]{1,128})=((?:[^&;\s\"'\\]|\\.)*)")
# ``scheme://user:password@host``; the password runs to the last ``@`` of the authority,
# as URL parsers read it. Slashes may be JSON-escaped (``https:\/\/``).
_URL_PASSWORD = re.compile(r"(:(?:\\?/){2}[^\s/?#@:\"'<>\\]*:)([^\s/?#\"'<>\\]+)(?=@)")

# A security code named in prose or in a field no pass above read (a log line, a note):
# the name, up to six non-word characters (``: ``, ``\":\"``), then 3 or 4 digits.
_SECURITY_CODE_IN_TEXT = re.compile(
    r"(?i)(?<![a-z0-9])(cvv2?|cvc2?|cvn|csc|security[ _-]?code|card[ _-]?code)"
    r"(?![a-z0-9_])(\W{1,6}?)[0-9]{3,4}(?![0-9])"
)
# Runs of at least 13 digits joined by single separators: where card numbers may be.
_DIGIT_RUN = re.compile(r"[0-9](?:[ +.-]?[0-9]){12,}")
# A cheaper test that text holds no such run (most bodies do not).
_MAYBE_DIGIT_RUN = re.compile(r"[0-9][0-9 +.-]{12}")
_NOT_DIGITS = str.maketrans("", "", " +.-")
_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)  # a digit's contribution when Luhn doubles it


def _redact_json_field(match: re.Match[str]) -> str:
    whole, value = match.group(0), match["value"]
    head = whole[: match.start("value") - match.start()]
    if sensitive_name(match["name"]):
        return f"{head}{match['q']}{REDACTED}{match['q']}"
    if value[0] in "{[":
        return head + _JSON_FIELD.sub(_redact_json_field, value)
    return whole


def _redact_form_field(match: re.Match[str]) -> str:
    if match.group(2) and sensitive_name(match.group(1)):
        return f"{match.group(1)}={REDACTED}"
    return match.group(0)


def _scrub_fields(text: str) -> str:
    """Sensitive fields and URL passwords redacted from text that is no JSON document."""
    if '"' in text:
        text = _JSON_FIELD.sub(_redact_json_field, text)
    if "=" in text:
        text = _FORM_FIELD.sub(_redact_form_field, text)
    if "://" in text or ":\\/\\/" in text:
        text = _URL_PASSWORD.sub(rf"\g<1>{REDACTED}", text)
    return text


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


def _card_number_spans(digits: str) -> list[tuple[int, int]]:
    """The stretches of ``digits`` covered by 13–19-digit windows that pass Luhn.

    Overlapping windows are merged; windows that only touch are kept apart.
    """
    # sums[p][i]: the Luhn sum of digits[:i] with the digits at indices of parity p
    # doubled. In a window ending before index b, the digits doubled are those whose
    # index has the parity of b, so a window's sum is a difference of two prefix sums.
    even, odd = [0], [0]
    sum_even = sum_odd = 0
    for index, char in enumerate(digits):
        value = ord(char) - 48
        if index & 1:
            sum_even += value
            sum_odd += _DOUBLED[value]
        else:
            sum_even += _DOUBLED[value]
            sum_odd += value
        even.append(sum_even)
        odd.append(sum_odd)
    spans: list[tuple[int, int]] = []
    count = len(digits)
    for start in range(count - 12):
        for end in range(start + 13, min(start + 19, count) + 1):
            sums = odd if end & 1 else even
            if (sums[end] - sums[start]) % 10 == 0:
                if spans and start < spans[-1][1]:
                    spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
                else:
                    spans.append((start, end))
    return spans


def _mask_card_numbers(match: re.Match[str]) -> str:
    run = match.group(0)
    digits = run.translate(_NOT_DIGITS)
    spans = _card_number_spans(digits)
    if not spans:
        return run
    where = [index for index, char in enumerate(run) if char in "0123456789"]
    parts, cursor = [], 0
    for start, end in spans:
        parts.append(run[cursor : where[start]])
        parts.append(f"[PAN …{digits[end - 4 : end]}]")
        cursor = where[end - 1] + 1
    parts.append(run[cursor:])
    return "".join(parts)


# -- JSON documents ---------------------------------------------------------------------


class _JsonScrub:
    """Redacts one JSON document while it is parsed; ``changed`` once anything was."""

    __slots__ = ("changed",)

    def __init__(self) -> None:
        self.changed = False

    def document(self, text: str) -> Any:
        """The parsed, scrubbed document; raises ValueError when text is not JSON."""
        document = json.loads(text, object_pairs_hook=self.object)
        if isinstance(document, list):
            self.array(document)
        elif isinstance(document, str):
            document = self.string(document)
        return document

    def object(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        # Called for every object, innermost first: nested objects are already scrubbed.
        result = dict(pairs)
        if len(result) < len(pairs):
            # A repeated key: the value parsed last hides the others, so the document
            # must be re-serialised for them not to be quoted.
            self.changed = True
        for key, value in result.items():
            if sensitive_name(key):
                if value is not None and value != REDACTED:
                    result[key] = REDACTED
                    self.changed = True
            elif isinstance(value, str):
                if '"' in value or "=" in value or "://" in value:
                    result[key] = self.string(value)
            elif isinstance(value, list):
                self.array(value)
            elif type(value) is int and not -(10**12) < value < 10**12:
                result[key] = self.number(value)
        return result

    def array(self, items: list[Any]) -> None:
        for index, item in enumerate(items):
            if isinstance(item, str):
                if '"' in item or "=" in item or "://" in item:
                    items[index] = self.string(item)
            elif isinstance(item, list):
                self.array(item)
            elif type(item) is int and not -(10**12) < item < 10**12:
                items[index] = self.number(item)

    def string(self, text: str) -> str:
        """A string value scrubbed: JSON, form fields or URLs in it."""
        if text.lstrip()[:1] in ("{", "["):
            nested = _JsonScrub()
            try:
                document = nested.document(text)
            except (ValueError, RecursionError):
                pass
            else:
                if not nested.changed:
                    return text
                self.changed = True
                return _dumps(document)
        scrubbed = _scrub_fields(text)
        if scrubbed != text:
            self.changed = True
        return scrubbed

    def number(self, value: int) -> int | str:
        """A long integer, or its masked text when it holds a card number."""
        text = str(value)
        masked = _DIGIT_RUN.sub(_mask_card_numbers, text)
        if masked == text:
            return value
        self.changed = True
        return masked


def _dumps(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def _scrub_json(text: str) -> str | None:
    """``text`` with its sensitive fields redacted, or None when it is not JSON."""
    scrub = _JsonScrub()
    try:
        document = scrub.document(text)
        return _dumps(document) if scrub.changed else text
    except (ValueError, RecursionError):
        return None


def _secret_forms(secret: str) -> set[str]:
    """The ways a literal secret may appear in a body: as is, JSON-escaped, URL-encoded."""
    escaped = json.dumps(secret)[1:-1]
    return {
        secret,
        escaped,
        escaped.replace("/", "\\/"),
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret, safe=""),
        quote_plus(secret),
    }


class Scrubber:
    """Removes card data and secrets from text, headers and URLs.

    ``secrets`` are literal values (API keys, signing secrets) removed wherever they
    appear; values shorter than 4 characters are ignored as too likely to be noise.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        literals = {form for s in secrets if len(s) >= 4 for form in _secret_forms(s)}
        ordered = sorted(literals, key=len, reverse=True)
        self._secrets = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def text(self, text: str) -> str:
        """Scrub free text: a body, a message, a URL."""
        if self._secrets is not None:
            text = self._secrets.sub(REDACTED, text)
        scrubbed = _scrub_json(text) if text.lstrip()[:1] in ("{", "[", '"') else None
        text = _scrub_fields(text) if scrubbed is None else scrubbed
        if _MAYBE_DIGIT_RUN.search(text):
            text = _DIGIT_RUN.sub(_mask_card_numbers, text)
        return _SECURITY_CODE_IN_TEXT.sub(rf"\g<1>\g<2>{REDACTED}", text)

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
            elif _SENSITIVE_HEADER.fullmatch(name) or sensitive_name(name):
                scrubbed.append((name, REDACTED))
            else:
                scrubbed.append((name, self.text(value)))
        return tuple(scrubbed)


def attempt_line(
    method: str, url: str, status_code: int | None, error: str | None, elapsed_ms: float
) -> str:
    """One attempt in a summary; ``url`` and ``error`` must be scrubbed already."""
    answer = error if status_code is None else str(status_code)
    return f"{method} {url} -> {answer} ({elapsed_ms:.1f} ms)"


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
        return "; ".join(
            attempt_line(r.method, r.url, r.status_code, r.error, r.elapsed_ms)
            for r in self.records
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
