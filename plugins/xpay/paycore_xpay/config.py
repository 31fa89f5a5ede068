"""The XPAY gateway config: a partner connection, its keys, its terminal, its page.

The partner holds a token and an RSA key pair of its own (its private key signs
requests and opens answers) and XPAY's RSA public key (it seals requests and verifies
answers), both 2048 bits or more [DOC]. Each key is PEM text or the path of a PEM file
(read relative to the working directory); both are loaded and checked when the config
is, so a key of the wrong kind or size is a config problem, not a failed payment.

``mode`` picks XPAY's endpoint; ``base_url`` replaces it (a local sandbox), and must be
https in live mode: the partner token travels in every request.

The schema (``schemas/config.schema.json``) checks each value; `config_problems` adds
the keys and the rules across settings. Messages name settings, never values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from attrs import field, frozen
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from paycore.errors import ConfigurationError
from paycore.gateways.base import GatewayConfig, secret
from paycore.gateways.schema import config_problems as schema_problems
from paycore_xpay.keys import (
    key_or_problem,
    private_key_from_pem,
    public_key_from_pem,
)

__all__ = [
    "BASE_URLS",
    "LOCALES",
    "PAYMENT_METHODS",
    "WHERE",
    "XpayConfig",
    "config_problems",
]

BASE_URLS = {
    "test": "https://stage-papi.xpay.com.ua:488/xpay",
    "live": "https://papi.xpaydirect.com/xpay",
}
LOCALES = ("uk", "en")
PAYMENT_METHODS = ("card", "google_pay", "apple_pay")
WHERE = "gateway 'xpay' config"
PEM_MARKER = "-----BEGIN "
DEFAULT_PAGE_TTL = 15  # minutes [DOC: the page lives 15 minutes unless TTL says otherwise]
MAX_PAGE_TTL = 1440  # [PROPOSAL] a day
_UNCHECKED: Any = object()  # a key `_load_keys` is not to read
_MAX_PEM_FILE = 65536  # bytes: a PEM key file is a few kilobytes


def _base_url(value: str | None) -> str | None:
    return None if value is None else value.rstrip("/")


def _methods(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@frozen(kw_only=True)
class XpayConfig(GatewayConfig):
    partner_token: str = secret()
    # As configured: PEM text or the path of a PEM file.
    partner_private_key: str = secret()
    xpay_public_key: str = field(repr=False)
    mode: str
    terminal_id: str = "1"
    base_url: str | None = field(default=None, converter=_base_url)
    locale: str = "uk"
    callback_url: str | None = None
    page_ttl: int = DEFAULT_PAGE_TTL
    payment_methods: tuple[str, ...] = field(default=("card",), converter=_methods)
    # Loaded from the two settings above when the config is built.
    partner_key: RSAPrivateKey = field(init=False, repr=False, eq=False)
    xpay_key: RSAPublicKey = field(init=False, repr=False, eq=False)
    partner_private_pem: str = secret(init=False, eq=False)

    def __attrs_post_init__(self) -> None:
        loaded = _load_keys(self.partner_private_key, self.xpay_public_key)
        problems = loaded.problems + _rule_problems(self.mode, self.base_url)
        if self.mode not in BASE_URLS:
            problems.append("mode: must be 'test' or 'live'")
        if not (isinstance(self.partner_token, str) and self.partner_token.strip()):
            problems.append("partner_token: must not be empty")
        if not (isinstance(self.terminal_id, str) and self.terminal_id.strip()):
            problems.append("terminal_id: must not be empty")
        if self.locale not in LOCALES:
            problems.append(f"locale: must be one of {', '.join(LOCALES)}")
        if type(self.page_ttl) is not int or not 1 <= self.page_ttl <= MAX_PAGE_TTL:
            problems.append(f"page_ttl: must be a whole number of minutes from 1 to {MAX_PAGE_TTL}")
        if not self.payment_methods or not set(self.payment_methods) <= set(PAYMENT_METHODS):
            problems.append(f"payment_methods: must list some of {', '.join(PAYMENT_METHODS)}")
        if problems or loaded.partner_key is None or loaded.xpay_key is None:
            raise ConfigurationError(WHERE, sorted(problems))
        object.__setattr__(self, "partner_key", loaded.partner_key)
        object.__setattr__(self, "xpay_key", loaded.xpay_key)
        object.__setattr__(self, "partner_private_pem", loaded.partner_pem)

    @property
    def live(self) -> bool:
        return self.mode == "live"

    @property
    def url(self) -> str:
        """The one endpoint every operation is posted to."""
        return self.base_url or BASE_URLS[self.mode]


@frozen
class _LoadedKeys:
    """The two keys of a config, or what is wrong with them."""

    partner_key: RSAPrivateKey | None
    xpay_key: RSAPublicKey | None
    partner_pem: str
    problems: list[str]


def _load_keys(partner_private_key: Any, xpay_public_key: Any) -> _LoadedKeys:
    """Read and check both keys (`_UNCHECKED` skips one); every problem names the setting,
    never the key's content."""
    problems: list[str] = []
    partner_pem = _pem_text("partner_private_key", partner_private_key, problems)
    xpay_pem = _pem_text("xpay_public_key", xpay_public_key, problems)
    partner_key = key_or_problem("partner_private_key", partner_pem, private_key_from_pem, problems)
    xpay_key = key_or_problem("xpay_public_key", xpay_pem, public_key_from_pem, problems)
    if (
        partner_key is not None
        and xpay_key is not None
        and partner_key.public_key().public_numbers() == xpay_key.public_numbers()
    ):
        problems.append(
            "xpay_public_key: is the public half of partner_private_key; it must be XPAY's key"
        )
    return _LoadedKeys(partner_key, xpay_key, partner_pem or "", problems)


def config_problems(schema: Mapping[str, Any], mapping: Mapping[str, Any]) -> list[str]:
    """Every way ``mapping`` breaks ``schema``, the keys' rules or the rules across
    settings, sorted."""
    problems = schema_problems(schema, mapping)
    # A key the schema refused (or that is missing) is not read again.
    keys = {
        name: mapping[name] if name in mapping and not _named(problems, name) else _UNCHECKED
        for name in ("partner_private_key", "xpay_public_key")
    }
    problems += _load_keys(**keys).problems
    if not _named(problems, "base_url"):
        problems += _rule_problems(mapping.get("mode"), mapping.get("base_url"))
    return sorted(problems)


def _rule_problems(mode: Any, base_url: Any) -> list[str]:
    if mode == "live" and isinstance(base_url, str) and not base_url.startswith("https://"):
        return ["base_url: must be https in live mode (the partner token travels in requests)"]
    return []


def _named(problems: list[str], name: str) -> bool:
    return any(line.startswith(f"{name}:") for line in problems)


def _pem_text(name: str, value: Any, problems: list[str]) -> str | None:
    """``value`` itself when it is PEM text, else the text of the file it names."""
    if value is _UNCHECKED:
        return None
    if not isinstance(value, str) or not value:
        problems.append(f"{name}: must be PEM text or the path of a PEM file")
        return None
    if PEM_MARKER in value:
        return value
    try:
        with Path(value).expanduser().open("rb") as file:
            content = file.read(_MAX_PEM_FILE + 1)
        if len(content) > _MAX_PEM_FILE:
            raise ValueError("too long for a key")
        return content.decode("ascii")
    except (OSError, ValueError):
        # ValueError: a NUL in the path, a file too long or not ASCII text.
        problems.append(f"{name}: is neither PEM text nor the path of a readable PEM file")
        return None
