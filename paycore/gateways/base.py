"""The plugin contract: plugins translate, the core does the I/O (DESIGN §3).

A gateway plugin subclasses `Gateway`. Each operation is an *exchange*: a generator
that yields `httpx.Request` objects, receives the `httpx.Response` for each, and
returns its result::

    def capture(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        response = yield self.build_request(
            "POST", f"{self.config.base_url}/payments/{request.gateway_reference}/captures",
            json={"amount": request.amount.minor_units},
            headers={"Idempotency-Key": request.idempotency_key},
            idempotent=True,  # the provider deduplicates by that key
        )
        return _result_from(response)

The driver (`paycore.gateways.driver`) runs exchanges over sync or async httpx,
owns timeouts, retries, error mapping and scrubbed transcripts. A plugin never
opens a connection, so it is unit-tested by feeding responses into its generators.

Operations a gateway does not override raise `UnsupportedOperation` when called; the
ones it offers are declared in `Capabilities`, checked against the class when it is
defined. A gateway that keeps customers' payment methods (a vault) declares and
implements ``save_method`` and ``delete_method`` together; one without says so by
declaring neither. A gateway's config is validated against its JSON Schema before the gateway
is built (`Gateway.from_config`); every problem is reported at once.
"""

from __future__ import annotations

import enum
from collections.abc import Generator, Iterable, Mapping
from datetime import timedelta
from typing import Any, ClassVar, Self, TypeAlias, TypeVar

import attrs
import httpx
from attrs import field, frozen

from paycore.errors import (
    ConfigurationError,
    GatewayProtocolError,
    PluginError,
    UnsupportedOperation,
)
from paycore.gateways.json_codec import decode_json, encode_json
from paycore.gateways.schema import (
    DEFAULT_TIMEOUTS,
    config_problems,
    full_schema,
    load_schema,
)
from paycore.money import Money
from paycore.transactions.model import (
    CheckoutKind,
    CheckoutSession,
    GatewayResult,
    PaymentMethodOption,
    PaymentRequest,
    SavedMethod,
    SaveMethodRequest,
    WebhookHandling,
    WebhookRequest,
)

__all__ = [
    "Capabilities",
    "Exchange",
    "Gateway",
    "GatewayConfig",
    "Operation",
    "RequestPolicy",
    "Timeouts",
    "load_schema",
    "read_json",
    "secret",
]

T = TypeVar("T")

Exchange: TypeAlias = Generator[httpx.Request, httpx.Response, T]
"""An operation in progress: yields requests, receives responses, returns a result."""

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Operation(enum.StrEnum):
    """The operations of the contract, in their canonical order."""

    PAYMENT_METHODS = "payment_methods"
    CREATE_CHECKOUT = "create_checkout"
    AUTHORIZE = "authorize"
    SALE = "sale"
    CAPTURE = "capture"
    VOID = "void"
    REFUND = "refund"
    FETCH_STATUS = "fetch_status"
    HANDLE_WEBHOOK = "handle_webhook"
    SAVE_METHOD = "save_method"  # the vault: keep a customer's payment method
    DELETE_METHOD = "delete_method"


VAULT = frozenset({Operation.SAVE_METHOD, Operation.DELETE_METHOD})


def _operations(operations: Iterable[Operation | str]) -> frozenset[Operation]:
    return frozenset(map(Operation, operations))


def _currencies(currencies: Iterable[str] | None) -> frozenset[str] | None:
    return None if currencies is None else frozenset(c.upper() for c in currencies)


def _checkout_kinds(kinds: Iterable[CheckoutKind | str]) -> frozenset[CheckoutKind]:
    return frozenset(map(CheckoutKind, kinds))


@frozen(kw_only=True)
class Capabilities:
    """What a gateway offers, readable without calling the provider."""

    operations: frozenset[Operation] = field(converter=_operations)
    partial_capture: bool = False
    multiple_capture: bool = False
    partial_refund: bool = False
    multiple_refund: bool = False
    # The provider deduplicates a replayed mutation carrying the same key, so a
    # mutation whose outcome is unknown may be sent again within the window.
    idempotency_keys: bool = False
    idempotency_window: timedelta | None = None
    currencies: frozenset[str] | None = field(default=None, converter=_currencies)  # None: any
    webhook_signing: str | None = None  # e.g. "hmac-sha256"; None when unsigned
    authorization_window: timedelta = timedelta(days=7)
    # What create_checkout can make, when it is among the operations.
    checkout_kinds: frozenset[CheckoutKind] = field(
        default=frozenset({CheckoutKind.HOSTED_PAGE}), converter=_checkout_kinds
    )

    def __attrs_post_init__(self) -> None:
        vault = self.operations & VAULT
        if vault and vault != VAULT:
            raise PluginError("a vault declares save_method and delete_method together")

    def supports(self, operation: Operation | str) -> bool:
        return Operation(operation) in self.operations

    @property
    def vault(self) -> bool:
        """Whether the gateway keeps customers' payment methods for later payments."""
        return Operation.SAVE_METHOD in self.operations

    def supports_checkout(self, kind: CheckoutKind | str) -> bool:
        return (
            self.supports(Operation.CREATE_CHECKOUT) and CheckoutKind(kind) in self.checkout_kinds
        )

    def supports_currency(self, currency: str) -> bool:
        return self.currencies is None or currency.upper() in self.currencies

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready description, operations in canonical order."""
        return {
            "operations": [op.value for op in Operation if op in self.operations],
            "partial_capture": self.partial_capture,
            "multiple_capture": self.multiple_capture,
            "partial_refund": self.partial_refund,
            "multiple_refund": self.multiple_refund,
            "idempotency_keys": self.idempotency_keys,
            "idempotency_window_seconds": (
                int(self.idempotency_window.total_seconds()) if self.idempotency_window else None
            ),
            "currencies": sorted(self.currencies) if self.currencies is not None else "any",
            "webhook_signing": self.webhook_signing,
            "authorization_window_seconds": int(self.authorization_window.total_seconds()),
            "checkout_kinds": (
                [kind.value for kind in CheckoutKind if kind in self.checkout_kinds]
                if self.supports(Operation.CREATE_CHECKOUT)
                else []
            ),
            "vault": self.vault,
        }


@frozen(kw_only=True)
class Timeouts:
    """Seconds: to connect, to wait for each read, and for a whole exchange with retries."""

    connect: float = DEFAULT_TIMEOUTS["connect"]
    read: float = DEFAULT_TIMEOUTS["read"]
    total: float = DEFAULT_TIMEOUTS["total"]

    def __attrs_post_init__(self) -> None:
        # A mutation is only sent with its whole read timeout ahead of it.
        if self.total < self.read:
            raise ConfigurationError(
                "timeouts", [f"total: must be at least read ({self.read:g} s)"]
            )


def secret(**kwargs: Any) -> Any:
    """An attrs field holding a secret: left out of ``repr`` and scrubbed from transcripts."""
    metadata = {**kwargs.pop("metadata", {}), "secret": True}
    return field(repr=False, metadata=metadata, **kwargs)


def _timeouts(value: Timeouts | Mapping[str, float] | None) -> Timeouts:
    if isinstance(value, Timeouts):
        return value
    return Timeouts(**(value or {}))


@frozen(kw_only=True)
class GatewayConfig:
    """Base of every plugin's config class; subclasses add their own fields.

    ``timeouts`` is common to all gateways and added to every plugin's schema.
    Mark secret fields with `secret()`.
    """

    timeouts: Timeouts = field(default=None, converter=_timeouts)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> GatewayConfig:
        """Build from a mapping already validated against the plugin's schema."""
        return cls(**mapping)

    def secret_values(self) -> tuple[str, ...]:
        """The values of fields marked `secret()`, for scrubbing (each item of a list)."""
        values: list[str] = []
        for a in attrs.fields(type(self)):
            value = getattr(self, a.name)
            if not a.metadata.get("secret") or not value:
                continue
            items = value if isinstance(value, list | tuple | frozenset | set) else (value,)
            values.extend(str(item) for item in items if item)
        return tuple(values)


@frozen(kw_only=True)
class RequestPolicy:
    """How the driver may treat one request of an exchange.

    ``mutation``: it may change state at the provider. ``idempotent``: the provider
    deduplicates replays of it (an idempotency key, a unique reference), so it may
    be resent when its outcome is unknown.
    """

    mutation: bool
    idempotent: bool

    EXTENSION: ClassVar[str] = "paycore.policy"

    @classmethod
    def of(cls, request: httpx.Request) -> RequestPolicy:
        policy = request.extensions.get(cls.EXTENSION)
        if isinstance(policy, RequestPolicy):
            return policy
        safe = request.method in SAFE_METHODS
        return cls(mutation=not safe, idempotent=safe)


def read_json(response: httpx.Response, gateway: str) -> Any:
    """The response body as JSON (non-integer numbers as exact `Decimal`s), or
    `GatewayProtocolError` saying why it is not."""
    try:
        return decode_json(response.content)
    except (ValueError, UnicodeDecodeError):
        raise GatewayProtocolError(
            f"the provider answered with a body that is not JSON "
            f"({response.headers.get('content-type', 'no content type')}, "
            f"{len(response.content)} bytes)",
            gateway=gateway,
            http_status=response.status_code,
        ) from None


class Gateway:
    """Base class of every gateway plugin.

    Subclasses set ``name`` (equal to their entry-point name), ``display_name``,
    ``capabilities``, ``config_type`` (a `GatewayConfig` subclass) and
    ``config_schema`` (a JSON Schema, usually `load_schema(__package__, ...)`), then
    override the operations they declare, keeping the canonical order:
    `payment_methods`, `create_checkout`, `authorize`, `sale`, `capture`, `void`,
    `refund`, `fetch_status`, `handle_webhook`, then the vault's `save_method` and
    `delete_method`.

    Build one with `from_config`, which validates the config first.
    """

    name: ClassVar[str]
    display_name: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    config_type: ClassVar[type[GatewayConfig]] = GatewayConfig
    config_schema: ClassVar[Mapping[str, Any]] = {"type": "object"}

    def __init__(self, config: GatewayConfig) -> None:
        if not isinstance(config, self.config_type):
            raise TypeError(f"{type(self).__name__} needs a {self.config_type.__name__}")
        self.config = config

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = cls.__dict__.get("capabilities")
        if declared is None:
            return
        overridden = {op for op in Operation if getattr(cls, op.value) is not getattr(Gateway, op)}
        if missing := sorted(declared.operations - overridden):
            raise TypeError(f"{cls.__name__} declares {missing} but does not implement them")
        if undeclared := sorted(overridden - declared.operations):
            raise TypeError(f"{cls.__name__} implements {undeclared} but does not declare them")

    # -- construction ---------------------------------------------------------

    @classmethod
    def full_config_schema(cls) -> Mapping[str, Any]:
        """The plugin's schema with the properties common to every gateway added."""
        return full_schema(cls.config_schema)

    @classmethod
    def validate_config(cls, mapping: Mapping[str, Any], *, where: str | None = None) -> None:
        """Raise `ConfigurationError` listing every problem `config_problems_in` finds.

        Messages name the key and the rule, never the value (it may be a secret).
        """
        where = where or f"gateway {cls.name!r} config"
        if not isinstance(mapping, Mapping):
            raise ConfigurationError(
                where, [f"must be a table of settings, not {type(mapping).__name__}"]
            )
        problems = cls.config_problems_in(mapping)
        if problems:
            raise ConfigurationError(where, problems)

    @classmethod
    def config_problems_in(cls, mapping: Mapping[str, Any]) -> list[str]:
        """Every way ``mapping`` breaks the schema, one line each (``"key: rule"``).

        A plugin with rules across keys (a live key needs https, say) overrides this
        and adds its own lines to the schema's.
        """
        return config_problems(cls.config_schema, mapping)

    @classmethod
    def from_config(cls, mapping: Mapping[str, Any], *, where: str | None = None) -> Self:
        """Validate ``mapping`` against the schema, then build the gateway."""
        cls.validate_config(mapping, where=where)
        return cls(cls.config_type.from_mapping(mapping))

    # -- what the driver needs --------------------------------------------------

    @property
    def timeouts(self) -> Timeouts:
        return self.config.timeouts

    def secret_values(self) -> tuple[str, ...]:
        """Literal secrets the driver scrubs from transcripts."""
        return self.config.secret_values()

    def build_request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        mutation: bool | None = None,
        idempotent: bool | None = None,
    ) -> httpx.Request:
        """An `httpx.Request` tagged with its `RequestPolicy`.

        ``json`` is encoded exactly (`Decimal` as a JSON number; floats refused).
        ``mutation`` says whether the request may change state at the provider; it
        defaults to false for GET, HEAD and OPTIONS and true otherwise (say so for an
        RPC-style provider whose status checks are POSTs). ``idempotent`` defaults to
        true for reads and false for mutations; pass true only for a mutation the
        provider deduplicates (a key or a unique reference derived from
        `PaymentRequest.idempotency_key`), which the capabilities must declare.
        """
        method = method.upper()
        if mutation is None:
            mutation = method not in SAFE_METHODS
        if idempotent is None:
            idempotent = not mutation
        elif idempotent and mutation and not self.capabilities.idempotency_keys:
            raise PluginError(
                f"gateway {self.name!r} marks a mutation idempotent but its capabilities "
                "do not declare idempotency_keys"
            )
        if json is not None:
            content = encode_json(json)
            headers = {"Content-Type": "application/json", **(headers or {})}
        return httpx.Request(
            method,
            url,
            content=content,
            params=params,
            headers=headers,
            extensions={
                RequestPolicy.EXTENSION: RequestPolicy(mutation=mutation, idempotent=idempotent)
            },
        )

    def unsupported(self, operation: Operation) -> UnsupportedOperation:
        return UnsupportedOperation(self.name, operation.value)

    def unsupported_checkout(self, kind: CheckoutKind) -> UnsupportedOperation:
        return UnsupportedOperation(self.name, f"create_checkout ({kind.value})")

    # -- operations (override the ones in `capabilities`) -----------------------

    def payment_methods(
        self, amount: Money, *, country: str | None = None
    ) -> Exchange[tuple[PaymentMethodOption, ...]]:
        """The methods offered for ``amount`` (its currency) and ``country``."""
        raise self.unsupported(Operation.PAYMENT_METHODS)

    def create_checkout(
        self, request: PaymentRequest, *, kind: CheckoutKind = CheckoutKind.HOSTED_PAGE
    ) -> Exchange[CheckoutSession]:
        """A hosted page, payment link or widget where the customer pays ``request``.

        ``request.transaction_type`` says whether paying authorizes or captures too.
        Raise `unsupported_checkout` for a ``kind`` not in ``capabilities.checkout_kinds``.
        """
        raise self.unsupported(Operation.CREATE_CHECKOUT)

    def authorize(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        """Reserve ``request.amount`` without taking it."""
        raise self.unsupported(Operation.AUTHORIZE)

    def sale(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        """Authorize and capture in one step."""
        raise self.unsupported(Operation.SALE)

    def capture(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        """Take ``request.amount`` of an authorization (``request.final``: release the rest)."""
        raise self.unsupported(Operation.CAPTURE)

    def void(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        """Release an authorization (what stays of it when partly captured)."""
        raise self.unsupported(Operation.VOID)

    def refund(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        """Give back ``request.amount`` of what was captured."""
        raise self.unsupported(Operation.REFUND)

    def fetch_status(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        """Ask the provider where the transaction ``request`` describes stands.

        The result's outcome is that transaction's: approved if it happened,
        declined if it definitely did not, processing if the provider has not decided.
        """
        raise self.unsupported(Operation.FETCH_STATUS)

    def handle_webhook(self, delivery: WebhookRequest) -> Exchange[WebhookHandling]:
        """Verify a delivery on its raw bytes and normalise it into events.

        Raise `WebhookSignatureError` when verification fails.
        """
        raise self.unsupported(Operation.HANDLE_WEBHOOK)

    def save_method(self, request: SaveMethodRequest) -> Exchange[SavedMethod]:
        """Keep ``request.payment_method`` for the customer; return it, masked."""
        raise self.unsupported(Operation.SAVE_METHOD)

    def delete_method(self, method: SavedMethod) -> Exchange[None]:
        """Forget a saved method at the provider: it can no longer be charged."""
        raise self.unsupported(Operation.DELETE_METHOD)
