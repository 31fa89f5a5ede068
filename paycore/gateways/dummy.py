"""Dummy: the reference gateway, for the dummy sandbox (`paycore.gateways.dummy_sandbox`).

REST and JSON, ``Authorization: Bearer``, an ``Idempotency-Key`` on every mutation
(kept 24 h), amounts in integer minor units. Every operation of the contract except
hosted checkout and the vault (it keeps no payment methods). Methods: ``card`` and
``gift_card`` (stored value; its token is the card's number, ``gc_…``), both paid with
a token the frontend collects, and ``bank_transfer``. Quirks: a card or gift card
decline is HTTP 402 with an error body; a 409 ``idempotency_error`` (the key is in use
or was used for another request) is never a decline but `OutcomeUnknown`; paycore's
transaction id travels as ``reference``, so `fetch_status` finds an operation whose
answer was lost; webhooks are signed ``Dummy-Signature: t=…,v1=…``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
from attrs import field, frozen

from paycore.errors import InvalidRequest, OutcomeUnknown
from paycore.gateways.base import (
    VAULT,
    Capabilities,
    Exchange,
    Gateway,
    GatewayConfig,
    Operation,
    load_schema,
    secret,
)
from paycore.gateways.fields import AnswerReader
from paycore.gateways.webhooks import DEFAULT_TOLERANCE, verify_signature
from paycore.money import Currency, Money
from paycore.transactions.model import (
    DeclineReason,
    GatewayEvent,
    GatewayResult,
    NextAction,
    Outcome,
    PaymentMethodOption,
    PaymentRequest,
    TransactionType,
    WebhookHandling,
    WebhookReply,
    WebhookRequest,
)

__all__ = ["SIGNATURE_HEADER", "DummyConfig", "DummyGateway"]

NAME = "dummy"
SIGNATURE_HEADER = "Dummy-Signature"  # the sandbox signs with it too
REQUEST_ID_HEADER = "Request-Id"

# An operation's status -> what it means for the transaction that asked for it.
OUTCOMES = {
    "succeeded": Outcome.APPROVED,
    "processing": Outcome.PROCESSING,
    "requires_action": Outcome.ACTION_REQUIRED,
    "declined": Outcome.DECLINED,
}

# The provider's error or decline code -> the normalised reason.
DECLINE_REASONS = {
    "card_declined": DeclineReason.CARD_DECLINED,
    "insufficient_funds": DeclineReason.INSUFFICIENT_FUNDS,
    "expired_card": DeclineReason.EXPIRED_CARD,
    "incorrect_number": DeclineReason.INCORRECT_NUMBER,
    "authentication_failed": DeclineReason.AUTHENTICATION_FAILED,
    "transfer_failed": DeclineReason.PROCESSING_ERROR,
    "amount_invalid": DeclineReason.AMOUNT_INVALID,
    "amount_too_large": DeclineReason.AMOUNT_INVALID,
    "amount_too_small": DeclineReason.AMOUNT_INVALID,
    "currency_not_supported": DeclineReason.CURRENCY_NOT_SUPPORTED,
    "method_not_supported": DeclineReason.METHOD_NOT_SUPPORTED,
    "invalid_state": DeclineReason.NOT_PERMITTED,
    "authorization_expired": DeclineReason.AUTHORIZATION_EXPIRED,
}

# Methods the frontend pays with a token it collects (a tokenised card, a gift card's number).
TOKEN_METHODS = frozenset({"card", "gift_card"})

# Transaction types whose operation is the payment's first (the one that created it).
CREATING_TYPES = frozenset({TransactionType.AUTHORIZE, TransactionType.SALE})
TRANSACTION_TYPES = {kind.value: kind for kind in TransactionType}

_read = AnswerReader(NAME)


def _base_url(value: str) -> str:
    return value.rstrip("/")


@frozen(kw_only=True)
class DummyConfig(GatewayConfig):
    base_url: str = field(converter=_base_url)
    api_key: str = secret()
    webhook_secret: str = secret()
    webhook_tolerance: int = DEFAULT_TOLERANCE


class DummyGateway(Gateway):
    name: ClassVar[str] = NAME
    display_name: ClassVar[str] = "Dummy (reference sandbox)"
    capabilities: ClassVar[Capabilities] = Capabilities(
        operations=set(Operation) - {Operation.CREATE_CHECKOUT} - VAULT,
        partial_capture=True,
        multiple_capture=True,
        partial_refund=True,
        multiple_refund=True,
        idempotency_keys=True,
        idempotency_window=timedelta(hours=24),
        webhook_signing="hmac-sha256",
        authorization_window=timedelta(days=7),
    )
    config_type: ClassVar[type[GatewayConfig]] = DummyConfig
    config_schema: ClassVar[Mapping[str, Any]] = load_schema(
        "paycore.gateways", "dummy.config.schema.json"
    )
    config: DummyConfig

    def payment_methods(
        self, amount: Money, *, country: str | None = None
    ) -> Exchange[tuple[PaymentMethodOption, ...]]:
        # The provider offers the same methods in every country.
        response = yield self._request(
            "GET",
            "/v1/payment_methods",
            params={"currency": amount.currency.code, "amount": str(amount.minor_units)},
        )
        methods = _read.array(_success_body(response), "data")
        currency = amount.currency
        return tuple(_option_from(_read.object(m, "a method"), currency) for m in methods)

    def authorize(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        return (yield from self._create_payment(request, capture=False))

    def sale(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        return (yield from self._create_payment(request, capture=True))

    def capture(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        response = yield self._request(
            "POST",
            f"{_payment_path(request)}/captures",
            json={
                **_add_amount(request),
                "final": request.final,
                "reference": request.transaction_id,
            },
            idempotency_key=request.idempotency_key,
        )
        return _operation_answer(response)

    def void(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        response = yield self._request(
            "POST",
            f"{_payment_path(request)}/void",
            json={"reference": request.transaction_id},
            idempotency_key=request.idempotency_key,
        )
        return _operation_answer(response)

    def refund(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        response = yield self._request(
            "POST",
            f"{_payment_path(request)}/refunds",
            json={**_add_amount(request), "reference": request.transaction_id},
            idempotency_key=request.idempotency_key,
        )
        return _operation_answer(response)

    def fetch_status(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        """The provider's answer about ``request``'s transaction, found by our reference.

        "The provider has no record" comes back as declined with ``NOT_FOUND``. That is
        final only once no attempt of the original request can still be in flight,
        that is once the exchange's total timeout has passed: an attempt still on its
        way may yet create the operation. Reconciliation asks only after its grace
        period, which guarantees it; a caller asking sooner must treat ``NOT_FOUND``
        as "not yet".
        """
        kind = request.transaction_type
        if kind is TransactionType.FETCH_STATUS:
            raise InvalidRequest("fetch_status asks about another transaction's type")
        if kind in CREATING_TYPES and request.gateway_reference is None:
            # The creating call's answer was lost: look the payment up by our reference.
            response = yield self._request(
                "GET", "/v1/payments", params={"reference": request.transaction_id}
            )
            found = _read.array(_success_body(response), "data")
            payment = _read.object(found[0], "a payment") if found else None
        else:
            response = yield self._request("GET", _payment_path(request))
            payment = None if _is_missing(response) else _success_body(response)
        operation = None if payment is None else _operation_for(request, payment)
        if payment is None or operation is None:
            return GatewayResult.not_found(request)
        return _result_from(operation, payment)

    def handle_webhook(self, delivery: WebhookRequest) -> Exchange[WebhookHandling]:
        yield from ()  # verifying a delivery needs no call to the provider
        verify_signature(
            delivery.header(SIGNATURE_HEADER),
            delivery.body,
            self.config.webhook_secret,
            gateway=NAME,
            tolerance=self.config.webhook_tolerance,
            now=delivery.received_at,
        )
        event = _event_from(_read.document(delivery.body, "the webhook body"))
        return WebhookHandling(
            events=() if event is None else (event,),
            reply=WebhookReply(
                status_code=200, body=b'{"received": true}', media_type="application/json"
            ),
        )

    def _create_payment(self, request: PaymentRequest, *, capture: bool) -> Exchange[GatewayResult]:
        method = request.payment_method
        if method is None:
            raise InvalidRequest("the dummy gateway needs a payment_method (a test token)")
        payload: dict[str, Any] = {
            **_add_amount(request),
            "capture": capture,
            "payment_method": {"type": method.type, "token": method.token},
            "reference": request.transaction_id,
        }
        if request.return_url:
            payload["return_url"] = request.return_url
        response = yield self._request(
            "POST", "/v1/payments", json=payload, idempotency_key=request.idempotency_key
        )
        if not response.is_success:
            return _declined_from(response)
        payment = _success_body(response)
        operation = _operation_for(request, payment)
        if operation is None:
            raise _read.error("the new payment has no operations")
        return _result_from(operation, payment)

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Request:
        """The one place requests are built: base URL, auth, idempotency key."""
        headers = {"Authorization": f"Bearer {self.config.api_key}", "Accept": "application/json"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return self.build_request(
            method,
            self.config.base_url + path,
            json=json,
            params=params,
            headers=headers,
            idempotent=True if idempotency_key is not None else None,
        )


def _add_amount(request: PaymentRequest) -> dict[str, Any]:
    return {"amount": request.amount.minor_units, "currency": request.amount.currency.code}


def _payment_path(request: PaymentRequest) -> str:
    if not request.gateway_reference:
        raise InvalidRequest(
            f"a {request.transaction_type} needs the payment's gateway_reference (pay_…)"
        )
    return f"/v1/payments/{quote(request.gateway_reference, safe='')}"


def _operation_answer(response: httpx.Response) -> GatewayResult:
    """The result of a capture, void or refund: the new operation, or a decline."""
    if not response.is_success:
        return _declined_from(response)
    operation = _success_body(response)
    return _result_from(operation, {"id": _read.text(operation, "payment_id")})


def _operation_for(request: PaymentRequest, payment: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The payment's operation ``request`` asks about, if the provider has it."""
    operations = [_read.object(op, "an operation") for op in _read.array(payment, "operations")]
    if request.transaction_type in CREATING_TYPES:
        return operations[0] if operations else None
    for operation in operations:
        mine = operation.get("reference") == request.transaction_id or (
            request.transaction_reference is not None
            and operation.get("id") == request.transaction_reference
        )
        if mine and operation.get("type") == request.transaction_type.value:
            return operation
    return None


def _result_from(operation: Mapping[str, Any], payment: Mapping[str, Any]) -> GatewayResult:
    status = _read.text(operation, "status")
    outcome = OUTCOMES.get(status)
    if outcome is None:
        raise _read.error(f"unknown operation status {status[:32]!r}")
    next_action = None
    if outcome is Outcome.ACTION_REQUIRED:
        action = _read.object(payment.get("next_action"), "the payment's next_action")
        next_action = NextAction.redirect(_read.text(action, "url"))
    code = _read.optional_text(operation, "decline_code")
    return GatewayResult(
        outcome=outcome,
        gateway_reference=_read.text(payment, "id"),
        transaction_reference=_read.text(operation, "id"),
        amount=_money_from(operation),
        decline_reason=_decline_reason_from(code) if outcome is Outcome.DECLINED else None,
        decline_code=code,
        next_action=next_action,
        provider_status=status,
        authorization_expires_at=_read.optional_timestamp(payment, "capture_before"),
    )


def _declined_from(response: httpx.Response) -> GatewayResult:
    """A 4xx answer: the provider refused, so nothing happened (or a card decline).

    Raises `OutcomeUnknown` for an idempotency conflict, which is no refusal: see
    `_key_in_use`. Every mutation's answer passes here, so none can miss it.
    """
    error = _read.object(_read.json(response).get("error"), "the answer's error")
    code = _read.text(error, "code")
    if code == "idempotency_error" or error.get("type") == "idempotency_error":
        raise _key_in_use(response)
    return GatewayResult(
        outcome=Outcome.DECLINED,
        gateway_reference=_read.optional_text(error, "payment_id"),
        decline_reason=_decline_reason_from(code, error.get("type")),
        decline_code=code,
        message=_read.optional_text(error, "message"),
        provider_status=f"http_{response.status_code}",
    )


def _key_in_use(response: httpx.Response) -> OutcomeUnknown:
    """A 409 on an Idempotency-Key: the first request with that key may have succeeded.

    Stripe-shaped providers answer it while the first attempt is still processing (a
    retry overtook it) or when the key was used for another request. Either way this
    answer says nothing about whether the operation happened, so it must not become
    a decline: paycore would record "definitely not done" for a payment that may
    have gone through. Reconciliation (`fetch_status`) finds out.
    """
    return OutcomeUnknown(
        "the provider reports the Idempotency-Key in use by another request, which may "
        "have succeeded: reconcile with fetch_status, never retry under a new key",
        gateway=NAME,
        http_status=response.status_code,
        request_id=response.headers.get(REQUEST_ID_HEADER),
    )


def _event_from(body: Mapping[str, Any]) -> GatewayEvent | None:
    """A normalised event, or None for an event paycore does not follow."""
    data = _read.object(body.get("data"), "the event's data")
    operation = _read.object(data.get("operation"), "the event's operation")
    payment = _read.object(data.get("payment"), "the event's payment")
    kind = TRANSACTION_TYPES.get(str(operation.get("type")))
    outcome = OUTCOMES.get(str(operation.get("status")))
    if kind is None or outcome is None:
        return None
    code = _read.optional_text(operation, "decline_code")
    return GatewayEvent(
        gateway=NAME,
        event_id=_read.text(body, "id"),
        event_type=_read.text(body, "type"),
        occurred_at=_read.timestamp(body, "created"),
        transaction_type=kind,
        outcome=outcome,
        gateway_reference=_read.text(payment, "id"),
        transaction_reference=_read.text(operation, "id"),
        transaction_id=_read.optional_text(operation, "reference"),
        amount=_money_from(operation),
        decline_reason=_decline_reason_from(code) if outcome is Outcome.DECLINED else None,
        decline_code=code,
        provider_status=_read.text(operation, "status"),
    )


def _option_from(method: Mapping[str, Any], currency: Currency) -> PaymentMethodOption:
    minimum = None if method.get("min_amount") is None else _read.integer(method, "min_amount")
    return PaymentMethodOption(
        gateway=NAME,
        type=_read.text(method, "type"),
        display_name=_read.text(method, "display_name"),
        required_fields=("token",) if method.get("type") in TOKEN_METHODS else (),
        min_amount=None if minimum is None else Money(minimum, currency),
    )


def _decline_reason_from(code: str | None, error_type: Any = "card_error") -> DeclineReason:
    if code in DECLINE_REASONS:
        return DECLINE_REASONS[code]
    if error_type == "card_error":
        return DeclineReason.CARD_DECLINED
    return DeclineReason.INVALID_REQUEST


def _money_from(body: Mapping[str, Any]) -> Money:
    try:
        return Money(_read.integer(body, "amount"), _read.text(body, "currency"))
    except InvalidRequest as exc:
        raise _read.error(f"the answer's amount is not valid: {exc}") from None


def _success_body(response: httpx.Response) -> Mapping[str, Any]:
    body = _read.json(response)
    if not response.is_success:
        raise _read.error(
            f"unexpected answer: {_error_code(body)}", http_status=response.status_code
        )
    return body


def _is_missing(response: httpx.Response) -> bool:
    """A 404 saying the payment does not exist (not a wrong URL)."""
    return response.status_code == 404 and _error_code(_read.json(response)) == "resource_missing"


def _error_code(body: Mapping[str, Any]) -> str:
    error = body.get("error")
    code = error.get("code") if isinstance(error, Mapping) else None
    return str(code)[:64] if code is not None else "no error code"
