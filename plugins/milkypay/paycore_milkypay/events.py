"""Callbacks read into paycore's `GatewayEvent`s.

A callback is the invoice document as it is now (``{"data": <invoice>, "included":
[<refunds>]}``), sent on each status change; the platform may repeat it, batch rapid
changes and deliver out of order, so every event carries ``occurred_at`` from the
document's ``updated`` and an id that repeats when the callback does:

- the invoice's own transaction (a sale for ``charge``, an authorization for
  ``delayed_charge``), ``"{id}:{status}:{updated}"``; statuses not final yet give
  processing events, which the ledger ignores once it knows better. A hold keeps the
  status ``processing`` when its reserve is made, often within the same second, so a
  held invoice's id says so: ``"{id}:processing:reserved:{updated}"``;
- a delayed charge once paid: its capture, ``"{id}:capture"``; once voided: its void,
  ``"{id}:void"`` (the capture's or void's own reference_id is not on the invoice, so
  these name no paycore transaction: the ledger matches them by invoice);
- each refund in ``included`` with a final status, ``"{refund id}:{status}"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from paycore.transactions.model import GatewayEvent, GatewayResult, Outcome, TransactionType
from paycore_milkypay.answers import PAID, payment_result, refund_result, step_result
from paycore_milkypay.documents import DocumentReader, Invoice, InvoiceDocument, Refund

__all__ = ["FLOW_TYPES", "events_from"]

FLOW_TYPES: Mapping[str, TransactionType] = {
    "charge": TransactionType.SALE,
    "delayed_charge": TransactionType.AUTHORIZE,
}
FINAL_REFUND_STATUSES = frozenset({"processed", "process_failed"})


def events_from(read: DocumentReader, document: InvoiceDocument) -> tuple[GatewayEvent, ...]:
    """The events one callback reports, for the gateway ``read`` reads for."""
    invoice = document.invoice
    kind = FLOW_TYPES.get(invoice.payment_flow or "")
    if kind is None:
        raise read.error("the invoice's payment_flow is neither charge nor delayed_charge")
    events = [_invoice_event(read.gateway, invoice, kind)]
    if kind is TransactionType.AUTHORIZE:
        step = TransactionType.CAPTURE if invoice.status in PAID else TransactionType.VOID
        result = step_result(invoice, step)
        if result is not None and result.approved:
            events.append(
                _event(
                    read.gateway,
                    result,
                    event_id=f"{invoice.id}:{step.value}",
                    event_type=f"payment-invoice.{invoice.status}",
                    invoice=invoice,
                    kind=step,
                    transaction_id=None,
                )
            )
    events += [
        _refund_event(read.gateway, invoice, refund)
        for refund in document.refunds
        if refund.status in FINAL_REFUND_STATUSES
    ]
    return tuple(events)


def _invoice_event(gateway: str, invoice: Invoice, kind: TransactionType) -> GatewayEvent:
    state = f"{invoice.status}:reserved" if invoice.held else invoice.status
    return _event(
        gateway,
        payment_result(invoice, kind),
        event_id=f"{invoice.id}:{state}:{int(invoice.updated.timestamp())}",
        event_type=f"payment-invoice.{invoice.status}",
        invoice=invoice,
        kind=kind,
        transaction_id=invoice.reference_id,
    )


def _refund_event(gateway: str, invoice: Invoice, refund: Refund) -> GatewayEvent:
    return GatewayEvent(
        gateway=gateway,
        event_id=f"{refund.id}:{refund.status}",
        event_type=f"refund.{refund.status}",
        occurred_at=refund.updated or invoice.updated,
        transaction_type=TransactionType.REFUND,
        transaction_id=refund.reference_id,
        **_fields(refund_result(refund)),
    )


def _event(
    gateway: str,
    result: GatewayResult,
    *,
    event_id: str,
    event_type: str,
    invoice: Invoice,
    kind: TransactionType,
    transaction_id: str | None,
) -> GatewayEvent:
    fields = _fields(result)
    # An event carries no redirect: the customer still on the page is "processing".
    if fields["outcome"] is Outcome.ACTION_REQUIRED:
        fields["outcome"] = Outcome.PROCESSING
    fields["amount"] = result.amount or invoice.amount
    return GatewayEvent(
        gateway=gateway,
        event_id=event_id,
        event_type=event_type,
        occurred_at=invoice.updated,
        transaction_type=kind,
        transaction_id=transaction_id,
        **fields,
    )


def _fields(result: GatewayResult) -> dict[str, Any]:
    return {
        "outcome": result.outcome,
        "gateway_reference": result.gateway_reference,
        "transaction_reference": result.transaction_reference,
        "amount": result.amount,
        "decline_reason": result.decline_reason,
        "decline_code": result.decline_code,
        "provider_status": result.provider_status,
    }
