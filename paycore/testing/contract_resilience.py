"""The gateway contract, part two: idempotency and faults.

A replayed call is answered from the ledger; a mutation the provider deduplicates is
sent twice and happens once; an unreachable provider fails a transaction cleanly; a
capture whose answers are all lost is unknown until reconciliation finds it done,
once. See `paycore.testing.contract`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import attrs
import httpx

from paycore.gateways.base import Operation
from paycore.gateways.driver import GatewayDriver
from paycore.testing.contract_base import FAST_RETRIES, ContractBase, describe
from paycore.testing.contract_support import needs
from paycore.testing.loopback import refused_address
from paycore.transactions.model import Outcome, PaymentStatus, TransactionStatus
from paycore.transactions.reconcile import Reconciler

if TYPE_CHECKING:
    from paycore.sandbox.base import Sandbox
    from paycore.testing.pytest_plugin import MakeServices
    from paycore.transactions.services import PaymentTransactionServices

__all__ = ["Resilience"]

OPENING = (Operation.AUTHORIZE, Operation.SALE)


class Resilience(ContractBase):
    """Idempotency and faults, over real connections to the sandbox."""

    @needs(any_of=OPENING)
    def test_the_same_idempotency_key_twice_is_one_transaction_sent_once(
        self, services: PaymentTransactionServices, sandbox: Sandbox
    ) -> None:
        payment = self.new_payment(services, idempotency_key="contract-order-1")
        again = self.new_payment(services, idempotency_key="contract-order-1")
        assert again.id == payment.id

        before = len(sandbox.requests_received)
        opened = self.start_payment(services, payment, idempotency_key="contract-open-1")
        sent = sandbox.requests_received[before:]
        first = self.as_customer(services, payment, opened)
        before_replay = len(sandbox.requests_received)
        replayed = self.open_payment(services, payment, idempotency_key="contract-open-1")

        assert first.status is TransactionStatus.SUCCEEDED, describe(first)
        assert (replayed.id, replayed.status) == (first.id, first.status)
        assert [t.id for t in services.list_transactions(payment.id)] == [first.id]
        assert [method for method, _ in sent].count("POST") == 1, (
            f"opening a payment should be one POST to the provider; it sent {sent}"
        )
        assert len(sandbox.requests_received) == before_replay, "the replay was sent"

    @needs(any_of=OPENING, idempotency_keys=True)
    def test_the_provider_deduplicates_a_mutation_sent_twice(self, driver: GatewayDriver) -> None:
        kind = self.opening_type()
        request = self.direct_request(kind, "txn_contract_sent_twice")
        operation = getattr(driver.gateway, kind.value)

        first = driver.run(operation(request), operation=kind)
        second = driver.run(operation(request), operation=kind)

        # Approved, or (a provider that takes payments on its page) waiting for the customer.
        expected = Outcome.ACTION_REQUIRED if self.pays_on_page else Outcome.APPROVED
        assert first.outcome is second.outcome is expected
        assert second.gateway_reference == first.gateway_reference, (
            "the same request under the same idempotency key made a second payment"
        )

    @needs(any_of=OPENING)
    def test_an_unreachable_provider_fails_the_transaction_and_changes_nothing(
        self,
        services: PaymentTransactionServices,
        sandbox: Sandbox,
        http: httpx.Client,
        paycore_services: MakeServices,
    ) -> None:
        unreachable = self.build_gateway(sandbox, refused_address())
        offline = paycore_services({self.gateway_name: self.driver_for(unreachable, http)})
        payment = self.new_payment(offline)

        failed = self.open_payment(offline, payment, idempotency_key="contract-open-1")

        assert failed.status is TransactionStatus.FAILED, describe(failed)
        assert failed.failure == "GatewayUnavailable"
        after = offline.get_payment(payment.id)
        assert (after.status, after.gateway_reference) == (PaymentStatus.NEW, None)
        assert after.totals() == dict.fromkeys(after.totals(), 0)
        assert sandbox.requests_received == ()
        # Not sent, so sending it again under the same key is safe: it goes through once.
        retried = self.open_payment(services, payment, idempotency_key="contract-open-1")
        assert retried.status is TransactionStatus.SUCCEEDED, describe(retried)
        assert [t.id for t in services.list_transactions(payment.id)] == [failed.id]

    @needs(Operation.AUTHORIZE, Operation.CAPTURE, Operation.FETCH_STATUS)
    def test_a_capture_whose_answers_are_lost_is_unknown_until_reconciled_once(
        self, services: PaymentTransactionServices, sandbox: Sandbox
    ) -> None:
        payment = self.authorized(services)
        # Every attempt the driver makes is processed, then loses its answer.
        sandbox.queue_faults(*["drop"] * FAST_RETRIES.max_attempts)

        lost = services.capture(payment.id)
        sandbox.set_faults(attrs.evolve(sandbox.faults, next=()))

        assert lost.status is TransactionStatus.UNKNOWN, describe(lost)
        report = Reconciler(services, grace=timedelta(0)).run()
        assert [(row.transaction_id, row.after) for row in report.rows] == [
            (lost.id, TransactionStatus.SUCCEEDED)
        ], report.summary()
        after, provider = self.matches_provider(services, sandbox, payment.id)
        assert after.status is PaymentStatus.CAPTURED
        assert provider.captured == self.amount
        assert provider.captures in (None, 1)
