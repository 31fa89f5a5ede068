"""Settings: the ``paycore.toml`` file, the environment, and the gateways they configure.

A settings file::

    database_url = "postgresql://paycore:${PAYCORE_DB_PASSWORD}@db/paycore"
    webhook_base_url = "https://shop.example/paycore"

    [gateways.wooshpay]              # the table name is the plugin name ...
    secret_key = "${WOOSHPAY_SECRET_KEY}"

    [gateways.wooshpay_eu]           # ... unless `plugin` names another
    plugin = "wooshpay"
    secret_key = "${WOOSHPAY_EU_SECRET_KEY}"

    [web]                            # the webhook and return app (paycore.web)
    success_url = "https://shop.example/order/thanks"
    failure_url = "https://shop.example/cart?payment=failed"

    [checkout]
    capture = "sale"

- ``database_url`` defaults to ``sqlite:///paycore.db``; ``webhook_base_url`` is
  optional; every ``[gateways.<name>]`` key except ``plugin`` is that gateway's config,
  checked against its plugin's JSON Schema.
- ``[web]`` (`WebSettings`): where a customer back from a hosted page is sent
  (``success_url``, ``failure_url``, ``pending_url``: absolute http(s) URLs, each
  optional) and the largest webhook body accepted (``max_body_bytes``, 1 MiB).
- ``[checkout]`` (`CheckoutSettings`): whether a checkout authorizes (``capture =
  "authorize"``, captured later) or sells (``"sale"``), and how long gathering
  payment options may take (``options_timeout``, seconds).
- ``${NAME}`` in any string is replaced by the environment variable ``NAME``; write
  ``$${`` for a literal ``${``. Keep secrets in the environment, not in the file.
- The file is the one given to `load_settings`, else the one ``PAYCORE_CONFIG`` names,
  else ``paycore.toml`` in the working directory if there is one; with none, the
  defaults apply and no gateway is configured. ``PAYCORE_DATABASE_URL`` overrides
  ``database_url``.

Every problem is reported at once, in one `ConfigurationError`: malformed TOML (with
line and column), wrong types, unknown keys, unset variables, unknown plugins, and each
gateway's schema violations. Messages name keys and variables, never values.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from attrs import field, frozen

from paycore import plugins
from paycore.errors import ConfigurationError, PluginError
from paycore.gateways.base import Gateway
from paycore.gateways.scrub import sensitive_name
from paycore.transactions.model import _frozen_mapping

__all__ = [
    "CONFIG_ENV",
    "DATABASE_URL_ENV",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_SETTINGS_FILE",
    "CheckoutSettings",
    "GatewaySettings",
    "Settings",
    "WebSettings",
    "build_gateways",
    "load_settings",
    "redact_url",
]

DEFAULT_DATABASE_URL = "sqlite:///paycore.db"
DEFAULT_SETTINGS_FILE = "paycore.toml"
CONFIG_ENV = "PAYCORE_CONFIG"
DATABASE_URL_ENV = "PAYCORE_DATABASE_URL"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024

GatewayClassLookup = Callable[[str], type[Gateway]]

_TOP_LEVEL_KEYS = ("database_url", "webhook_base_url", "gateways", "web", "checkout", "celery")
# [celery]: where OMS tasks go and how they are retried (`paycore.oms.celery.CeleryConfig`).
_CELERY_TEXTS = ("broker_url", "result_backend", "queue", "key_prefix")
_CELERY_NUMBERS = ("visibility_timeout", "retry_backoff", "retry_backoff_max", "reconcile_every")
_CELERY_KEYS = (*_CELERY_TEXTS, *_CELERY_NUMBERS, "max_retries")
_WEB_URL_KEYS = ("success_url", "failure_url", "pending_url")
_WEB_KEYS = (*_WEB_URL_KEYS, "max_body_bytes")
_CHECKOUT_KEYS = ("capture", "options_timeout")
_CAPTURE_MODES = ("authorize", "sale")
_GATEWAY_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_PLUGIN_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_DATABASE_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://.*", re.DOTALL)
_QUOTED_CHARACTER = re.compile(r"(character) (?:'[^']*'|\"[^\"]*\")")
_QUERY_SEPARATOR = re.compile(r"([&;])")


def redact_url(url: str | None) -> str:
    """``url`` with any password replaced by ``***``, safe for reprs and messages.

    Passwords are looked for in the userinfo (``user:pass@host``) and in the query
    (``?password=…``, ``?sslpassword=…``: any parameter transcripts would redact).
    """
    if url is None:
        return "None"
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparseable URL>"
    if password:
        userinfo, _, host = parts.netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        url = urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    if not parts.query:
        return url
    # Rebuilt by hand: urlunsplit would rewrite URLs such as sqlite:///paycore.db.
    head, _, rest = url.partition("?")
    query, hash_sign, fragment = rest.partition("#")
    return f"{head}?{_redact_query(query)}{hash_sign}{fragment}"


def _redact_query(query: str) -> str:
    parts = _QUERY_SEPARATOR.split(query)  # parameters at even indices, separators between
    for index in range(0, len(parts), 2):
        name, equals, value = parts[index].partition("=")
        if equals and value and sensitive_name(name):
            parts[index] = f"{name}=***"
    return "".join(parts)


def _keys_only(config: Mapping[str, Any]) -> str:
    # Which values are secrets is the plugin's knowledge; a repr shows no value at all.
    return "{" + ", ".join(f"{key!r}: …" for key in config) + "}"


@frozen(kw_only=True)
class GatewaySettings:
    """One ``[gateways.<name>]`` table: the gateway's name, its plugin, its config.

    ``config`` holds the values with ``${…}`` already substituted, secrets included;
    its repr shows only the keys.
    """

    name: str
    plugin: str
    config: Mapping[str, Any] = field(factory=dict, converter=_frozen_mapping, repr=_keys_only)


@frozen(kw_only=True)
class WebSettings:
    """The ``[web]`` table: how `paycore.web` answers customers and providers.

    A customer back from a hosted page is sent to ``success_url`` once the checkout
    completed, to ``failure_url`` when it failed, and to ``pending_url`` (by default
    the success URL) while the provider has not said yet. Without such a URL, a short
    page says the outcome instead. ``max_body_bytes`` bounds a webhook's body: a
    larger one is refused before it is read.
    """

    success_url: str | None = None
    failure_url: str | None = None
    pending_url: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    @property
    def waiting_url(self) -> str | None:
        """Where a customer goes while the outcome is not known yet."""
        return self.pending_url or self.success_url


@frozen(kw_only=True)
class CheckoutSettings:
    """The ``[checkout]`` table.

    ``capture``: ``"authorize"`` reserves the money at checkout (captured later, on
    fulfilment) or ``"sale"`` takes it at once. ``options_timeout``: seconds the
    gateways have, together, to list their payment options for a cart.
    """

    capture: Literal["authorize", "sale"] = "authorize"
    options_timeout: float = 5.0


@frozen(kw_only=True)
class Settings:
    """paycore's settings. ``source`` is the file they were read from, if any."""

    database_url: str = field(default=DEFAULT_DATABASE_URL, repr=redact_url)
    webhook_base_url: str | None = None
    gateways: Mapping[str, GatewaySettings] = field(
        factory=dict, converter=_frozen_mapping, repr=lambda gateways: repr(dict(gateways))
    )
    web: WebSettings = field(factory=WebSettings)
    checkout: CheckoutSettings = field(factory=CheckoutSettings)
    # The [celery] table as given (checked for keys and types); the PAYCORE_CELERY_*
    # variables override it (`paycore.oms.celery.CeleryConfig.from_settings`).
    celery: Mapping[str, Any] = field(factory=dict, converter=_frozen_mapping)
    source: Path | None = None

    @property
    def subject(self) -> str:
        """How error messages name these settings."""
        return f"settings file {self.source}" if self.source else "settings"


# -- loading -------------------------------------------------------------------------


def load_settings(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] = os.environ,
    *,
    gateway_class: GatewayClassLookup | None = None,
) -> Settings:
    """Read the settings file (see the module docstring for which) and the environment.

    Each configured gateway's plugin is looked up (``gateway_class``, by default
    `paycore.plugins.gateway_class`) and its config validated against the plugin's
    schema. Raises one `ConfigurationError` listing every problem found.
    """
    lookup = gateway_class or plugins.gateway_class
    file, named_by = _settings_file(path, env)
    data = _read(file, named_by) if file is not None else {}
    problems = _Problems()

    data = problems.interpolate(data, env)
    for key in data:
        if key not in _TOP_LEVEL_KEYS:
            problems.add(_join("", key), f"unknown setting{_did_you_mean(key, _TOP_LEVEL_KEYS)}")

    database_url = _database_url(data.get("database_url", DEFAULT_DATABASE_URL), problems)
    if override := env.get(DATABASE_URL_ENV):
        database_url = _database_url(override, problems, where=DATABASE_URL_ENV)
    settings = Settings(
        database_url=database_url,
        webhook_base_url=_webhook_base_url(data.get("webhook_base_url"), problems),
        gateways=_gateways(data.get("gateways", {}), problems),
        web=_web(data.get("web", {}), problems),
        checkout=_checkout(data.get("checkout", {}), problems),
        celery=_celery(data.get("celery", {}), problems),
        source=file,
    )
    for gateway in settings.gateways.values():
        cls = problems.plugin(gateway, lookup)
        if cls is not None:
            problems.check_schema(gateway, cls)
    problems.raise_for(settings.subject)
    return settings


def build_gateways(
    settings: Settings, *, gateway_class: GatewayClassLookup | None = None
) -> dict[str, Gateway]:
    """Build every configured gateway, by name; one `ConfigurationError` lists all problems."""
    lookup = gateway_class or plugins.gateway_class
    problems = _Problems()
    gateways: dict[str, Gateway] = {}
    for name, gateway in settings.gateways.items():
        cls = problems.plugin(gateway, lookup)
        if cls is None:
            continue
        try:
            gateways[name] = cls.from_config(gateway.config, where=_gateway_where(name))
        except ConfigurationError as error:
            problems.extend(_qualified(error))
    problems.raise_for(settings.subject)
    return gateways


def _settings_file(
    path: str | os.PathLike[str] | None, env: Mapping[str, str]
) -> tuple[Path | None, str | None]:
    """The file to read, and what named it when it was not the caller."""
    if path is not None:
        return Path(path), None
    if named := env.get(CONFIG_ENV):
        return Path(named), CONFIG_ENV
    default = Path(DEFAULT_SETTINGS_FILE)
    return (default if default.is_file() else None), None


def _read(file: Path, named_by: str | None) -> dict[str, Any]:
    subject = f"settings file {file}"
    try:
        text = file.read_bytes().decode("utf-8")
    except FileNotFoundError:
        hint = f" (named by {named_by})" if named_by else ""
        raise ConfigurationError(subject, [f"the file does not exist{hint}"]) from None
    except OSError as error:
        raise ConfigurationError(subject, [f"cannot be read: {error.strerror}"]) from None
    except UnicodeDecodeError as error:
        raise ConfigurationError(
            subject, [f"is not UTF-8 text (invalid byte at offset {error.start})"]
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        # The parser quotes an offending character at most; drop even that.
        message = _QUOTED_CHARACTER.sub(r"\1", str(error))
        raise ConfigurationError(subject, [f"is not valid TOML: {message}"]) from None


def _database_url(value: Any, problems: _Problems, *, where: str = "database_url") -> str:
    if not isinstance(value, str):
        problems.add(where, f"must be a string, not {_toml_type(value)}")
    elif not _DATABASE_URL.fullmatch(value):
        problems.add(where, "must be a database URL such as sqlite:///paycore.db")
    else:
        return value
    return DEFAULT_DATABASE_URL


def _webhook_base_url(value: Any, problems: _Problems) -> str | None:
    url = _http_url(value, "webhook_base_url", problems, "https://shop.example/paycore")
    return None if url is None else url.rstrip("/")


def _gateways(value: Any, problems: _Problems) -> dict[str, GatewaySettings]:
    if not isinstance(value, dict):
        problems.add("gateways", f"must be a table of [gateways.<name>], not {_toml_type(value)}")
        return {}
    gateways: dict[str, GatewaySettings] = {}
    for name, table in value.items():
        where = _join("gateways", name)
        if not _GATEWAY_NAME.fullmatch(name):
            problems.add(
                where,
                "a gateway name is lowercase letters, digits, '_' and '-', starting with a "
                "letter or digit (it appears in webhook URLs)",
            )
            continue
        if not isinstance(table, dict):
            problems.add(where, f"must be a table of settings, not {_toml_type(table)}")
            continue
        config = dict(table)
        plugin = config.pop("plugin", name)
        if not isinstance(plugin, str) or not _PLUGIN_NAME.fullmatch(plugin):
            # Not echoed: a value that is no plugin name may be anything, a secret included.
            problems.add(
                f"{where}.plugin",
                "must be the name of a gateway plugin (lowercase letters, digits, '_', '-', '.')",
            )
            continue
        gateways[name] = GatewaySettings(name=name, plugin=plugin, config=config)
    return gateways


def _web(value: Any, problems: _Problems) -> WebSettings:
    table = _table(value, "web", _WEB_KEYS, problems)
    urls = {
        key: _merchant_url(table.get(key), _join("web", key), problems) for key in _WEB_URL_KEYS
    }
    limit = table.get("max_body_bytes", DEFAULT_MAX_BODY_BYTES)
    if type(limit) is not int or limit <= 0:
        # bool is an int in Python; true is not a size.
        problems.add("web.max_body_bytes", "must be a positive whole number of bytes")
        limit = DEFAULT_MAX_BODY_BYTES
    return WebSettings(**urls, max_body_bytes=limit)


def _checkout(value: Any, problems: _Problems) -> CheckoutSettings:
    table = _table(value, "checkout", _CHECKOUT_KEYS, problems)
    capture = table.get("capture", "authorize")
    if capture not in _CAPTURE_MODES:
        problems.add("checkout.capture", 'must be "authorize" or "sale"')
        capture = "authorize"
    timeout = table.get("options_timeout", 5.0)
    if type(timeout) not in (int, float) or not (timeout > 0 and math.isfinite(timeout)):
        problems.add("checkout.options_timeout", "must be a positive number of seconds")
        timeout = 5.0
    return CheckoutSettings(capture=capture, options_timeout=float(timeout))


def _celery(value: Any, problems: _Problems) -> dict[str, Any]:
    table = _table(value, "celery", _CELERY_KEYS, problems)
    checked: dict[str, Any] = {}
    for key, item in table.items():
        where = _join("celery", key)
        if key in _CELERY_TEXTS:
            if not isinstance(item, str) or not item:
                problems.add(where, f"must be a non-empty string, not {_toml_type(item)}")
                continue
        elif key == "max_retries":
            if type(item) is not int or item < 0:
                problems.add(where, "must be a whole number, 0 or more")
                continue
        elif key in _CELERY_NUMBERS:
            if type(item) not in (int, float) or not (item > 0 and math.isfinite(item)):
                problems.add(where, "must be a positive number of seconds")
                continue
            item = float(item)
        else:
            continue  # unknown: reported by _table
        checked[key] = item
    return checked


def _table(value: Any, where: str, known: tuple[str, ...], problems: _Problems) -> dict[str, Any]:
    """The settings table ``where``, its unknown keys reported; empty when it is no table."""
    if not isinstance(value, dict):
        problems.add(where, f"must be a table of settings, not {_toml_type(value)}")
        return {}
    for key in value:
        if key not in known:
            problems.add(_join(where, key), f"unknown setting{_did_you_mean(key, known)}")
    return value


def _merchant_url(value: Any, where: str, problems: _Problems) -> str | None:
    """An absolute http(s) URL customers are sent to, or None when not set."""
    return _http_url(value, where, problems, "https://shop.example/thanks")


def _http_url(value: Any, where: str, problems: _Problems, example: str) -> str | None:
    """An absolute http(s) URL, or None (not set, or a problem noted)."""
    if value is None:
        return None
    if not isinstance(value, str):
        problems.add(where, f"must be a string, not {_toml_type(value)}")
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        problems.add(where, f"must be an absolute http(s) URL such as {example}")
        return None
    # No whitespace or control characters: customers are redirected to it (a header).
    if not value.isprintable() or any(c.isspace() for c in value):
        problems.add(where, "must not contain spaces or control characters")
        return None
    return value


# -- problems --------------------------------------------------------------------------


class _Problems:
    """Collects every problem, then raises them together."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.cause: BaseException | None = None
        # Keys whose ``${…}`` could not be resolved; schema checks of them would mislead.
        self.unresolved: set[str] = set()

    def add(self, where: str, problem: str) -> None:
        self.lines.append(f"{where}: {problem}")

    def extend(self, lines: list[str]) -> None:
        self.lines.extend(lines)

    def raise_for(self, subject: str) -> None:
        if self.lines:
            # Sorted by key; a schema may report one problem more than once.
            raise ConfigurationError(subject, sorted(set(self.lines))) from self.cause

    # ``${NAME}`` interpolation -------------------------------------------------------

    def interpolate(self, data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
        resolved: dict[str, Any] = self._resolve(data, "", env)
        return resolved

    def _resolve(self, value: Any, where: str, env: Mapping[str, str]) -> Any:
        if isinstance(value, str):
            return self._substitute(value, where, env)
        if isinstance(value, dict):
            return {key: self._resolve(item, _join(where, key), env) for key, item in value.items()}
        if isinstance(value, list):
            return [self._resolve(item, f"{where}[{i}]", env) for i, item in enumerate(value)]
        return value

    def _substitute(self, text: str, where: str, env: Mapping[str, str]) -> str:
        def replace(match: re.Match[str]) -> str:
            reference, name = match.group(0), match.group(1)
            if reference == "$${":
                return "${"
            if name is None:
                problem = "has '${' without a closing '}' (write '$${' for a literal '${')"
            elif not _ENV_NAME.fullmatch(name):
                problem = "has a '${…}' that does not hold an environment variable name"
            elif name not in env:
                problem = f"environment variable {name} is not set"
            else:
                return env[name]
            self.add(where, problem)
            self.unresolved.add(where)
            return reference

        return _REFERENCE.sub(replace, text)

    # gateways ------------------------------------------------------------------------

    def plugin(self, gateway: GatewaySettings, lookup: GatewayClassLookup) -> type[Gateway] | None:
        try:
            return lookup(gateway.plugin)
        except PluginError as error:
            where = _gateway_where(gateway.name)
            if gateway.plugin != gateway.name:
                self.add(f"{where}.plugin", str(error))
            elif str(error).startswith("no gateway plugin named"):
                self.add(
                    where, f"{error} (the table name is the plugin name unless `plugin` is set)"
                )
            else:
                self.add(where, str(error))
            self.cause = self.cause or error
            return None

    def check_schema(self, gateway: GatewaySettings, cls: type[Gateway]) -> None:
        where = _gateway_where(gateway.name)
        try:
            cls.validate_config(gateway.config, where=where)
        except ConfigurationError as error:
            self.extend([line for line in _qualified(error) if not self._is_unresolved(line)])

    def _is_unresolved(self, line: str) -> bool:
        return any(
            line.startswith(key) and line[len(key) : len(key) + 1] in (":", ".", "[")
            for key in self.unresolved
        )


def _qualified(error: ConfigurationError) -> list[str]:
    """A gateway's schema problems (``api_key: is required``) as settings keys.

    ``error.subject`` is the gateway's table (``gateways.shop``); each problem becomes
    ``gateways.shop.api_key: is required``.
    """
    where = error.subject
    lines: list[str] = []
    for problem in error.problems:
        for part in problem.split("; "):
            head, sep, rest = part.partition(": ")
            if head == "(top level)":
                lines.append(f"{where}: {rest}")
            elif sep and head and " " not in head:
                lines.append(f"{where}.{part}")
            elif lines:
                lines[-1] += f"; {part}"
            else:
                lines.append(f"{where}: {part}")
    return lines


def _gateway_where(name: str) -> str:
    return _join("gateways", name)


def _join(where: str, key: str) -> str:
    part = key if _BARE_KEY.fullmatch(key) else '"' + key.replace('"', '\\"') + '"'
    return f"{where}.{part}" if where else part


def _did_you_mean(key: str, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    suffix = f"; did you mean {close[0]!r}?" if close else ""
    return f" (known: {', '.join(known)}){suffix}"


def _toml_type(value: Any) -> str:
    names = {
        bool: "a boolean",
        int: "an integer",
        float: "a float",
        str: "a string",
        list: "an array",
        dict: "a table",
    }
    return names.get(type(value), type(value).__name__)
