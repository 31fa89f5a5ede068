"""OrderPayments: an order's payments captured, cancelled and refunded by instruction.

The logic is `paycore.oms.coordination`; `OrderPayments` carries it out in the calling
thread over `PaymentTransactionServices`, `AsyncOrderPayments` on an event loop over
`AsyncPaymentTransactionServices`. An order's payments are the ledger's payments whose
owner is the order id (a completed checkout hands its payments to its order)::

    oms = OrderPayments(services)
    oms.capture_for_fulfillment("ord_1", "shp_1", Money(2500, "EUR"))
    oms.capture_for_fulfillment("ord_1", "shp_2", Money(500, "EUR"), final=True)
    oms.refund_for_return("ord_1", "ret_1", Money(1200, "EUR"))
    oms.cancel("ord_2")  # release everything authorized and not captured

Each returns an `InstructionResult`; calling again with the same ids does nothing twice.
An instruction that cannot be carried out (more than the order holds, another
currency, an operation a gateway lacks) raises before anything is sent.
"""

from __future__ import annotations

from datetime import timedelta

from paycore.money import Money
from paycore.oms.coordination import OmsCoordination
from paycore.oms.model import Instruction, InstructionKind, InstructionResult
from paycore.transactions.async_services import AsyncPaymentTransactionServices
from paycore.transactions.records import Payment, PaymentTransaction
from paycore.transactions.services import PaymentTransactionServices

__all__ = ["AsyncOrderPayments", "OrderPayments"]

DEFAULT_EXPIRING_LIMIT = 1000


class OrderPayments(OmsCoordination):
    """Capture on fulfilment, cancel, refund on return; see the module docstring.

    Thread-safe: share one per process (over one `PaymentTransactionServices`).
    """

    def __init__(self, services: PaymentTransactionServices) -> None:
        self._setup(services)
        self.services = services

    def carry_out(self, instruction: Instruction) -> InstructionResult:
        """Carry out ``instruction``; its result (``skipped`` when it was done before)."""
        return self.services._carry_out(self._carry_out(instruction, dry_run=False))

    def plan(self, instruction: Instruction) -> InstructionResult:
        """What ``instruction`` would do (in ``message``), sending and writing nothing."""
        return self.services._carry_out(self._carry_out(instruction, dry_run=True))

    def capture_for_fulfillment(
        self, order_id: str, fulfillment_id: str, amount: Money, *, final: bool = False
    ) -> InstructionResult:
        """Capture ``amount`` for a fulfilment, from the order's payments in the order they
        were made. ``final``: the order's last capture; what stays authorized is released."""
        return self.carry_out(
            Instruction(
                kind=InstructionKind.CAPTURE,
                order_id=order_id,
                reference=fulfillment_id,
                amount=amount,
                final=final,
            )
        )

    def cancel(
        self, order_id: str, amount: Money | None = None, *, cancellation_id: str | None = None
    ) -> InstructionResult:
        """Release what is authorized and not captured: all of it, or ``amount`` (whole
        authorizations, last first; what does not fit is reported ``held``)."""
        return self.carry_out(
            Instruction(
                kind=InstructionKind.CANCEL,
                order_id=order_id,
                reference=cancellation_id,
                amount=amount,
            )
        )

    def refund_for_return(self, order_id: str, return_id: str, amount: Money) -> InstructionResult:
        """Refund ``amount`` for a return, from the captured payments, last first."""
        return self.carry_out(
            Instruction(
                kind=InstructionKind.REFUND, order_id=order_id, reference=return_id, amount=amount
            )
        )

    def expiring(
        self, within: timedelta, *, limit: int = DEFAULT_EXPIRING_LIMIT
    ) -> tuple[Payment, ...]:
        """Authorizations still holding money that expire within ``within``, soonest first."""
        return self.services._carry_out(self._expiring(within, limit))

    def reauthorize(self, payment_id: str) -> PaymentTransaction:
        """Authorize again what the payment holds, with its saved method; the old
        authorization is released once the new one succeeds. Returns the new one."""
        return self.services._carry_out(self._reauthorize(payment_id))


class AsyncOrderPayments(OmsCoordination):
    """`OrderPayments` on an event loop, over `AsyncPaymentTransactionServices`."""

    def __init__(self, services: AsyncPaymentTransactionServices) -> None:
        self._setup(services)
        self.services = services

    async def carry_out(self, instruction: Instruction) -> InstructionResult:
        return await self.services._carry_out(self._carry_out(instruction, dry_run=False))

    async def plan(self, instruction: Instruction) -> InstructionResult:
        return await self.services._carry_out(self._carry_out(instruction, dry_run=True))

    async def capture_for_fulfillment(
        self, order_id: str, fulfillment_id: str, amount: Money, *, final: bool = False
    ) -> InstructionResult:
        return await self.carry_out(
            Instruction(
                kind=InstructionKind.CAPTURE,
                order_id=order_id,
                reference=fulfillment_id,
                amount=amount,
                final=final,
            )
        )

    async def cancel(
        self, order_id: str, amount: Money | None = None, *, cancellation_id: str | None = None
    ) -> InstructionResult:
        return await self.carry_out(
            Instruction(
                kind=InstructionKind.CANCEL,
                order_id=order_id,
                reference=cancellation_id,
                amount=amount,
            )
        )

    async def refund_for_return(
        self, order_id: str, return_id: str, amount: Money
    ) -> InstructionResult:
        return await self.carry_out(
            Instruction(
                kind=InstructionKind.REFUND, order_id=order_id, reference=return_id, amount=amount
            )
        )

    async def expiring(
        self, within: timedelta, *, limit: int = DEFAULT_EXPIRING_LIMIT
    ) -> tuple[Payment, ...]:
        return await self.services._carry_out(self._expiring(within, limit))

    async def reauthorize(self, payment_id: str) -> PaymentTransaction:
        return await self.services._carry_out(self._reauthorize(payment_id))
