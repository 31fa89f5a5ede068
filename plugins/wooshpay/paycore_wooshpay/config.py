"""WooshPay's gateway config: API keys, which host, webhook secrets.

The secret key's prefix decides test or live mode (``sk_test_`` / ``sk_live_``), as
WooshPay documents; ``mode`` states it (and must then agree with the key) and
``base_url`` replaces the host (a local sandbox), so at most one of the two is given.
With neither, the key's mode picks the host. ``webhook_secret`` is one secret or, while
one is rotated, a list: a delivery signed with any of them is accepted.

The schema (``schemas/config.schema.json``) checks each value; `config_problems` adds
the rules across keys. Messages name keys, never values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from attrs import field, frozen

from paycore.errors import ConfigurationError
from paycore.gateways.base import GatewayConfig, secret
from paycore.gateways.schema import config_problems as schema_problems
from paycore.gateways.webhooks import DEFAULT_TOLERANCE
from paycore_wooshpay.answers import NAME

__all__ = ["BASE_URLS", "WooshPayConfig", "config_problems"]

BASE_URLS = {"test": "https://apitest.wooshpay.com", "live": "https://api.wooshpay.com"}
WHERE = f"gateway {NAME!r} config"
# The core's line for the schema's "not both" rule; `_key_problems` says it better.


def _secrets(value: str | Iterable[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _base_url(value: str | None) -> str | None:
    return None if value is None else value.rstrip("/")


@frozen(kw_only=True)
class WooshPayConfig(GatewayConfig):
    secret_key: str = secret()
    webhook_secret: tuple[str, ...] = secret(converter=_secrets)
    mode: str | None = None
    base_url: str | None = field(default=None, converter=_base_url)
    webhook_tolerance: int = DEFAULT_TOLERANCE
    publishable_key: str | None = None

    def __attrs_post_init__(self) -> None:
        problems = _key_problems(self.secret_key, self.mode, self.base_url, self.publishable_key)
        if _mode_of(self.secret_key, "sk") is None:
            problems.append("secret_key: must start with sk_test_ or sk_live_")
        if self.mode not in (None, *BASE_URLS):
            problems.append("mode: must be 'test' or 'live'")
        if not self.webhook_secret or not all(self.webhook_secret):
            problems.append("webhook_secret: must be one or more non-empty secrets")
        if problems:
            raise ConfigurationError(WHERE, problems)

    @property
    def live(self) -> bool:
        """Whether the key moves real money (a live key, whatever the host)."""
        return _mode_of(self.secret_key, "sk") == "live"

    @property
    def api_url(self) -> str:
        """The API's base URL, without a trailing slash."""
        return self.base_url or BASE_URLS[self.mode or ("live" if self.live else "test")]


def config_problems(schema: Mapping[str, Any], mapping: Mapping[str, Any]) -> list[str]:
    """Every way ``mapping`` breaks ``schema`` or the rules across its keys, sorted."""
    problems = schema_problems(schema, mapping)
    problems += _key_problems(
        mapping.get("secret_key"),
        mapping.get("mode"),
        mapping.get("base_url"),
        mapping.get("publishable_key"),
    )
    return sorted(problems)


def _key_problems(secret_key: Any, mode: Any, base_url: Any, publishable_key: Any) -> list[str]:
    problems = []
    key_mode = _mode_of(secret_key, "sk")
    if key_mode is not None and mode in BASE_URLS and mode != key_mode:
        problems.append(
            f"mode: says {mode} but secret_key is a {key_mode} key (sk_{key_mode}_…): "
            f"use a {mode} key, or mode {key_mode}"
        )
    publishable_mode = _mode_of(publishable_key, "pk")
    if None not in (key_mode, publishable_mode) and publishable_mode != key_mode:
        problems.append(
            f"publishable_key: is a {publishable_mode} key but secret_key is a {key_mode} key"
        )
    return problems


def _mode_of(key: Any, kind: str) -> str | None:
    """``test`` or ``live`` from a key's prefix (``sk_test_…``), or None."""
    if isinstance(key, str):
        for mode in BASE_URLS:
            if key.startswith(f"{kind}_{mode}_"):
                return mode
    return None
