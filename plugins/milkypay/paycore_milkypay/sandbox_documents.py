"""The MilkyPay sandbox's objects, payment invoices and refunds, and their JSON:API
documents.

Amounts are kept as integer minor units and written as exact `Decimal` major units
(``100.55``, ``1000`` for JPY, ``1.005`` for KWD); times are integer unix seconds.
What only the sandbox needs (a test service's fields, a pending 3-D Secure) is never
written out; no card number is ever kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from attrs import Factory, define

from paycore.money import Money
from paycore_milkypay.sandbox_requests import InvoiceSpec

__all__ = ["HELD", "Invoice", "Refund", "invoice_answer", "public_invoice", "refund_answer"]

HELD = "processing"  # a delayed charge's status while its amount is reserved


@define(kw_only=True)
class Invoice:
    """A payment invoice (``cpi_…``), with ``refunds`` the ids of its refunds in order."""

    id: str
    serial_number: int
    reference_id: str | None
    service: str | None
    currency: str
    amount: int
    payment_flow: str  # "charge" or "delayed_charge"
    flow: str | None
    flow_data: dict[str, Any] | None
    description: str | None
    metadata: dict[str, Any]
    return_url: str | None
    return_urls: dict[str, str] | None
    callback_url: str | None
    customer: dict[str, Any] | None
    expires: int
    created: int
    updated: int
    source: str
    status: str = "created"
    resolution: str | None = None
    processed_amount: int = 0
    refunded_amount: int = 0
    reserved_amount: int = 0
    charged_back_amount: int = 0
    reserve_expires: int | None = None
    unreserved: bool = False
    processed: int | None = None
    rrn: str | None = None
    approval_code: str | None = None
    test_mode: bool = True
    refunds: list[str] = Factory(list)
    # The sandbox's own: never written out.
    service_fields: dict[str, str] = Factory(dict)
    challenged: bool = False  # waiting for the customer's 3-D Secure

    @classmethod
    def open(
        cls,
        spec: InvoiceSpec,
        *,
        cpi: str,
        serial_number: int,
        flow_data: dict[str, Any] | None,
        now: int,
        lifetime: int,
        source: str,
    ) -> Invoice:
        """A new invoice as ``spec`` asks (on the hosted page when it has ``flow_data``)."""
        return cls(
            id=cpi,
            serial_number=serial_number,
            reference_id=spec.reference_id,
            service=spec.service.code if spec.service else None,
            currency=spec.amount.currency.code,
            amount=spec.amount.minor_units,
            payment_flow=spec.flow,
            flow="hpp" if flow_data else None,
            flow_data=flow_data,
            description=spec.description,
            metadata=spec.metadata,
            return_url=spec.return_url,
            return_urls=spec.return_urls,
            callback_url=spec.callback_url,
            customer=spec.customer,
            expires=spec.expires or now + lifetime,
            created=now,
            updated=now,
            source=source,
            service_fields=spec.service_fields,
        )

    @property
    def held(self) -> bool:
        """Authorized and not yet captured or voided (a delayed charge's reserve)."""
        return self.status == HELD and self.reserved_amount > 0

    @property
    def payable(self) -> bool:
        """Whether the customer may still pay it on the hosted page."""
        return self.status == "created"

    def taken(self, refunds: Mapping[str, Refund]) -> int:
        """What its refunds and chargebacks took, or are taking (refunds ``processing``)."""
        taken = (refunds[r] for r in self.refunds if refunds[r].status != "process_failed")
        return self.charged_back_amount + sum(refund.amount for refund in taken)

    def refund_status(self, refunds: Mapping[str, Refund]) -> str:
        """Its status once paid, after its refunds."""
        if any(refunds[r].status == "processing" for r in self.refunds):
            return "refunding"
        if self.refunded_amount == 0:
            return "processed"
        return "refunded" if self.refunded_amount >= self.processed_amount else "partially_refunded"

    def major(self, minor_units: int) -> Decimal:
        return Money(minor_units, self.currency).to_decimal()

    def attributes(self) -> dict[str, Any]:
        return {
            "serial_number": self.serial_number,
            "status": self.status,
            "resolution": self.resolution,
            "moderation_required": False,
            "reference_id": self.reference_id,
            "service": self.service,
            "currency": self.currency,
            "service_currency": self.currency,
            "amount": self.major(self.amount),
            "payment_amount": self.major(self.amount),
            "processed_amount": self.major(self.processed_amount),
            "refunded_amount": self.major(self.refunded_amount),
            "reserved_amount": self.major(self.reserved_amount),
            "charged_back_amount": self.major(self.charged_back_amount),
            "fee": self.major(0),
            "deposit": self.major(0),
            "reserve_expires": self.reserve_expires,
            "unreserved": self.unreserved,
            "payment_flow": self.payment_flow,
            "flow": self.flow,
            "flow_data": self.flow_data,
            "test_mode": self.test_mode,
            "description": self.description,
            "metadata": self.metadata,
            "return_url": self.return_url,
            "return_urls": self.return_urls,
            "callback_url": self.callback_url,
            "customer": self.customer,
            "expires": self.expires,
            "created": self.created,
            "updated": self.updated,
            "processed": self.processed,
            "rrn": self.rrn,
            "approval_code": self.approval_code,
            "payload": None,
            "original_data": None,
            "source": self.source,
        }

    def as_json(self) -> dict[str, Any]:
        service = {"type": "payment-services", "id": self.service} if self.service else None
        return {
            "type": "payment-invoices",
            "id": self.id,
            "attributes": self.attributes(),
            "relationships": {
                "payment-service": {"data": service},
                "refunds": {"data": [{"type": "refunds", "id": rfd} for rfd in self.refunds]},
            },
            "links": {"self": f"/api/payment-invoices/{self.id}"},
        }


@define(kw_only=True)
class Refund:
    """A refund (``rfd_…``) of part or all of an invoice's paid amount."""

    id: str
    invoice_id: str
    reference_id: str
    amount: int
    currency: str
    status: str  # "processing", "processed" or "process_failed"
    resolution: str | None
    description: str | None
    created: int
    updated: int

    @classmethod
    def open(
        cls,
        invoice: Invoice,
        *,
        rfd: str,
        reference_id: str,
        amount: int,
        description: str | None,
        pending: bool,
        now: int,
    ) -> Refund:
        """A new refund of ``invoice``: ``processed`` at once, or ``processing`` if ``pending``."""
        return cls(
            id=rfd,
            invoice_id=invoice.id,
            reference_id=reference_id,
            amount=amount,
            currency=invoice.currency,
            status="processing" if pending else "processed",
            resolution=None if pending else "ok",
            description=description,
            created=now,
            updated=now,
        )

    def attributes(self) -> dict[str, Any]:
        return {
            "invoice_id": self.invoice_id,
            "reference_id": self.reference_id,
            "amount": Money(self.amount, self.currency).to_decimal(),
            "currency": self.currency,
            "status": self.status,
            "resolution": self.resolution,
            "description": self.description,
            "created": self.created,
            "updated": self.updated,
        }

    def as_json(self) -> dict[str, Any]:
        invoice = {"type": "payment-invoices", "id": self.invoice_id}
        return {
            "type": "refunds",
            "id": self.id,
            "attributes": self.attributes(),
            "relationships": {"payment-invoice": {"data": invoice}},
        }


def invoice_answer(invoice: Invoice, refunds: Mapping[str, Refund]) -> dict[str, Any]:
    """``{"data": <invoice>, "included": [<its refunds>]}``: answers and callbacks alike."""
    return {
        "data": invoice.as_json(),
        "included": [refunds[rfd].as_json() for rfd in invoice.refunds],
    }


def refund_answer(refund: Refund, invoice: Invoice) -> dict[str, Any]:
    """``{"data": <refund>, "included": [<its invoice>]}``."""
    return {"data": refund.as_json(), "included": [invoice.as_json()]}


def public_invoice(invoice: Invoice) -> dict[str, Any]:
    """What the Public API shows anyone holding the id: no more than the hosted page needs."""
    return {
        "data": {
            "type": "payment-invoices",
            "id": invoice.id,
            "attributes": {
                "status": invoice.status,
                "amount": invoice.major(invoice.amount),
                "currency": invoice.currency,
                "flow": invoice.flow,
                "flow_data": invoice.flow_data,
                "return_url": invoice.return_url,
                "return_urls": invoice.return_urls,
            },
        }
    }
