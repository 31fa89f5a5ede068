"""The vocabulary shared by the core and every plugin (DESIGN §2).

Statuses and types are `enum.StrEnum` so they store and print as their values.
Value objects are frozen attrs classes: change them with `attrs.evolve`.

- `PaymentRequest` is what the core hands a plugin's operation.
- `GatewayResult` is what a plugin's operation hands back: approved, processing,
  action_required (with a `NextAction`) or declined (with a `DeclineReason`).
  A decline is a result, never an exception.
- `GatewayEvent` is a verified, normalised webhook event; `WebhookHandling` pairs the
  events of one delivery with the exact reply the provider expects.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeVar

from attrs import Factory, field, frozen
from attrs.validators import instance_of

from paycore.errors import InvalidAmount, InvalidRequest
from paycore.gateways.scrub import Scrubber
from paycore.money import Money

__all__ = [
    "CheckoutKind",
    "CheckoutSession",
    "Customer",
    "DeclineReason",
    "GatewayEvent",
    "GatewayResult",
    "NextAction",
    "NextActionKind",
    "Outcome",
    "PaymentCheck",
    "PaymentMethod",
    "PaymentMethodOption",
    "PaymentRequest",
    "PaymentStatus",
    "SaveMethodRequest",
    "SavedMethod",
    "TransactionStatus",
    "TransactionType",
    "WebhookHandling",
    "WebhookReply",
    "WebhookRequest",
]


class TransactionType(enum.StrEnum):
    """One kind of interaction with a gateway."""

    AUTHORIZE = "authorize"
    SALE = "sale"  # authorize and capture in one step
    CAPTURE = "capture"
    VOID = "void"  # reverse an authorization
    REFUND = "refund"
    FETCH_STATUS = "fetch_status"


class TransactionStatus(enum.StrEnum):
    """Where one transaction stands."""

    PENDING = "pending"  # recorded, being sent
    PROCESSING = "processing"  # accepted by the gateway; the final answer comes by webhook
    REQUIRES_ACTION = "requires_action"  # the customer must act (redirect, 3DS)
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    FAILED = "failed"  # definitely not done
    UNKNOWN = "unknown"  # sent; outcome unknown until reconciled

    @property
    def is_final(self) -> bool:
        return self in _FINAL_TRANSACTION_STATUSES


_FINAL_TRANSACTION_STATUSES = frozenset(
    {TransactionStatus.SUCCEEDED, TransactionStatus.DECLINED, TransactionStatus.FAILED}
)


class PaymentStatus(enum.StrEnum):
    """Where a payment stands (see `paycore.transactions.states` for the transitions)."""

    NEW = "new"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"  # the gateway accepted it; the final answer comes later
    AUTHORIZED = "authorized"
    PARTIALLY_CAPTURED = "partially_captured"
    CAPTURED = "captured"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    VOIDED = "voided"
    FAILED = "failed"
    EXPIRED = "expired"


class Outcome(enum.StrEnum):
    """What a gateway said about an operation."""

    APPROVED = "approved"
    PROCESSING = "processing"  # accepted; the final answer comes later (webhook or status)
    ACTION_REQUIRED = "action_required"  # see `GatewayResult.next_action`
    DECLINED = "declined"  # see `GatewayResult.decline_reason`


class DeclineReason(enum.StrEnum):
    """Why a gateway declined, normalised across providers (a closed list).

    The provider's own code travels beside it in `GatewayResult.decline_code`.
    """

    CARD_DECLINED = "card_declined"  # generic, or the issuer gave no reason
    INSUFFICIENT_FUNDS = "insufficient_funds"
    EXPIRED_CARD = "expired_card"
    INCORRECT_CVC = "incorrect_cvc"
    INCORRECT_NUMBER = "incorrect_number"
    LOST_OR_STOLEN = "lost_or_stolen"
    FRAUD_SUSPECTED = "fraud_suspected"
    LIMIT_EXCEEDED = "limit_exceeded"
    AUTHENTICATION_FAILED = "authentication_failed"  # 3DS or similar not passed
    CURRENCY_NOT_SUPPORTED = "currency_not_supported"
    METHOD_NOT_SUPPORTED = "method_not_supported"
    AMOUNT_INVALID = "amount_invalid"  # too small, too large, over what remains
    NOT_PERMITTED = "not_permitted"  # the provider's state forbids it (already captured …)
    AUTHORIZATION_EXPIRED = "authorization_expired"
    EXPIRED = "expired"  # the customer did not complete in time
    CANCELED = "canceled"  # the customer or merchant canceled
    INVALID_REQUEST = "invalid_request"  # the provider rejected the request as malformed
    PROCESSING_ERROR = "processing_error"  # the provider failed definitively
    NOT_FOUND = "not_found"  # fetch_status: the provider has no record of the transaction
    OTHER = "other"


class NextActionKind(enum.StrEnum):
    REDIRECT = "redirect"  # send the customer's browser to `url`
    WIDGET = "widget"  # render the provider's widget with `parameters`


class CheckoutKind(enum.StrEnum):
    """What `create_checkout` makes for the customer (a gateway declares which it offers)."""

    HOSTED_PAGE = "hosted_page"  # the provider's page for this payment; redirect to it now
    PAYMENT_LINK = "payment_link"  # a shareable URL (e-mail, chat) opening a payment page
    WIDGET = "widget"  # parameters for the provider's widget, embedded in the merchant's page


E = TypeVar("E", bound=enum.StrEnum)


_MASK_CARDS = Scrubber(())


def _member(kind: type[E], value: Any, name: str) -> E:
    try:
        return kind(value)
    except ValueError:
        pass
    # Raised outside the handler, so the enum's own error (quoting the value whole) is
    # not its context; quoted masked: a value in the wrong field may be a card number.
    allowed = ", ".join(member.value for member in kind)
    got = _MASK_CARDS.text(str(value)[:64])[:32]
    raise InvalidRequest(f"{name} must be one of {allowed}; got {got!r}")


def _transaction_type(value: TransactionType | str) -> TransactionType:
    return _member(TransactionType, value, "transaction_type")


def _outcome(value: Outcome | str) -> Outcome:
    return _member(Outcome, value, "outcome")


def _decline_reason(value: DeclineReason | str | None) -> DeclineReason | None:
    return None if value is None else _member(DeclineReason, value, "decline_reason")


def _aware(_: object, attribute: Any, value: Any) -> None:
    if value is not None and value.utcoffset() is None:
        raise InvalidRequest(f"{attribute.name} must be timezone-aware (e.g. datetime.now(UTC))")


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


def _lower_keys(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType({key.lower(): item for key, item in value.items()})


@frozen(kw_only=True)
class NextAction:
    """What the customer must do next: follow a redirect or complete a widget.

    For a redirect, ``method`` is GET or POST; a POST redirect submits
    ``parameters`` as a form. For a widget, ``url`` is the script to load and
    ``parameters`` its settings.
    """

    kind: NextActionKind
    url: str
    method: str = "GET"
    parameters: Mapping[str, Any] = field(default=None, converter=_frozen_mapping)
    expires_at: datetime | None = field(default=None, validator=_aware)

    @classmethod
    def redirect(cls, url: str, *, expires_at: datetime | None = None) -> NextAction:
        return cls(kind=NextActionKind.REDIRECT, url=url, expires_at=expires_at)


@frozen(kw_only=True)
class Customer:
    """Who pays, as far as the gateway needs to know."""

    reference: str | None = None  # the merchant's customer id
    gateway_customer_id: str | None = None  # the provider's customer id (vaults)
    email: str | None = None
    name: str | None = None
    country: str | None = None  # ISO 3166-1 alpha-2
    ip_address: str | None = None
    locale: str | None = None


_MAX_METHOD_FIELDS = 50


def _method_fields(value: Mapping[str, str] | None) -> Mapping[str, str]:
    fields = dict(value or {})
    if len(fields) > _MAX_METHOD_FIELDS:
        raise InvalidRequest(f"a payment method has at most {_MAX_METHOD_FIELDS} fields")
    for key, item in fields.items():
        if not (isinstance(key, str) and 0 < len(key) <= 64):
            raise InvalidRequest("a payment method's field names are strings of 1 to 64 characters")
        if not (isinstance(item, str) and len(item) <= 1024):
            raise InvalidRequest(
                f"payment method field {key!r} must be a string of at most 1024 characters"
            )
    return MappingProxyType(fields)


@frozen(kw_only=True)
class PaymentMethod:
    """How the customer pays: a method type and, for saved or tokenised methods, a token.

    Card numbers never enter paycore: a card is a provider token or a hosted page.
    """

    type: str  # "card", "bank_transfer", … (the gateway's `payment_methods` names them)
    token: str | None = field(default=None, repr=False)
    # What the frontend collected for the method: the `PaymentMethodOption.required_fields`
    # (a phone number, a wallet account …). Never card data: cards go to hosted pages.
    fields: Mapping[str, str] = field(default=None, converter=_method_fields, repr=False)
    save: bool = False  # ask the gateway to keep the method for later (vaults)
    # The customer is not there to act (a merchant-initiated charge of a saved method):
    # the gateway must not ask for a redirect or 3-D Secure, and declines instead.
    off_session: bool = False


_LAST4 = re.compile(r"[0-9]{4}")


def _last4(_: object, __: object, value: str | None) -> None:
    # Masked display data only: four digits, never more of a card number.
    if value is not None and not (isinstance(value, str) and _LAST4.fullmatch(value)):
        raise InvalidRequest("last4 must be exactly four digits")


@frozen(kw_only=True)
class SavedMethod:
    """A payment method a gateway keeps for a customer (its vault), as paycore may store it.

    ``token`` is the provider's id of the method (``pm_…``), ``customer_reference`` its
    id of the customer (``cus_…``). Display data is masked: brand, last four digits,
    expiry. Pay with it through ``PaymentMethod(type, token=…, off_session=…)`` and a
    `Customer` whose ``gateway_customer_id`` is ``customer_reference``.
    """

    gateway: str
    token: str
    customer_reference: str
    type: str
    brand: str | None = None
    last4: str | None = field(default=None, validator=_last4)
    exp_month: int | None = None
    exp_year: int | None = None

    def as_payment_method(self, *, off_session: bool = False) -> PaymentMethod:
        """The `PaymentMethod` that pays with this saved method."""
        return PaymentMethod(type=self.type, token=self.token, off_session=off_session)


@frozen(kw_only=True)
class PaymentMethodOption:
    """A method a gateway offers for an amount, and what the frontend must collect."""

    gateway: str
    type: str
    display_name: str
    required_fields: tuple[str, ...] = ()
    min_amount: Money | None = None
    max_amount: Money | None = None


def _positive(_: object, __: object, value: Money) -> None:
    if not isinstance(value, Money):
        raise InvalidAmount(f"amount must be Money, not {type(value).__name__}")
    if not value.is_positive():
        raise InvalidAmount(f"amount must be positive, got {value}")


_ID = re.compile(r"[!-~]{1,255}")


def _identifier(_: object, attribute: Any, value: str) -> None:
    # Ids travel in headers and URLs (idempotency keys, references): visible ASCII only.
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InvalidRequest(
            f"{attribute.name} must be 1 to 255 visible ASCII characters (no spaces)"
        )


@frozen(kw_only=True)
class PaymentRequest:
    """What the core hands a plugin's operation.

    ``transaction_id`` is paycore's id of the transaction being carried out (for
    ``fetch_status``: of the transaction being asked about, whose type is
    ``transaction_type``). Plugins derive the provider-side idempotency key from it:
    use ``idempotency_key``. ``gateway_reference`` is the provider's id of the payment
    (absent before the first call); ``transaction_reference`` the provider's id of this
    transaction when it has one of its own (a refund id, say).
    """

    transaction_id: str = field(validator=_identifier)
    transaction_type: TransactionType = field(converter=_transaction_type)
    payment_id: str = field(validator=_identifier)
    amount: Money = field(validator=_positive)
    gateway_reference: str | None = None
    transaction_reference: str | None = None
    order_reference: str | None = None  # the owner: checkout id, then order id
    payment_method: PaymentMethod | None = None
    customer: Customer | None = None
    description: str | None = None
    return_url: str | None = None  # where a hosted page sends the customer back
    cancel_url: str | None = None
    notification_url: str | None = None  # where the provider sends webhooks/callbacks
    final: bool = False  # capture: release what stays uncaptured
    metadata: Mapping[str, str] = field(default=None, converter=_frozen_mapping)

    @property
    def idempotency_key(self) -> str:
        """The key a plugin sends to the provider for this transaction."""
        return self.transaction_id


@frozen(kw_only=True)
class GatewayResult:
    """What a plugin's operation hands back.

    ``amount`` is what the gateway processed (may be less than asked for a partial
    approval). ``provider_status`` keeps the provider's raw status for diagnostics.
    """

    outcome: Outcome = field(converter=_outcome)
    gateway_reference: str | None = None
    transaction_reference: str | None = None
    amount: Money | None = None
    decline_reason: DeclineReason | None = field(default=None, converter=_decline_reason)
    decline_code: str | None = None
    message: str | None = None
    next_action: NextAction | None = None
    provider_status: str | None = None
    authorization_expires_at: datetime | None = field(default=None, validator=_aware)
    saved_method: SavedMethod | None = None  # kept by the gateway (``PaymentMethod.save``)

    def __attrs_post_init__(self) -> None:
        if self.outcome is Outcome.DECLINED and self.decline_reason is None:
            raise InvalidRequest("a declined GatewayResult needs a decline_reason")
        if self.outcome is not Outcome.DECLINED and self.decline_reason is not None:
            raise InvalidRequest("only a declined GatewayResult carries a decline_reason")
        if self.outcome is Outcome.ACTION_REQUIRED and self.next_action is None:
            raise InvalidRequest("an action_required GatewayResult needs a next_action")

    @property
    def approved(self) -> bool:
        return self.outcome is Outcome.APPROVED

    @classmethod
    def not_found(cls, request: PaymentRequest) -> GatewayResult:
        """`fetch_status`'s answer when the provider has no record of ``request``'s transaction.

        Final only once no attempt of the original request can still be in flight (its
        exchange's total timeout has passed): an attempt on its way may yet create it.
        Reconciliation asks only after that; a caller asking sooner must read this as
        "not yet".
        """
        return cls(
            outcome=Outcome.DECLINED,
            gateway_reference=request.gateway_reference,
            decline_reason=DeclineReason.NOT_FOUND,
            decline_code="not_found",
            message=(
                f"the provider has no record of this {request.transaction_type}: it did not "
                "happen, if no attempt of it can still be in flight"
            ),
        )


@frozen(kw_only=True)
class SaveMethodRequest:
    """Ask a gateway to keep ``payment_method`` for ``customer`` (`Gateway.save_method`).

    ``payment_method.token`` is what the provider's own client-side tokenisation gave
    the frontend: card numbers never pass through paycore. Without a
    ``customer.gateway_customer_id`` the gateway creates the customer first.
    ``idempotency_key`` makes a retried save harmless.
    """

    idempotency_key: str = field(validator=_identifier)
    payment_method: PaymentMethod
    customer: Customer


@frozen(kw_only=True)
class CheckoutSession:
    """A hosted page, payment link or widget created for a payment.

    ``reference`` is the provider's id of the session or link (``cs_…``, ``plink_…``);
    ``gateway_reference`` the provider's id of the payment when it exists already (a
    payment link creates one only when a customer pays: then it is None, and
    `Gateway.fetch_status` finds it by paycore's transaction id).
    """

    reference: str
    next_action: NextAction
    kind: CheckoutKind = field(default=CheckoutKind.HOSTED_PAGE, converter=CheckoutKind)
    gateway_reference: str | None = None
    expires_at: datetime | None = field(default=None, validator=_aware)


@frozen(kw_only=True)
class GatewayEvent:
    """A verified webhook event, normalised.

    It says: the transaction of ``transaction_type`` on payment ``gateway_reference``
    (paycore's ``transaction_id`` when the provider echoes it) reached ``outcome``.
    ``event_id`` is the provider's id, used to drop duplicates; ``occurred_at``
    orders events that arrive out of order.
    """

    gateway: str
    event_id: str
    event_type: str  # the provider's own name, e.g. "payment_intent.succeeded"
    occurred_at: datetime = field(validator=_aware)
    transaction_type: TransactionType = field(converter=_transaction_type)
    outcome: Outcome = field(converter=_outcome)
    gateway_reference: str | None = None
    transaction_reference: str | None = None
    transaction_id: str | None = None
    amount: Money | None = None
    decline_reason: DeclineReason | None = field(default=None, converter=_decline_reason)
    decline_code: str | None = None
    provider_status: str | None = None


@frozen(kw_only=True)
class WebhookRequest:
    """A delivery as it arrived: the raw body bytes (verify before parsing) and headers.

    Header names are lower-case. ``query`` holds the query string's parameters
    (some providers call back with GET).
    """

    method: str
    # Signatures and payloads stay out of reprs (tracebacks, error reports).
    headers: Mapping[str, str] = field(converter=_lower_keys, repr=False)
    body: bytes = field(default=b"", repr=False)
    query: Mapping[str, str] = field(default=None, converter=_frozen_mapping)
    received_at: datetime | None = field(default=None, validator=_aware)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@frozen(kw_only=True)
class WebhookReply:
    """The exact HTTP answer the provider expects for a delivery."""

    status_code: int = 200
    body: bytes = b""
    media_type: str = "text/plain"
    headers: Mapping[str, str] = field(default=None, converter=_frozen_mapping)


@frozen(kw_only=True)
class PaymentCheck:
    """A provider asking, before it takes a payment, whether the merchant accepts it.

    Some providers (XPAY's two-step protocol) call the merchant with the payment they
    are about to take and go on only when it says yes. ``transaction_id`` is the
    paycore transaction the provider names, ``amount`` what it is about to take and
    ``payment_id`` the payment (order) it names, when it names one. The merchant
    answers ``accept`` or ``reject``, as `PaymentTransactionServices.answer_check`
    decides.
    """

    transaction_id: str
    amount: Money = field(validator=instance_of(Money))
    payment_id: str | None = None
    accept: WebhookReply
    reject: WebhookReply


@frozen(kw_only=True)
class WebhookHandling:
    """The events of one verified delivery and the reply to send once they are stored.

    A delivery that asks a question (``check``) is answered with the check's
    ``accept`` or ``reject`` instead of ``reply``.
    """

    events: tuple[GatewayEvent, ...] = ()
    reply: WebhookReply = Factory(WebhookReply)
    check: PaymentCheck | None = None
