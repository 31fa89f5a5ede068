"""The MilkyPay/Paytone gateway config: a commerce account on a Corefy-platform tenant.

The platform has no separate test host: the key pair decides the mode. The public
key's prefix (``pk_test_`` / ``pk_live_``) says it, ``test_mode`` (sent on every
invoice) defaults to it and must agree with it. ``secret_key`` is the secret of that
mode callbacks are signed with; while one is rotated it is a list, and a callback
signed with any of them is accepted.

The schema (``schemas/config.schema.json``) checks each value; `config_problems` adds
the rules across keys. Messages name keys, never values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from attrs import Factory, field, frozen

from paycore.errors import ConfigurationError
from paycore.gateways.base import GatewayConfig, secret
from paycore.gateways.schema import config_problems as schema_problems

__all__ = ["LOCALES", "MilkyPayConfig", "config_problems"]

LOCALES = ("en", "uk", "ru")
WHERE = "MilkyPay/Paytone gateway config"
_MODES = {"test": True, "live": False}


def _secrets(value: str | Iterable[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _base_url(value: str) -> str:
    return value.rstrip("/")


def _default_test_mode(config: MilkyPayConfig) -> bool:
    return _mode_of(config.public_key) != "live"


@frozen(kw_only=True)
class MilkyPayConfig(GatewayConfig):
    base_url: str = field(converter=_base_url)
    public_key: str
    commerce_account_id: str
    api_key: str = secret()
    secret_key: tuple[str, ...] = secret(converter=_secrets)
    test_mode: bool = field(default=Factory(_default_test_mode, takes_self=True))
    locale: str | None = None

    def __attrs_post_init__(self) -> None:
        problems = _key_problems(self.public_key, self.test_mode, self.base_url)
        if _mode_of(self.public_key) is None:
            problems.append("public_key: must start with pk_test_ or pk_live_")
        if not self.base_url.startswith(("https://", "http://")):
            problems.append("base_url: must be an http(s) URL")
        if ":" in self.commerce_account_id or not self.commerce_account_id:
            problems.append("commerce_account_id: must be non-empty, without ':'")
        if not self.api_key:
            problems.append("api_key: must not be empty")
        if not self.secret_key or not all(self.secret_key):
            problems.append("secret_key: must be one or more non-empty secrets")
        if self.locale not in (None, *LOCALES):
            problems.append(f"locale: must be one of {', '.join(LOCALES)}")
        if problems:
            raise ConfigurationError(WHERE, sorted(problems))


def config_problems(schema: Mapping[str, Any], mapping: Mapping[str, Any]) -> list[str]:
    """Every way ``mapping`` breaks ``schema`` or the rules across its keys, sorted."""
    problems = schema_problems(schema, mapping)
    problems += _key_problems(
        mapping.get("public_key"), mapping.get("test_mode"), mapping.get("base_url")
    )
    return sorted(problems)


def _key_problems(public_key: Any, test_mode: Any, base_url: Any) -> list[str]:
    problems = []
    key_mode = _mode_of(public_key)
    if key_mode is not None and isinstance(test_mode, bool) and test_mode != _MODES[key_mode]:
        other = "live" if key_mode == "test" else "test"
        problems.append(
            f"test_mode: is {str(test_mode).lower()} but public_key is a {key_mode} key "
            f"(pk_{key_mode}_…): use a {other} key, or test_mode {str(not test_mode).lower()}"
        )
    if key_mode == "live" and isinstance(base_url, str) and base_url.startswith("http://"):
        problems.append("base_url: must be https with a live public_key (credentials travel)")
    return problems


def _mode_of(key: Any) -> str | None:
    """``test`` or ``live`` from a public key's prefix (``pk_test_…``), or None."""
    if isinstance(key, str):
        for mode in _MODES:
            if key.startswith(f"pk_{mode}_"):
                return mode
    return None
