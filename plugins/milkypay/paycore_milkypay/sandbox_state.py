"""The MilkyPay sandbox's state: payment invoices and refunds, their status machine, and
the callbacks every change sends. Every change happens here, under the one lock.

An invoice is ``created`` (paid on the hosted page, or at once by a test service), then
``processing``; a charge ends ``processed`` or ``process_failed``; a delayed charge
stays ``processing`` with its amount reserved (*held*) until captured (``processed``,
the rest released) or voided (``terminated``, resolution ``voided``). An unpaid invoice
is ``terminated`` by its customer or the merchant, or ``expired`` once past ``expires``
(checked lazily). Refunds lead to ``refunding``, ``partially_refunded``, ``refunded``;
chargebacks to ``partially_charged_back``, ``charged_back``. A ``reference_id`` (of an
invoice, capture, void or refund) is used once per account: a resend is told
``duplicate_reference_id`` before anything else is checked.
"""

from __future__ import annotations

import heapq
import itertools
import random
import time
from collections.abc import Callable
from typing import Any

from attrs import evolve

from paycore.money import Money
from paycore.sandbox.base import SandboxError
from paycore.sandbox.state import SandboxState, locked
from paycore_milkypay.sandbox_documents import HELD, Invoice, Refund, invoice_answer, refund_answer
from paycore_milkypay.sandbox_requests import InvoiceSpec, refused
from paycore_milkypay.sandbox_services import CHALLENGE, PAID, SUCCESS_RATE_FIELD

__all__ = ["AUTHORIZATION_WINDOW", "INVOICE_LIFETIME", "MilkyPayState"]

AUTHORIZATION_WINDOW = 7 * 24 * 3600  # seconds a delayed charge's amount stays reserved
INVOICE_LIFETIME = 24 * 3600  # seconds an unpaid invoice lives, unless it says otherwise

_REFUNDABLE = ("processed", "partially_processed", "partially_refunded", "refunding", "refunded")
_CHARGEABLE = ("processed", "partially_processed", "partially_refunded", "partially_charged_back")

Emit = Callable[[dict[str, Any], str], None]  # (callback body, event id)
Connect = Callable[[str], None]  # a callback_url to deliver to


def not_found(kind: str, object_id: str) -> SandboxError:
    return SandboxError(404, "not_found", f"there is no {kind} {object_id[:64]!r}")


class MilkyPayState(SandboxState):
    """Invoices and refunds of one commerce account."""

    def __init__(
        self,
        *,
        emit: Emit,
        connect: Connect,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
        refunds_pending: bool = False,
        invoice_lifetime: int = INVOICE_LIFETIME,
    ) -> None:
        super().__init__(seed=seed, clock=clock)
        self._emit, self._connect = emit, connect
        self.refunds_pending = refunds_pending
        self.invoice_lifetime = invoice_lifetime
        self.invoices: dict[str, Invoice] = {}
        self.refunds: dict[str, Refund] = {}
        self._references: dict[str, str] = {}  # reference_id -> the invoice it concerns
        self._draws = random.Random(seed)  # the test service's success rate
        self._serials = itertools.count(1)
        self._callbacks = itertools.count(1)
        self._expiries: list[tuple[int, str]] = []

    def new_id(self, prefix: str) -> str:
        """``prefix_`` and 16 characters, as the platform's ids (``cpi_…``, ``rfd_…``)."""
        return self.ids.new(prefix)[: len(prefix) + 17]

    # -- reads ---------------------------------------------------------------------------

    @locked
    def snapshot(self) -> dict[str, Any]:
        return {
            "invoices": {i.id: {"id": i.id, **i.attributes()} for i in self.invoices.values()},
            "refunds": {r.id: {"id": r.id, **r.attributes()} for r in self.refunds.values()},
        }

    @locked
    def taken(self, reference_id: str | None) -> bool:
        return reference_id is not None and reference_id in self._references

    @locked
    def answer(self, cpi: str) -> dict[str, Any]:
        return invoice_answer(self._invoice(cpi), self.refunds)

    @locked
    def invoice(self, cpi: str) -> Invoice:
        """A copy of the invoice ``cpi`` (for the hosted page)."""
        return evolve(self._invoice(cpi))

    @locked
    def listing(
        self, *, reference_id: str | None, status: str | None, number: int, size: int
    ) -> dict[str, Any]:
        found = [
            invoice
            for invoice in reversed(self.invoices.values())
            if reference_id in (None, invoice.reference_id) and status in (None, invoice.status)
        ]
        page = found[(number - 1) * size : number * size]
        return {
            "data": [invoice.as_json() for invoice in page],
            "included": [self.refunds[r].as_json() for invoice in page for r in invoice.refunds],
            "meta": {"total": len(found)},
        }

    # -- creation ------------------------------------------------------------------------

    @locked
    def create(
        self, spec: InvoiceSpec, *, base_url: str, source: str, pointer: str
    ) -> dict[str, Any]:
        """A new invoice; a test service processes it at once. Its answer (201's body)."""
        self._claim(spec.reference_id, pointer)
        return invoice_answer(self._create(spec, base_url=base_url, source=source), self.refunds)

    @locked
    def link(self, spec: InvoiceSpec, *, base_url: str) -> Invoice:
        """The payment link's invoice: the one of its ``reference_id``, else a new one."""
        for invoice in self.invoices.values():
            if spec.reference_id is not None and invoice.reference_id == spec.reference_id:
                return evolve(invoice)
        self._claim(spec.reference_id, "/reference_id")
        return evolve(self._create(spec, base_url=base_url, source="hpp"))

    def _create(self, spec: InvoiceSpec, *, base_url: str, source: str) -> Invoice:
        now = self.now()
        cpi = self.new_id("cpi")
        hosted = spec.service is None or spec.service.on_hosted_page
        flow_data = {
            "action": f"{base_url}/hpp/?cpi={cpi}",
            "method": "GET",
            "params": {},
            "metadata": {"sid": self.new_id("cgi"), "token": self.ids.new("tok")[4:]},
        }
        invoice = Invoice.open(
            spec,
            cpi=cpi,
            serial_number=next(self._serials),
            flow_data=flow_data if hosted else None,
            now=now,
            lifetime=self.invoice_lifetime,
            source=source,
        )
        self.invoices[cpi] = invoice
        if spec.reference_id is not None:
            self._references[spec.reference_id] = cpi
        heapq.heappush(self._expiries, (invoice.expires, cpi))
        if spec.callback_url:
            self._connect(spec.callback_url)
        if not hosted:  # a test service: "auto process", at once
            rate = int(spec.service_fields[SUCCESS_RATE_FIELD])
            self._start(invoice)
            if rate == 100 or self._draws.randrange(100) < rate:
                self._succeed(invoice)
            else:
                self._fail(invoice, "declined")
        return invoice

    # -- the hosted page -----------------------------------------------------------------

    @locked
    def pay(self, cpi: str, *, service: str, outcome: str) -> Invoice:
        """The customer paid on the hosted page, with a card of ``outcome``."""
        invoice = self._invoice(cpi)
        if not invoice.payable:
            raise SandboxError(409, "invalid_status", f"the invoice is {invoice.status}")
        invoice.service = invoice.service or service
        self._start(invoice)
        if outcome == CHALLENGE:
            invoice.challenged = True
        elif outcome == PAID:
            self._succeed(invoice)
        else:
            self._fail(invoice, outcome)
        return evolve(invoice)

    @locked
    def authenticate(self, cpi: str, *, approved: bool) -> Invoice:
        """The customer passed (or failed) 3-D Secure."""
        invoice = self._invoice(cpi)
        if not invoice.challenged:
            raise SandboxError(409, "invalid_status", f"the invoice is {invoice.status}")
        invoice.challenged = False
        if approved:
            self._succeed(invoice)
        else:
            self._fail(invoice, "authentication_failed")
        return evolve(invoice)

    # -- the merchant's operations -------------------------------------------------------

    @locked
    def terminate(self, cpi: str, *, resolution: str = "terminated") -> dict[str, Any]:
        """An unpaid invoice is closed, by the merchant or the customer's Cancel."""
        invoice = self._invoice(cpi)
        if not invoice.payable:
            raise refused("invalid_status", f"the invoice is {invoice.status}, not unpaid")
        invoice.status, invoice.resolution = "terminated", resolution
        self._changed(invoice)
        return invoice_answer(invoice, self.refunds)

    @locked
    def capture(self, cpi: str, amount: Money | None, reference_id: str) -> dict[str, Any]:
        invoice = self._invoice(cpi)
        self._claim(reference_id, "/data/attributes/reference_id")
        self._check_held(invoice)
        if invoice.reserve_expires is not None and self.now() > invoice.reserve_expires:
            raise refused("invalid_status", "the reserve expired; it can only be voided")
        captured = invoice.reserved_amount if amount is None else amount.minor_units
        if captured > invoice.reserved_amount:
            raise refused(
                "amount_exceeds_reserved",
                f"amount exceeds the {invoice.major(invoice.reserved_amount)} reserved",
                "/data/attributes/amount",
            )
        invoice.status, invoice.resolution, invoice.processed = "processed", "ok", self.now()
        invoice.processed_amount = captured
        invoice.unreserved = captured < invoice.reserved_amount
        invoice.reserved_amount = 0
        self._references[reference_id] = cpi
        self._changed(invoice)
        return invoice_answer(invoice, self.refunds)

    @locked
    def void(self, cpi: str, reference_id: str) -> dict[str, Any]:
        invoice = self._invoice(cpi)
        self._claim(reference_id, "/data/attributes/reference_id")
        self._check_held(invoice)
        invoice.status, invoice.resolution = "terminated", "voided"
        invoice.reserved_amount, invoice.unreserved = 0, True
        self._references[reference_id] = cpi
        self._changed(invoice)
        return invoice_answer(invoice, self.refunds)

    @locked
    def refund(
        self, cpi: str, amount: Money | None, reference_id: str, description: str | None
    ) -> dict[str, Any]:
        invoice = self._invoice(cpi)
        self._claim(reference_id, "/data/attributes/reference_id")
        if invoice.status not in _REFUNDABLE:
            raise refused("invalid_status", f"the invoice is {invoice.status}, not paid")
        refundable = invoice.processed_amount - invoice.taken(self.refunds)
        refunded = refundable if amount is None else amount.minor_units
        if refundable <= 0 or refunded > refundable:
            raise refused(
                "amount_exceeds_refundable",
                f"amount exceeds the {invoice.major(refundable)} left to refund",
                "/data/attributes/amount",
            )
        refund = Refund.open(
            invoice,
            rfd=self.new_id("rfd"),
            reference_id=reference_id,
            amount=refunded,
            description=description,
            pending=self.refunds_pending,
            now=self.now(),
        )
        self.refunds[refund.id] = refund
        self._references[reference_id] = cpi
        invoice.refunds.append(refund.id)
        if refund.status == "processed":
            invoice.refunded_amount += refunded
        invoice.status = invoice.refund_status(self.refunds)
        self._changed(invoice)
        return refund_answer(refund, invoice)

    # -- what the sandbox's control routes do --------------------------------------------

    @locked
    def settle(self, rfd: str, *, processed: bool) -> dict[str, Any]:
        """A refund still ``processing`` reached its end."""
        refund = self.refunds.get(rfd)
        if refund is None:
            raise not_found("refund", rfd)
        if refund.status != "processing":
            raise refused("invalid_status", f"the refund is already {refund.status}")
        invoice = self.invoices[refund.invoice_id]
        refund.status = "processed" if processed else "process_failed"
        refund.resolution = "ok" if processed else "declined"
        refund.updated = self.now()
        if processed:
            invoice.refunded_amount += refund.amount
        invoice.status = invoice.refund_status(self.refunds)
        self._changed(invoice)
        return refund_answer(refund, invoice)

    @locked
    def chargeback(self, cpi: str, amount: Money | None) -> dict[str, Any]:
        invoice = self._invoice(cpi)
        if invoice.status not in _CHARGEABLE:
            raise refused("invalid_status", f"the invoice is {invoice.status}")
        left = invoice.processed_amount - invoice.taken(self.refunds)
        charged = left if amount is None else amount.minor_units
        if left <= 0 or charged > left:
            raise refused("invalid_value", f"exceeds the {invoice.major(left)} left", "/amount")
        invoice.charged_back_amount += charged
        whole = invoice.charged_back_amount + invoice.refunded_amount >= invoice.processed_amount
        invoice.status = "charged_back" if whole else "partially_charged_back"
        self._changed(invoice)
        return invoice_answer(invoice, self.refunds)

    @locked
    def expire(self, cpi: str) -> dict[str, Any]:
        """The invoice's lifetime ends now."""
        invoice = self._invoice(cpi)
        if not (invoice.payable or invoice.challenged):
            raise refused("invalid_status", f"the invoice is {invoice.status}, not unpaid")
        self._expire(invoice)
        return invoice_answer(invoice, self.refunds)

    # -- transitions -----------------------------------------------------------------------

    def _start(self, invoice: Invoice) -> None:
        invoice.status = "processing"
        self._changed(invoice)

    def _succeed(self, invoice: Invoice) -> None:
        invoice.rrn = self.ids.numeric("rrn", 12).partition("_")[2]
        invoice.approval_code = self.ids.numeric("code", 6).partition("_")[2]
        if invoice.payment_flow == "delayed_charge":
            invoice.status, invoice.reserved_amount = HELD, invoice.amount
            invoice.reserve_expires = self.now() + AUTHORIZATION_WINDOW
        else:
            invoice.status, invoice.resolution, invoice.processed = "processed", "ok", self.now()
            invoice.processed_amount = invoice.amount
        self._changed(invoice)

    def _fail(self, invoice: Invoice, resolution: str) -> None:
        invoice.status, invoice.resolution = "process_failed", resolution
        self._changed(invoice)

    def _expire(self, invoice: Invoice) -> None:
        invoice.status, invoice.resolution, invoice.challenged = "expired", "expired", False
        self._changed(invoice)

    def _changed(self, invoice: Invoice) -> None:
        """The invoice changed: stamp it and send its callback."""
        invoice.updated = self.now()
        event_id = f"{invoice.id}:{invoice.status}:{invoice.updated}:{next(self._callbacks)}"
        self._emit(invoice_answer(invoice, self.refunds), event_id)

    def _sweep(self) -> None:
        now = self.now()
        while self._expiries and self._expiries[0][0] <= now:
            _, cpi = heapq.heappop(self._expiries)
            invoice = self.invoices[cpi]
            if invoice.payable or invoice.challenged:
                self._expire(invoice)

    # -- helpers ---------------------------------------------------------------------------

    def _invoice(self, cpi: str) -> Invoice:
        invoice = self.invoices.get(cpi)
        if invoice is None:
            raise not_found("payment invoice", cpi)
        return invoice

    def _claim(self, reference_id: str | None, pointer: str) -> None:
        if reference_id is not None and reference_id in self._references:
            raise refused(
                "duplicate_reference_id", "reference_id is already used by another request", pointer
            )

    def _check_held(self, invoice: Invoice) -> None:
        if not invoice.held:
            raise refused("invalid_status", f"the invoice is {invoice.status}, not held")
