"""The gateway contract: a process killed at any step of a mutation's write-ahead.

A worker (`paycore.testing.crash_worker`, a process of its own on the test's ledger
and sandbox) starts a capture of the whole authorization, or, for a gateway that
cannot capture, a refund of a whole sale, and is killed with SIGKILL:

==================  ===============================  ==================================
step                the dead process left            reconciliation, later
==================  ===============================  ==================================
``before_write``    nothing (the write rolled back)  nothing to do
``before_send``     ``pending``, nothing sent        the provider has no record: failed
``before_record``   ``pending``, the provider did it  asks the provider: succeeded
``after_record``    ``succeeded``                    nothing to do
==================  ===============================  ==================================

Then a "restarted" process reconciles, on a clock past the grace period and past
the point where "the provider has no record of it" is believed, and runs the same
mutation again under the same idempotency key, as an OMS job re-run after a crash
does. In every case the mutation happened exactly once: one transaction of its type,
succeeded, in the ledger; the provider moved the amount once; ledger equals provider;
and a re-run of what had gone through sent nothing. See `paycore.testing.contract`.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from paycore.gateways.base import Operation
from paycore.testing.contract_base import ContractBase, describe
from paycore.testing.contract_support import needs
from paycore.testing.crash_worker import CrashJob, CrashStep, class_path
from paycore.transactions.ledger import utc_now
from paycore.transactions.model import TransactionStatus, TransactionType
from paycore.transactions.orchestration import NOT_FOUND_MARGIN
from paycore.transactions.reconcile import DEFAULT_GRACE, Reconciler
from paycore.transactions.records import Payment, PaymentTransaction

if TYPE_CHECKING:
    import httpx

    from paycore.gateways.base import Gateway
    from paycore.sandbox.base import Sandbox
    from paycore.sandbox.server import SandboxServer
    from paycore.testing.pytest_plugin import MakeServices
    from paycore.transactions.services import PaymentTransactionServices
    from paycore.transactions.store import Store

__all__ = ["CrashRecovery", "run_crash_worker"]

# The key the worker's mutation and its re-run share, as an OMS derives one.
KEY = "contract-crash-1"
# A worker starts an interpreter, connects and makes one call: seconds at most.
WORKER_TIMEOUT = 60.0
# Per step: the status the dead process left (None: no transaction), whether the
# provider had done it, and what reconciliation turns the transaction into (None: it
# has nothing to do).
LEFT: dict[CrashStep, tuple[TransactionStatus | None, bool, TransactionStatus | None]] = {
    CrashStep.BEFORE_WRITE: (None, False, None),
    CrashStep.BEFORE_SEND: (TransactionStatus.PENDING, False, TransactionStatus.FAILED),
    CrashStep.BEFORE_RECORD: (TransactionStatus.PENDING, True, TransactionStatus.SUCCEEDED),
    CrashStep.AFTER_RECORD: (TransactionStatus.SUCCEEDED, True, None),
}


def run_crash_worker(job: CrashJob) -> dict[str, Any]:
    """Run a `paycore.testing.crash_worker` process on ``job``; check it died by
    SIGKILL at the job's step, and return what it said just before."""
    finished = subprocess.run(
        [sys.executable, "-m", "paycore.testing.crash_worker"],
        input=job.as_json(),
        capture_output=True,
        text=True,
        timeout=WORKER_TIMEOUT,
        check=False,
    )
    assert finished.returncode == -signal.SIGKILL, (
        f"the worker was to die by SIGKILL at {job.step}; it exited with "
        f"{finished.returncode}:\n{finished.stdout}{finished.stderr[-3000:]}"
    )
    said: dict[str, Any] = json.loads(finished.stdout)
    assert said["step"] == job.step, said
    return said


class CrashRecovery(ContractBase):
    """A capture (a refund, without capture) killed at each write-ahead step, then
    recovered, has happened exactly once."""

    def crashed_operation(self) -> TransactionType:
        """Capture an authorization when the gateway can; otherwise refund a sale."""
        capabilities = self.capabilities()
        if capabilities.supports(Operation.AUTHORIZE) and capabilities.supports(Operation.CAPTURE):
            return TransactionType.CAPTURE
        return TransactionType.REFUND

    def crash_job(
        self,
        step: CrashStep,
        kind: TransactionType,
        payment: Payment,
        *,
        ledger: Store,
        sandbox: Sandbox,
        url: str,
    ) -> CrashJob:
        """The worker's job: the whole amount of ``payment``, on the test's ledger."""
        return CrashJob(
            database_url=ledger.engine.url.render_as_string(hide_password=False),
            gateway_name=self.gateway_name,
            gateway_class=class_path(self.gateway_class()),
            gateway_config=self.gateway_config(sandbox, url),
            payment_id=payment.id,
            operation=kind.value,
            minor_units=self.amount,
            currency=self.currency,
            idempotency_key=KEY,
            step=step,
            import_path=tuple(sys.path),
        )

    def provider_moved(
        self, sandbox: Sandbox, payment: Payment, kind: TransactionType
    ) -> tuple[int, int | None]:
        """What the provider says was captured (refunded), and in how many operations."""
        assert payment.gateway_reference, "the gateway gave the payment no reference"
        totals = self.provider_totals(sandbox, payment.gateway_reference)
        if kind is TransactionType.CAPTURE:
            return totals.captured, totals.captures
        return totals.refunded, totals.refunds

    @needs(Operation.FETCH_STATUS, any_of=(Operation.CAPTURE, Operation.REFUND))
    @pytest.mark.parametrize("step", list(CrashStep), ids=str)
    def test_a_capture_or_refund_killed_at_any_write_ahead_step_happens_once_after_recovery(
        self,
        step: CrashStep,
        services: PaymentTransactionServices,
        sandbox: Sandbox,
        server: SandboxServer,
        gateway: Gateway,
        http: httpx.Client,
        paycore_ledger: Store,
        paycore_services: MakeServices,
    ) -> None:
        kind = self.crashed_operation()
        capture = kind is TransactionType.CAPTURE
        payment = self.authorized(services) if capture else self.captured(services)
        job = self.crash_job(
            step, kind, payment, ledger=paycore_ledger, sandbox=sandbox, url=server.url
        )

        said = run_crash_worker(job)

        # What the dead process left, before anyone recovers it.
        left_status, done_at_provider, reconciled = LEFT[step]
        left = of_type(services.list_transactions(payment.id), kind)
        assert [t.status for t in left] == ([] if left_status is None else [left_status]), said
        moved, _ = self.provider_moved(sandbox, payment, kind)
        assert moved == (self.amount if done_at_provider else 0), (
            f"killed at {step}, the provider's {kind} total is {moved} (said: {said})"
        )

        # Restarted, past the grace period and past when "no record" is believed.
        budget = timedelta(seconds=gateway.timeouts.total)
        later = utc_now() + max(DEFAULT_GRACE, budget + NOT_FOUND_MARGIN) + timedelta(seconds=1)
        restarted = paycore_services(
            {self.gateway_name: self.driver_for(gateway, http)}, clock=lambda: later
        )
        report = Reconciler(restarted).run()
        found = [(row.transaction_id, row.after) for row in report.rows]
        assert found == ([] if reconciled is None else [(left[0].id, reconciled)]), (
            f"killed at {step}, reconciliation made {found} of it: "
            + "; ".join(f"{row.after}: {row.note}" for row in report.rows)
        )

        sent = len(sandbox.requests_received)
        again = getattr(restarted, kind.value)(payment.id, self.money(), idempotency_key=KEY)

        assert again.status is TransactionStatus.SUCCEEDED, describe(again)
        assert [t.id for t in of_type(restarted.list_transactions(payment.id), kind)] == [
            again.id
        ], "the re-run made a second transaction"
        if done_at_provider:
            assert len(sandbox.requests_received) == sent, "the re-run sent it again"
        self.matches_provider(restarted, sandbox, payment.id)
        moved, operations = self.provider_moved(sandbox, payment, kind)
        assert (moved, operations in (None, 1)) == (self.amount, True), (
            f"killed at {step}, then recovered: the provider made {operations} {kind}s "
            f"of {moved} in all"
        )


def of_type(
    transactions: tuple[PaymentTransaction, ...], kind: TransactionType
) -> list[PaymentTransaction]:
    return [t for t in transactions if t.type is kind]
