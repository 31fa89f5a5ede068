"""The platform's JSON:API documents read into typed views: invoices, refunds, errors.

An answer (and a callback) is ``{"data": <resource>, "included": [...]}``; a resource
is ``{"type", "id", "attributes", "relationships", "links"}``. `DocumentReader` checks
every field it reads and raises `GatewayProtocolError` naming the field (never
quoting a value) when one is not as documented, so what `answers` and `events` get is
well formed: amounts as exact `Money`, timestamps (unix seconds) as aware datetimes,
statuses from the documented lists.

[PROPOSAL] ``included`` beside an invoice holds its refund documents, in creation
order; a refund's answer includes its invoice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx
from attrs import frozen

from paycore.gateways.fields import AnswerReader
from paycore.money import Money
from paycore_milkypay.amounts import money_from

__all__ = [
    "INVOICE_STATUSES",
    "REFUND_STATUSES",
    "REQUEST_ID_HEADER",
    "DocumentReader",
    "ErrorAnswer",
    "FlowData",
    "Invoice",
    "InvoiceDocument",
    "Refund",
]

REQUEST_ID_HEADER = "X-Request-Id"

# The documented invoice statuses (providers.md §1.5).
INVOICE_STATUSES = frozenset(
    {
        "created",
        "processing",
        "process_pending",
        "processed",
        "partially_processed",
        "process_error",
        "process_failed",
        "expired",
        "terminated",
        "refunding",
        "refund_pending",
        "partially_refunded",
        "refunded",
        "refund_error",
        "refund_failed",
        "charged_back",
        "partially_charged_back",
    }
)
REFUND_STATUSES = frozenset({"processing", "processed", "process_failed"})  # [PROPOSAL]

_INVOICE_TYPES = frozenset({"payment-invoices", "payment-invoice"})
_REFUND_TYPES = frozenset({"refunds", "refund"})


@frozen(kw_only=True)
class FlowData:
    """Where the platform sends the customer: ``method`` (GET or POST) ``action`` with
    ``params``."""

    action: str
    method: str
    params: Mapping[str, Any]


@frozen(kw_only=True)
class Invoice:
    """A payment invoice (``cpi_…``), as far as paycore reads it."""

    id: str
    status: str
    resolution: str | None
    reference_id: str | None
    payment_flow: str | None  # "charge", "delayed_charge"
    amount: Money
    processed_amount: Money
    refunded_amount: Money
    reserved_amount: Money
    reserve_expires: datetime | None
    expires: datetime | None
    updated: datetime
    test_mode: bool | None
    flow_data: FlowData | None

    @property
    def held(self) -> bool:
        """Whether a delayed charge holds a reserve, waiting for its capture or void."""
        return self.status == "processing" and self.reserved_amount.is_positive()


@frozen(kw_only=True)
class Refund:
    """A refund (``rfd_…``) of an invoice."""

    id: str
    invoice_id: str
    reference_id: str | None
    amount: Money
    status: str
    resolution: str | None
    updated: datetime | None


@frozen(kw_only=True)
class InvoiceDocument:
    """An invoice with its refunds (from ``included``)."""

    invoice: Invoice
    refunds: tuple[Refund, ...]


@frozen(kw_only=True)
class ErrorAnswer:
    """An error answer: its codes in order (``errors[].code``, else ``error_codes``),
    the first error's ``detail``, and the platform's request id."""

    http_status: int
    codes: tuple[str, ...]
    detail: str | None
    request_id: str | None

    @property
    def code(self) -> str | None:
        return self.codes[0] if self.codes else None


class DocumentReader(AnswerReader):
    """`AnswerReader` for the platform's documents, on behalf of gateway ``gateway``."""

    def invoice_document(self, body: Mapping[str, Any]) -> InvoiceDocument:
        """``{"data": <invoice>, "included": [<refund>…]}``."""
        invoice = self.invoice(body.get("data"))
        return InvoiceDocument(invoice=invoice, refunds=self._refunds_of(body, invoice.id))

    def invoice_list(self, body: Mapping[str, Any]) -> tuple[InvoiceDocument, ...]:
        """``{"data": [<invoice>…], "included": [<refund>…]}``: each with its refunds."""
        invoices = [self.invoice(item) for item in self.array(body, "data")]
        return tuple(
            InvoiceDocument(invoice=invoice, refunds=self._refunds_of(body, invoice.id))
            for invoice in invoices
        )

    def refund_document(self, body: Mapping[str, Any]) -> Refund:
        """``{"data": <refund>, "included": [<invoice>]}``: the refund."""
        return self.refund(body.get("data"))

    def invoice(self, value: Any) -> Invoice:
        resource = self._resource(value, _INVOICE_TYPES, "the invoice")
        attributes = self._attributes(resource, "the invoice")
        status = self.text(attributes, "status")
        if status not in INVOICE_STATUSES:
            raise self.error(f"unknown invoice status {status[:32]!r}")
        currency = self.text(attributes, "currency")
        flow_data = attributes.get("flow_data")
        return Invoice(
            id=self.text(resource, "id"),
            status=status,
            resolution=self.optional_text(attributes, "resolution"),
            reference_id=self.optional_text(attributes, "reference_id"),
            payment_flow=self.optional_text(attributes, "payment_flow"),
            amount=self.money(attributes, "amount", currency),
            processed_amount=self._amount_or_zero(attributes, "processed_amount", currency),
            refunded_amount=self._amount_or_zero(attributes, "refunded_amount", currency),
            reserved_amount=self._amount_or_zero(attributes, "reserved_amount", currency),
            reserve_expires=self.optional_timestamp(attributes, "reserve_expires"),
            expires=self.optional_timestamp(attributes, "expires"),
            updated=self.timestamp(attributes, "updated"),
            test_mode=self._optional_bool(attributes, "test_mode"),
            flow_data=None if flow_data is None else self._flow_data(flow_data),
        )

    def refund(self, value: Any) -> Refund:
        resource = self._resource(value, _REFUND_TYPES, "the refund")
        attributes = self._attributes(resource, "the refund")
        status = self.text(attributes, "status")
        if status not in REFUND_STATUSES:
            raise self.error(f"unknown refund status {status[:32]!r}")
        return Refund(
            id=self.text(resource, "id"),
            invoice_id=self._invoice_id_of(resource, attributes),
            reference_id=self.optional_text(attributes, "reference_id"),
            amount=self.money(attributes, "amount", self.text(attributes, "currency")),
            status=status,
            resolution=self.optional_text(attributes, "resolution"),
            updated=self.optional_timestamp(attributes, "updated"),
        )

    def error_answer(self, response: httpx.Response) -> ErrorAnswer:
        """A 4xx answer's error body: JSON:API ``errors`` and/or ``error_codes``."""
        body = self.json(response)
        errors = [self.object(item, "an error") for item in body.get("errors") or ()]
        codes = [self.text(error, "code") for error in errors if error.get("code") is not None]
        if not codes:
            codes = [self._code(item) for item in body.get("error_codes") or ()]
        if not (errors or codes):
            raise self.error(
                "the error answer has neither errors nor error_codes",
                http_status=response.status_code,
            )
        detail = self.optional_text(errors[0], "detail") if errors else None
        request_id = response.headers.get(REQUEST_ID_HEADER) or self.optional_text(
            body, "request_id"
        )
        return ErrorAnswer(
            http_status=response.status_code,
            codes=tuple(code[:64] for code in codes),
            detail=detail,
            request_id=request_id,
        )

    def money(self, body: Mapping[str, Any], key: str, currency: str) -> Money:
        return money_from(body.get(key), currency, what=repr(key), gateway=self.gateway)

    # -- parts -------------------------------------------------------------------------

    def _refunds_of(self, body: Mapping[str, Any], invoice_id: str) -> tuple[Refund, ...]:
        included = body.get("included") or []
        if not isinstance(included, list):
            raise self.error("the answer's 'included' is not an array")
        refunds = []
        for item in included:
            resource = self.object(item, "an included resource")
            if resource.get("type") in _REFUND_TYPES:
                refund = self.refund(resource)
                if refund.invoice_id == invoice_id:
                    refunds.append(refund)
        return tuple(refunds)

    def _resource(self, value: Any, types: frozenset[str], what: str) -> Mapping[str, Any]:
        resource = self.object(value, what)
        if resource.get("type") not in types:
            raise self.error(f"{what} is not a {sorted(types)[-1]} resource")
        return resource

    def _attributes(self, resource: Mapping[str, Any], what: str) -> Mapping[str, Any]:
        return self.object(resource.get("attributes"), f"{what}'s attributes")

    def _amount_or_zero(self, body: Mapping[str, Any], key: str, currency: str) -> Money:
        # The platform leaves out (or nulls) the amounts that do not apply yet.
        if body.get(key) is None:
            return money_from(0, currency, what=repr(key), gateway=self.gateway)
        return self.money(body, key, currency)

    def _optional_bool(self, body: Mapping[str, Any], key: str) -> bool | None:
        value = body.get(key)
        if value is not None and not isinstance(value, bool):
            raise self.error(f"the answer's {key!r} is not a boolean")
        return value

    def _flow_data(self, value: Any) -> FlowData:
        flow_data = self.object(value, "the invoice's flow_data")
        method = (self.optional_text(flow_data, "method") or "GET").upper()
        if method not in ("GET", "POST"):
            raise self.error("the invoice's flow_data method is neither GET nor POST")
        return FlowData(
            action=self.text(flow_data, "action"),
            method=method,
            params=self.object(flow_data.get("params") or {}, "the flow_data's params"),
        )

    def _invoice_id_of(self, resource: Mapping[str, Any], attributes: Mapping[str, Any]) -> str:
        if attributes.get("invoice_id") is not None:
            return self.text(attributes, "invoice_id")
        relationships = self.object(resource.get("relationships") or {}, "the relationships")
        related = self.object(relationships.get("payment-invoice"), "the refund's invoice")
        return self.text(self.object(related.get("data"), "the refund's invoice"), "id")

    def _code(self, value: Any) -> str:
        if not isinstance(value, str):
            raise self.error("the answer's error_codes are not strings")
        return value
