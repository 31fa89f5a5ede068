"""What a cell of the fault matrix (`paycore.testing.contract_faults`) is made of.

- `MatrixFault`: the faults, whether each can have reached the provider, and whether
  the provider carries the operation out in spite of it;
- `FaultedProvider`: an httpx request hook arming the sandbox for each mutation
  attempt with a one-shot fault, and counting them;
- `ProviderView`: the ledger's payment beside what the provider's state says, and
  the check that they agree (done once, or not at all);
- `provider_objects` and `growth`: how many objects of each kind the provider made.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

import attrs
import httpx

from paycore.gateways.base import Operation, RequestPolicy
from paycore.sandbox.faults import Fault

if TYPE_CHECKING:
    from paycore.sandbox.base import Sandbox
    from paycore.testing.contract_support import ProviderTotals
    from paycore.transactions.records import Payment, PaymentTransaction
    from paycore.transactions.services import PaymentTransactionServices

__all__ = [
    "FaultedProvider",
    "MatrixFault",
    "ProviderView",
    "growth",
    "provider_objects",
    "status_text",
]


class MatrixFault(enum.StrEnum):
    """A fault of the matrix, in the order of the table in `paycore.testing.contract_faults`."""

    REFUSED = "refused"
    CONNECT_TIMEOUT = "connect_timeout"
    READ_TIMEOUT = "read_timeout"
    RESET = "reset"
    SERVER_ERROR = "server_error"
    MALFORMED = "malformed"
    SLOW = "slow"

    @property
    def sent(self) -> bool:
        """Whether the request can have reached the provider."""
        return self not in (MatrixFault.REFUSED, MatrixFault.CONNECT_TIMEOUT)

    @property
    def provider_does_it(self) -> bool:
        """Whether the provider carries the operation out in spite of the fault."""
        return self.sent and self is not MatrixFault.SERVER_ERROR

    @property
    def sandbox_fault(self) -> Fault | None:
        """The sandbox's one-shot fault for each mutation attempt; None for a fault of
        the network (nothing reaches the sandbox)."""
        return _SANDBOX_FAULTS.get(self)


_SANDBOX_FAULTS = {
    MatrixFault.READ_TIMEOUT: Fault.TIMEOUT,
    MatrixFault.RESET: Fault.DROP,
    MatrixFault.SERVER_ERROR: Fault.ERROR,
    MatrixFault.MALFORMED: Fault.GARBLE,
    MatrixFault.SLOW: Fault.LATE,
}


@attrs.define(kw_only=True)
class ProviderView:
    """The ledger's payment and what the provider's state says about it."""

    operation: Operation
    before: tuple[int, int]
    payment: Payment
    problems: list[str]
    provider: ProviderTotals | None = None
    holds: bool | None = None
    truth: str = ""

    def agrees(self, *, done: bool, moved: int, amount: int) -> None:
        """The ledger equals the provider, which did the operation once, or not at all."""
        payment, provider, operation = self.payment, self.provider, self.operation
        assert self.problems == [], self.problems
        if provider is None:
            assert not done, f"{operation} was done, yet the payment has no provider reference"
            assert payment.totals() == dict.fromkeys(payment.totals(), 0)
            return
        ledger = (payment.captured.minor_units, payment.refunded.minor_units)
        assert ledger == (provider.captured, provider.refunded), (
            f"the ledger has captured and refunded {ledger}; the provider says "
            f"{(provider.captured, provider.refunded)}"
        )
        once = 1 if done else 0
        if operation is Operation.CAPTURE:
            assert provider.captured == self.before[0] + moved * once, "captured once, or not"
            assert provider.captures in (None, once)
        elif operation is Operation.SALE:
            assert provider.captured == amount * once, "paid once, or not"
        elif operation is Operation.REFUND:
            assert provider.refunded == self.before[1] + moved * once, "refunded once, or not"
            assert provider.refunds in (None, once)
        elif self.holds is not None:
            holding = done if operation is Operation.AUTHORIZE else not done
            assert self.holds is holding, f"{operation} done={done}, yet {self.truth}"


class FaultedProvider:
    """Services whose every mutation attempt meets one fault, and how many they sent."""

    def __init__(
        self, fault: MatrixFault, sandbox: Sandbox, services: PaymentTransactionServices
    ) -> None:
        self.fault = fault
        self.sandbox = sandbox
        self.services = services
        self.mutations = 0

    def arm(self, request: httpx.Request) -> None:
        """httpx's request hook: queue the fault for a mutation about to be sent."""
        if not RequestPolicy.of(request).mutation:
            return
        self.mutations += 1
        if self.fault.sandbox_fault is not None:
            self.sandbox.queue_faults(self.fault.sandbox_fault)

    def disarm(self) -> None:
        """Drop the faults queued for requests that were never sent."""
        self.sandbox.set_faults(attrs.evolve(self.sandbox.faults, next=()))


def provider_objects(sandbox: Sandbox) -> dict[str, int]:
    """How many objects of each kind the provider's state holds (payments, refunds …)."""
    state = sandbox.snapshot()
    return {kind: len(items) for kind, items in state.items() if isinstance(items, list | dict)}


def growth(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    grown = {kind: count - before.get(kind, 0) for kind, count in after.items()}
    return {kind: count for kind, count in grown.items() if count}


def status_text(transaction: PaymentTransaction) -> str:
    failure = f" ({transaction.failure})" if transaction.failure else ""
    return f"{transaction.status}{failure}"
