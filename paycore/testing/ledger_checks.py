"""What `paycore.testing.ledger_machine.LedgerMachine` checks after every step.

The ledger is consistent with itself (every payment's totals replay from its
transactions, its status follows them, captured ≤ authorized, refunded ≤ captured, one
transaction per idempotency key, nothing left half-recorded, no transaction handed out
lost) and with every provider, whose truth is what the gateway's contract reads from
its sandbox (`ContractBase.provider_totals`): while a transaction is unsettled the
ledger may be behind the provider by that transaction's amount, never ahead; with none
unsettled, and after reconciliation, it equals the provider, operation for operation.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import TYPE_CHECKING, ClassVar

from attrs import frozen

from paycore.money import Money
from paycore.testing.ledger_world import BUDGET, GatewayUnderTest, LedgerClock, LedgerWorld
from paycore.transactions import states
from paycore.transactions.model import DeclineReason, TransactionStatus, TransactionType
from paycore.transactions.orchestration import NOT_FOUND_MARGIN
from paycore.transactions.records import IN_FLIGHT, UNRESOLVED, Payment, PaymentTransaction

if TYPE_CHECKING:
    from paycore.testing.contract_base import ContractBase
    from paycore.transactions.services import PaymentTransactionServices

__all__ = ["Call", "LedgerChecks", "expected_decline"]

S = TransactionStatus
T = TransactionType


@frozen
class Call:
    """One mutation as a caller made it, so it can be made again with its key."""

    operation: str  # authorize, sale, capture, void, refund
    payment_id: str
    key: str
    amount: Money | None = None
    final: bool = False


def expected_decline(contract: ContractBase, method: str) -> DeclineReason:
    """The reason the gateway gives for declining a payment made by ``method``."""
    if method == "insufficient_funds" and contract.insufficient_funds is not None:
        return DeclineReason.INSUFFICIENT_FUNDS
    return contract.declined_reason


class LedgerChecks:
    """The machine's checks; it provides the attributes below."""

    world: ClassVar[LedgerWorld]
    services: PaymentTransactionServices
    clock: LedgerClock
    payment_ids: list[str]
    gateway_of: dict[str, GatewayUnderTest]
    returned: dict[str, str]
    paid_on_page: set[str]
    unresolved: list[str]

    def is_open(self, transaction: PaymentTransaction) -> bool:
        """Whether the provider may know more of ``transaction`` than the ledger: its
        outcome is not known yet, or the customer acted on the page it waits on."""
        return transaction.status in UNRESOLVED or (
            transaction.status is S.REQUIRES_ACTION and transaction.id in self.paid_on_page
        )

    def check(self, *, reconciled: bool = False) -> None:
        everything: dict[str, PaymentTransaction] = {}
        unresolved = []
        for payment_id in self.payment_ids:
            payment, transactions = self.read(payment_id)
            assert states.problems(payment, transactions) == [], (payment, transactions)
            keys = [transaction.idempotency_key for transaction in transactions]
            assert len(keys) == len(set(keys)), f"two transactions under one key: {transactions}"
            for transaction in transactions:
                everything[transaction.id] = transaction
                # Every call finished recording its outcome: nothing is left half-done.
                assert transaction.status is not S.PENDING, transaction
                if self.is_open(transaction):
                    unresolved.append(transaction.id)
            self.check_against_provider(payment, transactions, reconciled=reconciled)
        self.unresolved = unresolved
        assert not (reconciled and unresolved), f"reconciliation left {unresolved} unsettled"
        # No transaction handed out is lost.
        for transaction_id, payment_id in self.returned.items():
            assert everything[transaction_id].payment_id == payment_id

    def read(self, payment_id: str) -> tuple[Payment, tuple[PaymentTransaction, ...]]:
        """The payment and its transactions as of one moment: the web app applies
        webhooks meanwhile, so the pair is read until the payment did not change."""
        payment = self.services.get_payment(payment_id)
        while True:
            transactions = self.services.list_transactions(payment_id)
            again = self.services.get_payment(payment_id)
            if again == payment:
                return payment, transactions
            payment = again

    def check_against_provider(
        self,
        payment: Payment,
        transactions: tuple[PaymentTransaction, ...],
        *,
        reconciled: bool,
    ) -> None:
        """Read after the ledger, the provider is where the ledger is, or ahead of it by
        what is unsettled (one mutation of a payment is in flight at a time)."""
        if payment.gateway_reference is None:
            # Nothing the provider could be asked about; nothing it confirmed.
            assert (payment.captured.minor_units, payment.refunded.minor_units) == (0, 0)
            return
        gateway = self.gateway_of[payment.id]
        theirs = gateway.contract.provider_totals(gateway.sandbox, payment.gateway_reference)
        captured, refunded = payment.captured.minor_units, payment.refunded.minor_units
        unsettled = [t for t in transactions if self.is_open(t)]
        if not unsettled:
            assert (captured, refunded) == (theirs.captured, theirs.refunded), (payment, theirs)
            # Each operation once at the provider, whatever was retried or replayed.
            done = Counter(t.type for t in transactions if t.succeeded)
            if theirs.refunds is not None:
                assert theirs.refunds == done[T.REFUND], (theirs, transactions)
            if theirs.captures is not None:
                once = (done[T.CAPTURE], done[T.CAPTURE] + done[T.SALE])
                assert theirs.captures in once, (theirs, transactions)
            return
        assert not reconciled

        def unsettled_amount(*kinds: TransactionType) -> int:
            return sum(t.amount.minor_units for t in unsettled if t.type in kinds)

        behind = theirs.captured - captured
        assert 0 <= behind <= unsettled_amount(T.CAPTURE, T.SALE), (payment, theirs, unsettled)
        behind = theirs.refunded - refunded
        assert 0 <= behind <= unsettled_amount(T.REFUND), (payment, theirs, unsettled)

    def check_answer(self, before: PaymentTransaction, answer: PaymentTransaction) -> None:
        """What asking the provider about ``before`` may answer."""
        if answer.status is S.FAILED and before.status in IN_FLIGHT:
            # "Not found" is believed only once no attempt can still be on its way,
            # counted from when the transaction was last sent.
            assert self.clock() >= before.updated_at + BUDGET + NOT_FOUND_MARGIN, answer
        if before.status.is_final:
            assert answer == before, "asking about a settled transaction changed it"

    def resolve_everything(self) -> None:
        """What the reconciliation job does, late enough that "the provider has no
        record" is final (the exchange budget, then the margin for clocks and queues)."""
        self.clock.skipped += BUDGET + NOT_FOUND_MARGIN + timedelta(seconds=1)
        for payment_id in self.payment_ids:
            for transaction in self.services.list_transactions(payment_id):
                if self.is_open(transaction):
                    resolved = self.services.fetch_status(transaction.id)
                    assert not self.is_open(resolved), resolved
        self.unresolved = []
