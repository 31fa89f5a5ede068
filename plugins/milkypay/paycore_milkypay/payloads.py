"""What paycore sends the platform: request bodies, and the links it builds itself.

Private API bodies are JSON:API documents (``{"data": {"type", "attributes"}}``);
amounts are exact major-unit numbers (`amounts.to_wire`). paycore's transaction id is
every object's ``reference_id``: the platform keeps it unique per commerce account,
which makes a resent create harmless and lets `fetch_status` find an invoice whose
answer was lost. A `PaymentMethod`'s type is the platform's service code and its
``fields`` the service's fields; without one the customer chooses on the hosted page.

Payment links and the widget are built here without a request: the hosted page
creates the invoice (``reference_id`` = paycore's transaction id) when the customer
opens it. Beside the parameters the wire notes list, they carry ``service`` and
``service_fields`` when a payment method is given, as the hosted page's documented
parameters allow.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from paycore.errors import InvalidRequest
from paycore.money import Money
from paycore.transactions.model import PaymentRequest, TransactionType
from paycore_milkypay.amounts import to_wire
from paycore_milkypay.config import MilkyPayConfig

__all__ = [
    "FLOWS",
    "check_method",
    "flow_of",
    "hosted_page_url",
    "invoice",
    "invoice_id",
    "payment_link_url",
    "prerequest",
    "process",
    "refund",
    "widget_parameters",
]

FLOWS = {TransactionType.AUTHORIZE: "delayed_charge", TransactionType.SALE: "charge"}
WIDGET_SELECTOR = "payment_widget"  # the widget's default container id


def check_method(request: PaymentRequest) -> None:
    """Refuse, before anything is sent, a payment method the platform cannot take here."""
    method = request.payment_method
    if method is None:
        return
    if method.token is not None or method.save or method.off_session:
        raise InvalidRequest(
            "MilkyPay keeps no saved payment methods: pay with a service code and its "
            "fields, or through the hosted page (no token, save or off_session)"
        )


def flow_of(request: PaymentRequest) -> str:
    """``delayed_charge`` (a hold) for an authorization, ``charge`` for a sale."""
    flow = FLOWS.get(request.transaction_type)
    if flow is None:
        raise InvalidRequest(
            f"an invoice authorizes or sells; got a {request.transaction_type} request"
        )
    return flow


def prerequest(config: MilkyPayConfig, amount: Money) -> dict[str, Any]:
    """The Public API's ``payment-prerequest``: the services offered for ``amount``."""
    return {
        "public_key": config.public_key,
        "currency": amount.currency.code,
        "amount": to_wire(amount),
    }


def invoice(request: PaymentRequest, *, test_mode: bool) -> dict[str, Any]:
    """A payment invoice: an authorization (hold) or a sale, as ``request`` says."""
    check_method(request)
    method = request.payment_method
    attributes: dict[str, Any] = {"reference_id": request.transaction_id}
    if method is not None:
        attributes["service"] = method.type
        if method.fields:
            attributes["service_fields"] = dict(method.fields)
    attributes |= {
        "currency": request.amount.currency.code,
        "amount": to_wire(request.amount),
        "flow": flow_of(request),
        "test_mode": test_mode,
    }
    if request.description:
        attributes["description"] = request.description
    customer = request.customer
    if customer is not None and customer.reference:
        attributes["customer"] = _optional(
            reference_id=customer.reference, email=customer.email, name=customer.name
        )
    attributes["metadata"] = _metadata(request)
    if request.return_url:
        attributes["return_url"] = request.return_url
        attributes["return_urls"] = {
            "success": request.return_url,
            "fail": request.cancel_url or request.return_url,
            "pending": request.return_url,
        }
    if request.notification_url:
        attributes["callback_url"] = request.notification_url
    return {"data": {"type": "payment-invoices", "attributes": attributes}}


def process(request: PaymentRequest, action: str) -> dict[str, Any]:
    """[PROPOSAL] The second step of a delayed charge: ``capture`` (of ``request.amount``;
    what it leaves is released) or ``void``."""
    attributes: dict[str, Any] = {"action": action}
    if action == "capture":
        attributes["amount"] = to_wire(request.amount)
    attributes["reference_id"] = request.transaction_id
    return {"data": {"type": "payment-invoices", "attributes": attributes}}


def refund(request: PaymentRequest) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "invoiceId": invoice_id(request),
        "amount": to_wire(request.amount),
        "reference_id": request.transaction_id,
    }
    if request.description:
        attributes["description"] = request.description
    return {"data": {"type": "refund", "attributes": attributes}}


def invoice_id(request: PaymentRequest) -> str:
    if not request.gateway_reference:
        raise InvalidRequest(
            f"a {request.transaction_type} needs the payment's gateway_reference (cpi_…)"
        )
    return request.gateway_reference


def hosted_page_url(config: MilkyPayConfig, invoice: str) -> str:
    """The hosted page of a created invoice ("secure redirection")."""
    return f"{config.base_url}/hpp/?{urlencode({'cpi': invoice})}"


def payment_link_url(config: MilkyPayConfig, request: PaymentRequest) -> str:
    """A Payment Link: the hosted page creates a charge for it when first opened."""
    _charge_only(request, "a payment link")
    query: list[tuple[str, str]] = list(_page_parameters(config, request).items())
    fields = request.payment_method.fields if request.payment_method else {}
    query += [(f"service_fields[{key}]", value) for key, value in fields.items()]
    query += [(f"metadata[{key}]", value) for key, value in _metadata(request).items()]
    customer = request.customer
    if customer is not None and customer.reference:
        who = _optional(reference_id=customer.reference, email=customer.email, name=customer.name)
        query += [(f"customer[{key}]", value) for key, value in who.items()]
    return f"{config.base_url}/hpp/?{urlencode(query, quote_via=quote)}"


def widget_parameters(config: MilkyPayConfig, request: PaymentRequest) -> dict[str, Any]:
    """[PROPOSAL] The Payment Widget's settings (``window.HPPConfig``) for a charge."""
    _charge_only(request, "a widget")
    parameters: dict[str, Any] = {
        "base_url": f"{config.base_url}/hpp/",
        **_page_parameters(config, request),
        "target": "iframe",
        "selector_id": WIDGET_SELECTOR,
    }
    method = request.payment_method
    if method is not None and method.fields:
        parameters["service_fields"] = dict(method.fields)
    return parameters


def _page_parameters(config: MilkyPayConfig, request: PaymentRequest) -> dict[str, str]:
    """What the hosted page takes from a link or the widget (amount as in ``10.50``)."""
    check_method(request)
    method = request.payment_method
    return {
        "public_key": config.public_key,
        "amount": request.amount.to_decimal_string(),
        "currency": request.amount.currency.code,
        "reference_id": request.transaction_id,
        **_optional(
            description=request.description,
            return_url=request.return_url,
            locale=config.locale,
            service=None if method is None else method.type,
        ),
    }


def _charge_only(request: PaymentRequest, what: str) -> None:
    if request.transaction_type is not TransactionType.SALE:
        raise InvalidRequest(
            f"{what} charges at once; authorize through a hosted page "
            f"(got a {request.transaction_type} request)"
        )


def _metadata(request: PaymentRequest) -> dict[str, str]:
    # paycore's ids win over the caller's keys of the same name.
    return {
        **request.metadata,
        "paycore_payment_id": request.payment_id,
        "paycore_transaction_id": request.transaction_id,
    }


def _optional(**fields: str | None) -> dict[str, str]:
    return {key: value for key, value in fields.items() if value is not None}
