"""WooshPay (docs.wooshpay.com): Stripe-shaped REST and JSON, secret key as HTTP Basic user.

Every operation: payment intents (authorize = ``capture_method: manual``, sale =
automatic; one capture, partial or not, releases the rest; void = cancel), refunds
(their request ``amount`` a decimal-digit string), checkout sessions and payment links,
saved cards (customer, attach, detach), webhooks signed ``Wooshpay-Signature: t=…,v1=…``.
Quirks: objects' ``created`` in milliseconds, events' in seconds; a 409
``idempotency_error`` is `OutcomeUnknown`. Protocol notes: providers.md §3. [PROPOSAL]:
paths of confirm/capture/cancel/sessions/links, search, refund statuses, currency table.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
from attrs import evolve

from paycore.errors import InvalidRequest
from paycore.gateways.base import (
    Capabilities,
    Exchange,
    Gateway,
    GatewayConfig,
    Operation,
    load_schema,
)
from paycore.gateways.webhooks import verify_signature
from paycore.money import Money
from paycore.transactions.model import (
    CheckoutKind,
    CheckoutSession,
    Customer,
    GatewayResult,
    Outcome,
    PaymentMethodOption,
    PaymentRequest,
    SavedMethod,
    SaveMethodRequest,
    TransactionType,
    WebhookHandling,
    WebhookReply,
    WebhookRequest,
)
from paycore_wooshpay import payloads
from paycore_wooshpay.answers import (
    AUTHORIZATION_WINDOW,
    NAME,
    checkout_session_from,
    declined_from,
    from_checkout,
    intent_result,
    is_missing,
    payment_link_from,
    read,
    refund_result,
    refused,
    saved_method_from,
    success_body,
)
from paycore_wooshpay.config import WooshPayConfig, config_problems
from paycore_wooshpay.events import event_from
from paycore_wooshpay.methods import options_for

__all__ = ["SIGNATURE_HEADER", "WooshPayConfig", "WooshPayGateway"]

SIGNATURE_HEADER = "Wooshpay-Signature"
CREATING_TYPES = frozenset(payloads.CAPTURE_METHODS)
RECEIVED = WebhookReply(status_code=200, body=b'{"received": true}', media_type="application/json")


class WooshPayGateway(Gateway):
    name: ClassVar[str] = NAME
    display_name: ClassVar[str] = "WooshPay"
    capabilities: ClassVar[Capabilities] = Capabilities(
        operations=set(Operation),
        partial_capture=True,
        multiple_capture=False,  # the one capture releases what it leaves
        partial_refund=True,
        multiple_refund=True,
        idempotency_keys=True,
        idempotency_window=timedelta(hours=24),
        currencies=None,
        webhook_signing="hmac-sha256",
        authorization_window=AUTHORIZATION_WINDOW,
        checkout_kinds={CheckoutKind.HOSTED_PAGE, CheckoutKind.PAYMENT_LINK},
    )
    config_type: ClassVar[type[GatewayConfig]] = WooshPayConfig
    config_schema: ClassVar[Mapping[str, Any]] = load_schema(__package__, "config.schema.json")
    config: WooshPayConfig

    @classmethod
    def config_problems_in(cls, mapping: Mapping[str, Any]) -> list[str]:
        """The schema's problems and the rules across keys (mode and key prefixes)."""
        return config_problems(cls.config_schema, mapping)

    def payment_methods(
        self, amount: Money, *, country: str | None = None
    ) -> Exchange[tuple[PaymentMethodOption, ...]]:
        # A documented, static list: nothing to ask the provider. No type depends on
        # the country beyond its currency.
        yield from ()
        return options_for(amount)

    def create_checkout(
        self, request: PaymentRequest, *, kind: CheckoutKind = CheckoutKind.HOSTED_PAGE
    ) -> Exchange[CheckoutSession]:
        kind = CheckoutKind(kind)
        if kind not in self.capabilities.checkout_kinds:
            raise self.unsupported_checkout(kind)
        if not request.return_url:
            raise InvalidRequest("a WooshPay checkout needs a return_url to send the customer to")
        payloads.check_checkout(request)
        if kind is CheckoutKind.PAYMENT_LINK:
            return (yield from self._create_payment_link(request))
        customer_id = yield from self._customer_for(request)
        if isinstance(customer_id, httpx.Response):
            raise refused(customer_id, "to create the customer")
        response = yield self._request(
            "POST",
            "/v1/checkout/sessions",
            json=payloads.checkout_session(request, customer_id),
            idempotency_key=request.idempotency_key,
        )
        if not response.is_success:
            raise refused(response, "the checkout session")
        return checkout_session_from(success_body(response))

    def authorize(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        return (yield from self._create_intent(request, TransactionType.AUTHORIZE))

    def sale(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        return (yield from self._create_intent(request, TransactionType.SALE))

    def capture(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        # WooshPay captures once: whatever this capture leaves is released (``final``).
        response = yield self._request(
            "POST",
            f"{_intent_path(request)}/capture",
            json={"amount_to_capture": request.amount.minor_units},
            idempotency_key=request.idempotency_key,
        )
        return _intent_answer(response, TransactionType.CAPTURE)

    def void(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        response = yield self._request(
            "POST",
            f"{_intent_path(request)}/cancel",
            json={"cancellation_reason": "requested_by_customer"},
            idempotency_key=request.idempotency_key,
        )
        return _intent_answer(response, TransactionType.VOID)

    def refund(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        response = yield self._request(
            "POST",
            "/v1/refunds",
            json=payloads.refund(request),
            idempotency_key=request.idempotency_key,
        )
        if not response.is_success:
            return declined_from(response)
        return refund_result(success_body(response))

    def fetch_status(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        """Where ``request``'s transaction stands, found by paycore's transaction id.

        An intent whose creating answer was lost (or that a payment link made) is
        searched for by ``metadata.paycore_transaction_id``; a refund is read by its id
        or found among its intent's refunds by the same metadata. "The provider has no
        record" is declined with ``NOT_FOUND``, final only once no attempt of the
        original request can still be in flight: reconciliation asks only after that.
        """
        kind = request.transaction_type
        if kind is TransactionType.FETCH_STATUS:
            raise InvalidRequest("fetch_status asks about another transaction's type")
        if kind is TransactionType.REFUND:
            return (yield from self._fetch_refund(request))
        intent: Mapping[str, Any] | None
        lost = kind in CREATING_TYPES and request.gateway_reference is None
        if lost:
            query = payloads.search_query(request.transaction_id)
            response = yield self._request(
                "GET", "/v1/payment_intents/search", params={"query": query}
            )
            found = [
                read.object(i, "an intent") for i in read.array(success_body(response), "data")
            ]
            # A payment link may have made several; the one that was paid counts.
            paid = [i for i in found if i.get("latest_charge")]
            intent = next(iter(paid or found), None)
        else:
            response = yield self._request("GET", _intent_path(request))
            intent = None if is_missing(response) else success_body(response)
        if intent is None:
            return GatewayResult.not_found(request)
        result = intent_result(intent, kind)
        if kind in CREATING_TYPES:  # a method saved while paying shows once it is paid
            result = yield from self._with_saved_method(result, intent)
        if lost:  # a hosted page whose answer was lost: its link is found again
            result = yield from self._with_open_page(result, intent)
        return result

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
        event = event_from(read.document(delivery.body, "the webhook body"))
        return WebhookHandling(events=() if event is None else (event,), reply=RECEIVED)

    def save_method(self, request: SaveMethodRequest) -> Exchange[SavedMethod]:
        token = request.payment_method.token
        if not token:
            raise InvalidRequest("saving a method needs its WooshPay token (pm_…)")
        customer_id = yield from self._customer(request.customer, request.idempotency_key)
        if isinstance(customer_id, httpx.Response):
            raise refused(customer_id, "to create the customer")
        response = yield self._request(
            "POST",
            f"/v1/payment_methods/{quote(token, safe='')}/attach",
            json={"customer": customer_id},
            idempotency_key=f"{request.idempotency_key}:attach",
        )
        if not response.is_success:
            raise refused(response, "to attach the payment method")
        return saved_method_from(success_body(response))

    def delete_method(self, method: SavedMethod) -> Exchange[None]:
        # Detaching twice is harmless under the same key; a method already gone is gone.
        response = yield self._request(
            "POST",
            f"/v1/payment_methods/{quote(method.token, safe='')}/detach",
            json={},
            idempotency_key=f"{method.token}:detach",
        )
        if not (response.is_success or is_missing(response)):
            raise refused(response, "to detach the payment method")
        return None

    # -- the steps operations share ------------------------------------------------------

    def _create_intent(
        self, request: PaymentRequest, kind: TransactionType
    ) -> Exchange[GatewayResult]:
        payloads.payable_method(request)  # refused before anything is sent
        customer_id = yield from self._customer_for(request)
        if isinstance(customer_id, httpx.Response):
            return declined_from(customer_id)
        response = yield self._request(
            "POST",
            "/v1/payment_intents",
            json=payloads.intent(request, customer_id),
            idempotency_key=request.idempotency_key,
        )
        if not response.is_success:
            return declined_from(response)
        intent = success_body(response)
        return (yield from self._with_saved_method(intent_result(intent, kind), intent))

    def _customer_for(self, request: PaymentRequest) -> Exchange[str | httpx.Response | None]:
        """The customer to pay as: none unless known, or the method is to be saved."""
        known = request.customer.gateway_customer_id if request.customer else None
        method = request.payment_method
        if known or method is None or not method.save:
            return known
        return (yield from self._customer(request.customer or Customer(), request.idempotency_key))

    def _customer(self, customer: Customer, key: str) -> Exchange[str | httpx.Response]:
        """The customer's WooshPay id, created first when it has none (or the refusal)."""
        if customer.gateway_customer_id:
            return customer.gateway_customer_id
        response = yield self._request(
            "POST",
            "/v1/customers",
            json=payloads.customer(customer),
            idempotency_key=f"{key}:customer",
        )
        if not response.is_success:
            return response
        return read.text(success_body(response), "id")

    def _with_saved_method(
        self, result: GatewayResult, intent: Mapping[str, Any]
    ) -> Exchange[GatewayResult]:
        """``result`` with the method the intent kept for its customer, when it kept one."""
        customer = read.optional_text(intent, "customer")
        method = read.optional_text(intent, "payment_method")
        if not (result.approved and intent.get("setup_future_usage") and customer and method):
            return result
        response = yield self._request("GET", f"/v1/payment_methods/{quote(method, safe='')}")
        if not response.is_success:
            return result  # the payment stands; the method's display data is a nicety
        saved = saved_method_from(success_body(response))
        return (
            evolve(result, saved_method=saved) if saved.customer_reference == customer else result
        )

    def _with_open_page(
        self, result: GatewayResult, intent: Mapping[str, Any]
    ) -> Exchange[GatewayResult]:
        """``result``, waiting for the customer on the intent's open checkout page when
        it is one's."""
        waiting = intent.get("status") == "requires_payment_method"
        if result.outcome is not Outcome.PROCESSING or not (waiting and from_checkout(intent)):
            return result
        response = yield self._request(
            "GET",
            "/v1/checkout/sessions",
            params={"payment_intent": read.text(intent, "id"), "status": "open"},
        )
        if not response.is_success:
            return result  # still waiting, as the intent says; the page is a nicety
        sessions = read.array(success_body(response), "data")
        if not sessions:
            return result
        session = checkout_session_from(read.object(sessions[0], "a checkout session"))
        return evolve(
            result,
            outcome=Outcome.ACTION_REQUIRED,
            transaction_reference=session.reference,
            next_action=session.next_action,
        )

    def _create_payment_link(self, request: PaymentRequest) -> Exchange[CheckoutSession]:
        # Three requests, each with its own key derived from the transaction's.
        product = yield from self._create(
            request, "product", "/v1/products", payloads.product(request)
        )
        price_payload = payloads.price(request, read.text(product, "id"))
        price = yield from self._create(request, "price", "/v1/prices", price_payload)
        link_payload = payloads.payment_link(request, read.text(price, "id"))
        link = yield from self._create(request, "link", "/v1/payment_links", link_payload)
        return payment_link_from(link)

    def _create(
        self, request: PaymentRequest, step: str, path: str, payload: Mapping[str, Any]
    ) -> Exchange[Mapping[str, Any]]:
        response = yield self._request(
            "POST", path, json=payload, idempotency_key=f"{request.idempotency_key}:{step}"
        )
        if not response.is_success:
            raise refused(response, f"the payment link's {step}")
        return success_body(response)

    def _fetch_refund(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        if request.transaction_reference:
            response = yield self._request(
                "GET", f"/v1/refunds/{quote(request.transaction_reference, safe='')}"
            )
            return (
                GatewayResult.not_found(request)
                if is_missing(response)
                else refund_result(success_body(response))
            )
        params = {"payment_intent": payloads.intent_id(request), "limit": "100"}
        while True:
            response = yield self._request("GET", "/v1/refunds", params=params)
            page = success_body(response)
            refunds = [read.object(r, "a refund") for r in read.array(page, "data")]
            for refund in refunds:
                metadata = read.object(refund.get("metadata") or {}, "the refund's metadata")
                if metadata.get("paycore_transaction_id") == request.transaction_id:
                    return refund_result(refund)
            if not (page.get("has_more") and refunds):
                return GatewayResult.not_found(request)
            params = {**params, "starting_after": read.text(refunds[-1], "id")}

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Request:
        """The one place requests are built: base URL, Basic auth, idempotency key."""
        user = base64.b64encode(f"{self.config.secret_key}:".encode()).decode("ascii")
        headers = {"Authorization": f"Basic {user}", "Accept": "application/json"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return self.build_request(
            method,
            self.config.api_url + path,
            json=json,
            params=params,
            headers=headers,
            idempotent=True if idempotency_key is not None else None,
        )


def _intent_answer(response: httpx.Response, kind: TransactionType) -> GatewayResult:
    if not response.is_success:
        return declined_from(response)
    return intent_result(success_body(response), kind)


def _intent_path(request: PaymentRequest) -> str:
    return f"/v1/payment_intents/{quote(payloads.intent_id(request), safe='')}"
