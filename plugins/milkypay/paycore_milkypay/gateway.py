"""MilkyPay and Paytone: white labels of the Corefy (ex-PayCore.io) platform.

JSON:API over REST around payment invoices (``cpi_…``): the Private API (HTTP Basic,
commerce account id : API key) creates them, refunds them and reads them; the Public
API lists the services for an amount; the hosted page (``/hpp/``) takes payment links
and the widget. Amounts are exact major-unit JSON numbers; paycore's transaction id is
each object's ``reference_id`` (unique per account: a resend answers 422
``duplicate_reference_id`` and the plugin looks the object up). Callbacks are signed
``X-Signature: base64(sha1(secret + body + secret))``. Protocol notes: providers.md §1.
[PROPOSAL]: capture/void of a delayed charge (`PROCESS_PATH`), resolutions, refund
statuses, ``included`` refunds, the widget's parameters.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
from attrs import evolve

from paycore.errors import InvalidRequest, OutcomeUnknown, WebhookSignatureError
from paycore.gateways.base import (
    Capabilities,
    Exchange,
    Gateway,
    GatewayConfig,
    Operation,
    load_schema,
)
from paycore.money import Money
from paycore.transactions.model import (
    CheckoutKind,
    CheckoutSession,
    GatewayResult,
    NextAction,
    NextActionKind,
    PaymentMethodOption,
    PaymentRequest,
    TransactionType,
    WebhookHandling,
    WebhookReply,
    WebhookRequest,
)
from paycore_milkypay import payloads
from paycore_milkypay.answers import (
    DUPLICATE_REFERENCE,
    checkout_session_from,
    declined,
    invoice_result,
    refund_result,
    refused,
)
from paycore_milkypay.config import MilkyPayConfig, config_problems
from paycore_milkypay.documents import DocumentReader, ErrorAnswer, Invoice, InvoiceDocument
from paycore_milkypay.events import events_from
from paycore_milkypay.methods import options_from
from paycore_milkypay.signature import SIGNATURE_HEADER, verify_signature

__all__ = ["PROCESS_PATH", "MilkyPayConfig", "MilkyPayGateway", "PaytoneGateway"]

PREREQUEST_PATH = "/public-api/payment-prerequest"
INVOICES_PATH = "/api/payment-invoices"
# [PROPOSAL] The second step of a delayed charge; the documentation names no endpoint.
PROCESS_PATH = "/api/payment-invoices/{id}/process"
REFUND_PATH = "/api/payment-invoices/{id}/refund"
WIDGET_SCRIPT = "/widget/payment-widget.js"
ACCEPT = "application/vnd.api+json"
RECEIVED = WebhookReply(status_code=200, body=b"OK", media_type="text/plain")
CREATING_TYPES = frozenset({TransactionType.AUTHORIZE, TransactionType.SALE})


class MilkyPayGateway(Gateway):
    name: ClassVar[str] = "milkypay"
    display_name: ClassVar[str] = "MilkyPay"
    capabilities: ClassVar[Capabilities] = Capabilities(
        operations=set(Operation) - {Operation.SAVE_METHOD, Operation.DELETE_METHOD},
        partial_capture=True,
        multiple_capture=False,  # the one capture releases what it leaves
        partial_refund=True,
        multiple_refund=True,
        idempotency_keys=True,  # reference_id is unique per account; resends are looked up
        idempotency_window=None,
        currencies=None,
        webhook_signing="sha1-base64",
        authorization_window=timedelta(days=7),
        checkout_kinds={CheckoutKind.HOSTED_PAGE, CheckoutKind.PAYMENT_LINK, CheckoutKind.WIDGET},
    )
    config_type: ClassVar[type[GatewayConfig]] = MilkyPayConfig
    config_schema: ClassVar[Mapping[str, Any]] = load_schema(__package__, "config.schema.json")
    config: MilkyPayConfig

    def __init__(self, config: GatewayConfig) -> None:
        super().__init__(config)
        self.read = DocumentReader(self.name)

    @classmethod
    def config_problems_in(cls, mapping: Mapping[str, Any]) -> list[str]:
        """The schema's problems and the rules across keys (mode and key prefix)."""
        return config_problems(cls.config_schema, mapping)

    def payment_methods(
        self, amount: Money, *, country: str | None = None
    ) -> Exchange[tuple[PaymentMethodOption, ...]]:
        # A POST that changes nothing; the services do not depend on the country.
        response = yield self._request(
            "POST", PREREQUEST_PATH, json=payloads.prerequest(self.config, amount), public=True
        )
        if response.is_success:
            return options_from(self.read, self.read.json(response), amount)
        error = self.read.error_answer(response)
        if error.code == "currency_not_supported":
            return ()
        raise refused(error, "to list the payment services", gateway=self.name)

    def create_checkout(
        self, request: PaymentRequest, *, kind: CheckoutKind = CheckoutKind.HOSTED_PAGE
    ) -> Exchange[CheckoutSession]:
        kind = CheckoutKind(kind)
        if kind not in self.capabilities.checkout_kinds:
            raise self.unsupported_checkout(kind)
        if kind is CheckoutKind.PAYMENT_LINK:
            yield from ()  # built here: the hosted page creates the invoice when opened
            url = payloads.payment_link_url(self.config, request)
            return CheckoutSession(
                reference=request.transaction_id, next_action=NextAction.redirect(url), kind=kind
            )
        if kind is CheckoutKind.WIDGET:
            yield from ()
            widget = NextAction(
                kind=NextActionKind.WIDGET,
                url=self.config.base_url + WIDGET_SCRIPT,
                parameters=payloads.widget_parameters(self.config, request),
            )
            return CheckoutSession(reference=request.transaction_id, next_action=widget, kind=kind)
        answer = yield from self._create_invoice(request)
        if isinstance(answer, ErrorAnswer):
            raise refused(answer, "the hosted page's invoice", gateway=self.name)
        invoice = answer.invoice
        return checkout_session_from(invoice, payloads.hosted_page_url(self.config, invoice.id))

    def authorize(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        return (yield from self._pay(request))

    def sale(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        return (yield from self._pay(request))

    def capture(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        # One capture: what it leaves of the reserve is released (``final`` or not).
        return (yield from self._process(request, "capture"))

    def void(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        return (yield from self._process(request, "void"))

    def refund(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        path = REFUND_PATH.format(id=quote(payloads.invoice_id(request), safe=""))
        response = yield self._request("POST", path, json=payloads.refund(request), idempotent=True)
        if response.is_success:
            return refund_result(self.read.refund_document(self.read.json(response)))
        error = self.read.error_answer(response)
        if DUPLICATE_REFERENCE not in error.codes:
            return declined(error, request.gateway_reference)
        found = yield from self._refund_of(request)
        if found is None:
            raise self._lost(error, "refund")
        return found

    def fetch_status(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        """Where ``request``'s transaction stands.

        An invoice is read by its id, or found by paycore's transaction id (its
        ``reference_id``) when its creating answer was lost or a payment link made it;
        a refund is found among its invoice's (``included``) by id or reference_id.
        "The platform has no record" is `GatewayResult.not_found`, final only once no
        attempt of the original request can still be in flight.
        """
        kind = request.transaction_type
        if kind is TransactionType.FETCH_STATUS:
            raise InvalidRequest("fetch_status asks about another transaction's type")
        if kind is TransactionType.REFUND:
            found = yield from self._refund_of(request)
            return GatewayResult.not_found(request) if found is None else found
        if kind in CREATING_TYPES and request.gateway_reference is None:
            document = yield from self._find(request.transaction_id)
        else:
            document = yield from self._get(payloads.invoice_id(request))
        if document is None:
            return GatewayResult.not_found(request)
        return self._result(document.invoice, request)

    def handle_webhook(self, delivery: WebhookRequest) -> Exchange[WebhookHandling]:
        yield from ()  # verifying a callback needs no call to the platform
        verify_signature(
            delivery.header(SIGNATURE_HEADER),
            delivery.body,
            self.config.secret_key,
            gateway=self.name,
        )
        body = self.read.document(delivery.body, "the callback body")
        document = self.read.invoice_document(body)
        mode = document.invoice.test_mode
        if mode is not None and mode != self.config.test_mode:
            raise WebhookSignatureError(
                f"the callback is for {_mode(mode)} mode but the gateway is "
                f"{_mode(self.config.test_mode)}: it was not made with this config's keys",
                gateway=self.name,
            )
        return WebhookHandling(events=events_from(self.read, document), reply=RECEIVED)

    # -- the steps operations share ------------------------------------------------------

    def _pay(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        answer = yield from self._create_invoice(request)
        if isinstance(answer, ErrorAnswer):
            return declined(answer)
        return self._result(answer.invoice, request)

    def _create_invoice(self, request: PaymentRequest) -> Exchange[InvoiceDocument | ErrorAnswer]:
        """The invoice ``request`` creates (or created before: a resend is looked up),
        or the platform's refusal."""
        payload = payloads.invoice(request, test_mode=self.config.test_mode)
        response = yield self._request("POST", INVOICES_PATH, json=payload, idempotent=True)
        if response.status_code == 201:
            return self.read.invoice_document(self.read.json(response))
        if response.is_success:  # "if 201 is not returned, consider the invoice not created"
            raise self.read.error(
                "the invoice was answered without 201 Created", http_status=response.status_code
            )
        error = self.read.error_answer(response)
        if DUPLICATE_REFERENCE not in error.codes:
            return error
        document = yield from self._find(request.transaction_id)
        if document is None:
            raise self._lost(error, "invoice")
        return document

    def _process(self, request: PaymentRequest, action: str) -> Exchange[GatewayResult]:
        invoice_id = payloads.invoice_id(request)
        response = yield self._request(
            "POST",
            PROCESS_PATH.format(id=quote(invoice_id, safe="")),
            json=payloads.process(request, action),
            idempotent=True,
        )
        if response.is_success:
            return self._result(
                self.read.invoice_document(self.read.json(response)).invoice, request
            )
        error = self.read.error_answer(response)
        if DUPLICATE_REFERENCE not in error.codes:
            return declined(error, invoice_id)
        # Sent before: the invoice's state tells whether it was done.
        document = yield from self._get(invoice_id)
        if document is None:
            raise self._lost(error, "invoice")
        return self._result(document.invoice, request)

    def _refund_of(self, request: PaymentRequest) -> Exchange[GatewayResult | None]:
        """The refund ``request`` describes, from its invoice's ``included``; None if none."""
        document = yield from self._get(payloads.invoice_id(request))
        for refund in document.refunds if document is not None else ():
            if refund.id == request.transaction_reference or (
                refund.reference_id == request.transaction_id
            ):
                return refund_result(refund)
        return None

    def _get(self, invoice_id: str) -> Exchange[InvoiceDocument | None]:
        response = yield self._request("GET", f"{INVOICES_PATH}/{quote(invoice_id, safe='')}")
        if response.status_code == 404:
            self.read.error_answer(response)  # a 404 of the platform's, not a wrong URL
            return None
        return self.read.invoice_document(self._success_body(response))

    def _find(self, reference_id: str) -> Exchange[InvoiceDocument | None]:
        """The invoice whose ``reference_id`` is paycore's transaction id, if any."""
        response = yield self._request(
            "GET", INVOICES_PATH, params={"filter[reference_id]": reference_id}
        )
        found = self.read.invoice_list(self._success_body(response))
        return next((d for d in found if d.invoice.reference_id == reference_id), None)

    def _result(self, invoice: Invoice, request: PaymentRequest) -> GatewayResult:
        result = invoice_result(invoice, request.transaction_type)
        if result is None:  # a capture or void of which the invoice shows no trace yet
            return evolve(GatewayResult.not_found(request), provider_status=invoice.status)
        return result

    def _success_body(self, response: httpx.Response) -> Mapping[str, Any]:
        if not response.is_success:
            error = self.read.error_answer(response)
            raise self.read.error(
                f"unexpected answer: {error.code or 'no error code'}",
                http_status=response.status_code,
            )
        return self.read.json(response)

    def _lost(self, error: ErrorAnswer, what: str) -> OutcomeUnknown:
        return OutcomeUnknown(
            f"the platform reports this {what}'s reference_id in use, but it cannot be "
            "found: reconcile with fetch_status",
            gateway=self.name,
            http_status=error.http_status,
            request_id=error.request_id,
        )

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        public: bool = False,
        idempotent: bool | None = None,
    ) -> httpx.Request:
        """The one place requests are built: base URL, HTTP Basic for the Private API.

        ``public``: a Public API call, authenticated by the public key in its body,
        which changes nothing (the services list).
        """
        headers = {"Accept": ACCEPT}
        if not public:
            account = f"{self.config.commerce_account_id}:{self.config.api_key}"
            headers["Authorization"] = "Basic " + base64.b64encode(account.encode()).decode()
        return self.build_request(
            method,
            self.config.base_url + path,
            json=json,
            params=params,
            headers=headers,
            mutation=False if public else None,
            idempotent=idempotent,
        )


class PaytoneGateway(MilkyPayGateway):
    """Paytone: the same platform under another brand and host, configured alike."""

    name: ClassVar[str] = "paytone"
    display_name: ClassVar[str] = "Paytone"


def _mode(test_mode: bool) -> str:
    return "test" if test_mode else "live"
