"""The gateway contract: the fault matrix.

Every money-moving operation the gateway declares (authorize, sale, capture, void,
refund, and an authorize or sale on its hosted page: ``create_checkout``) meets every
fault a network or a provider can throw at it, on every attempt the driver makes:

================  ===============================================  ==============
fault             what happens, on every attempt                   the provider
================  ===============================================  ==============
refused           nothing listens at the provider's address        never sees it
connect_timeout   the provider's accept queue is full              never sees it
read_timeout      processed, then no answer within the timeout     did it
reset             processed, then the connection breaks            did it
server_error      500 before processing                            did not
malformed         processed, then 200 with a body not its format   did it
slow              held past the timeout (until the client gave     does it, late
                  up), then processed
================  ===============================================  ==============

The ledger must say what it knows and no more: ``failed`` (`GatewayUnavailable`) where
nothing was sent, ``unknown`` otherwise. Reconciliation then settles every unknown as
the provider left it: ``succeeded``, with the ledger's totals equal to the provider's,
where it did the operation, once; ``failed`` where it did not (once no attempt can be in
flight any more: the reconciling side's clock is moved past the exchange's budget and
`NOT_FOUND_MARGIN`). A page found waiting for the customer (a checkout, or a gateway
that `pays_on_page`) is paid as the customer would, and then it has succeeded. What
the provider did is read from its own state: `provider_totals`, and for an
authorization a capture sent straight to it last (does it hold the money?).

Cells the capabilities rule out (an operation not declared, nothing to reconcile with
without ``fetch_status``) are skipped with the reason. The faulted driver has short
timeouts (`MATRIX_TIMEOUTS`) and `FAST_RETRIES`, and the cells of a class share one
sandbox (each with a payment of its own), so the whole matrix of a gateway takes
seconds.

A fault hits the operation's mutations only (each attempt of each one), so reads a
plugin makes first (a status check before a refund) go through and the mutation is
what meets the fault. Each test records its cell as the user property
``fault_matrix`` (JSON: gateway, operation, fault, status after the call and after
reconciliation, what the provider did); ``bench/fault_matrix.py`` prints the table.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs
import httpx
import pytest

from paycore.errors import GatewayRefused
from paycore.gateways.base import Gateway, Operation
from paycore.gateways.driver import GatewayDriver
from paycore.money import Money
from paycore.sandbox.faults import FaultInjector
from paycore.testing.contract_base import ContractBase, describe
from paycore.testing.fault_cells import (
    FaultedProvider,
    MatrixFault,
    ProviderView,
    growth,
    provider_objects,
    status_text,
)
from paycore.testing.loopback import SaturatedListener, refused_address
from paycore.transactions import states
from paycore.transactions.model import (
    CheckoutKind,
    CheckoutSession,
    Outcome,
    TransactionStatus,
    TransactionType,
)
from paycore.transactions.orchestration import NOT_FOUND_MARGIN
from paycore.transactions.reconcile import Reconciler

if TYPE_CHECKING:
    from paycore.sandbox.base import Sandbox
    from paycore.testing.pytest_plugin import MakeServices
    from paycore.transactions.records import Payment, PaymentTransaction
    from paycore.transactions.services import PaymentTransactionServices

__all__ = ["FaultMatrix", "MatrixFault"]

# The faulted driver's timeouts: short, so that seven faults on every operation stay
# cheap, and a budget leaving room for every attempt of `FAST_RETRIES`.
MATRIX_TIMEOUTS = {"connect": 0.05, "read": 0.1, "total": 2.0}
# How long the matrix waits for the sandbox to finish the requests it still holds.
SETTLE_WAIT = 10.0
# The user property each matrix test records its cell under.
ROW_PROPERTY = "fault_matrix"


MONEY_MOVING = (
    Operation.AUTHORIZE,
    Operation.SALE,
    Operation.CAPTURE,
    Operation.VOID,
    Operation.REFUND,
    Operation.CREATE_CHECKOUT,  # an authorize or sale on the provider's page
)
# What each operation needs declared besides itself, to have something to act on.
_PREREQUISITES = {
    Operation.CAPTURE: (Operation.AUTHORIZE,),
    Operation.VOID: (Operation.AUTHORIZE,),
}


class FaultMatrix(ContractBase):
    """Every money-moving operation under every fault; see the module docstring."""

    @pytest.fixture(autouse=True)
    def _matrix_requirements(self, request: pytest.FixtureRequest) -> None:
        """Skip, before anything is sent, a cell the gateway's capabilities rule out."""
        params = getattr(getattr(request.node, "callspec", None), "params", {})
        operation, fault = params.get("operation"), params.get("fault")
        if not isinstance(operation, Operation) or not isinstance(fault, MatrixFault):
            return
        capabilities, name = self.capabilities(), self.gateway_name
        for needed in (operation, *_PREREQUISITES.get(operation, ())):
            if not capabilities.supports(needed):
                pytest.skip(f"gateway {name!r} does not declare {needed.value}")
        if operation is Operation.CREATE_CHECKOUT and not (
            capabilities.supports_checkout(CheckoutKind.HOSTED_PAGE)
        ):
            pytest.skip(f"gateway {name!r} does not declare a hosted_page checkout")
        if operation is Operation.REFUND and not (
            capabilities.supports(Operation.SALE) or capabilities.supports(Operation.CAPTURE)
        ):
            pytest.skip(f"gateway {name!r} declares neither sale nor capture: nothing to refund")
        if fault.sent and not capabilities.supports(Operation.FETCH_STATUS):
            pytest.skip(
                f"gateway {name!r} does not declare fetch_status: reconciliation cannot ask"
            )

    @pytest.fixture(scope="class")
    @classmethod
    def matrix_provider(cls) -> Iterator[_Provider]:
        """One sandbox, served, for all the cells of the class (no webhooks: the matrix
        reconciles). Starting one per cell would double the matrix's time; each cell
        has a payment of its own, and leaves no fault and no request behind."""
        from paycore.sandbox.server import SandboxServer

        sandbox = cls().make_sandbox()
        injector = sandbox.app()
        assert isinstance(injector, FaultInjector), "a sandbox's app is its fault injector"
        with SandboxServer(injector) as server:
            try:
                yield _Provider(sandbox=sandbox, injector=injector, url=server.url)
            finally:
                sandbox.close()

    @pytest.mark.parametrize("fault", list(MatrixFault), ids=str)
    @pytest.mark.parametrize("operation", MONEY_MOVING, ids=str)
    def test_a_fault_leaves_the_ledger_settled_as_the_provider_did(
        self,
        operation: Operation,
        fault: MatrixFault,
        matrix_provider: _Provider,
        http: httpx.Client,
        paycore_services: MakeServices,
        record_property: Callable[[str, object], None],
    ) -> None:
        row: dict[str, Any] = {
            "gateway": self.gateway_name,
            "operation": operation.value,
            "fault": fault.value,
        }
        try:
            self._check_cell(operation, fault, row, matrix_provider, http, paycore_services)
        finally:
            record_property(ROW_PROPERTY, json.dumps(row))

    # -- one cell ------------------------------------------------------------------------

    def _check_cell(
        self,
        operation: Operation,
        fault: MatrixFault,
        row: dict[str, Any],
        provider: _Provider,
        http: httpx.Client,
        paycore_services: MakeServices,
    ) -> None:
        sandbox = provider.sandbox
        assert provider.injector.wait_idle(SETTLE_WAIT), "the sandbox still holds requests"
        gateway = self.build_gateway(sandbox, provider.url)
        services = paycore_services({self.gateway_name: self.driver_for(gateway, http)})
        payment = self._prepared(services, operation)
        before = self._provider_amounts(sandbox, payment)
        requests_before = len(sandbox.requests_received)
        objects_before = provider_objects(sandbox)
        with self._faulted(fault, provider, http, paycore_services) as faulted:
            attempted = self._perform(faulted.services, operation, payment)
        row["attempts"] = faulted.mutations
        row["after_call"] = status_text(attempted)
        expected = TransactionStatus.UNKNOWN if fault.sent else TransactionStatus.FAILED
        assert attempted.status is expected, (
            f"{operation} under {fault}: {describe(attempted)}; expected {expected}"
        )
        if not fault.sent:
            assert attempted.failure == "GatewayUnavailable", describe(attempted)
        elif fault.sandbox_fault is not None:
            assert faulted.mutations >= 1, "the fault met no mutation: the operation sent none"
        # The provider holds no request any more (a slow one was processed, late).
        assert provider.injector.wait_idle(SETTLE_WAIT), "the sandbox still holds requests"
        if not fault.sent:
            assert len(sandbox.requests_received) == requests_before, "a request got through"
        # Done once or not at all: no kind of the provider's objects grew by two.
        made = growth(objects_before, provider_objects(sandbox))
        row["made"] = ", ".join(f"{kind} +{count}" for kind, count in sorted(made.items()))
        if fault.provider_does_it:
            twice = {kind: count for kind, count in made.items() if count > 1}
            assert twice == {}, f"{operation} done more than once at the provider: made {made}"
        else:
            assert made == {}, f"{operation} was not sent or not processed, yet made {made}"

        reconciling, settled = self._reconciled(paycore_services, services, attempted)
        row["after_reconcile"] = status_text(settled)
        if settled.status is TransactionStatus.REQUIRES_ACTION and (
            self.pays_on_page or operation is Operation.CREATE_CHECKOUT
        ):
            settled = self._paid_by_the_customer(reconciling, operation, settled)
            row["after_reconcile"] += f", paid on the page: {status_text(settled)}"
        done = fault.provider_does_it
        effect = self._effect(operation)
        seen = self._provider_view(services, sandbox, effect, payment, before)
        row["provider"] = seen.truth
        wanted = TransactionStatus.SUCCEEDED if done else TransactionStatus.FAILED
        assert settled.status is wanted, (
            f"{operation} under {fault}, reconciled: {describe(settled)}; the provider "
            f"{'did' if done else 'did not do'} it ({seen.truth}): expected {wanted}"
        )
        seen.agrees(done=done, moved=self._moved(effect).minor_units, amount=self.amount)

    def _prepared(self, services: PaymentTransactionServices, operation: Operation) -> Payment:
        """A payment ready for ``operation``: new, authorized, or captured."""
        if operation in (Operation.CAPTURE, Operation.VOID):
            return self.authorized(services)
        if operation is Operation.REFUND:
            return self.captured(services)
        return self.new_payment(services)

    def _perform(
        self, services: PaymentTransactionServices, operation: Operation, payment: Payment
    ) -> PaymentTransaction:
        key = f"matrix-{operation.value}"
        if operation is Operation.AUTHORIZE:
            return services.authorize(payment.id, idempotency_key=key)
        if operation is Operation.SALE:
            return services.sale(payment.id, idempotency_key=key)
        if operation is Operation.CREATE_CHECKOUT:
            page = CheckoutKind.HOSTED_PAGE
            if self.opening_type() is TransactionType.AUTHORIZE:
                return services.authorize(payment.id, idempotency_key=key, checkout=page)
            return services.sale(payment.id, idempotency_key=key, checkout=page)
        if operation is Operation.CAPTURE:
            return services.capture(payment.id, self._moved(operation), idempotency_key=key)
        if operation is Operation.VOID:
            return services.void(payment.id, idempotency_key=key)
        return services.refund(payment.id, self._moved(operation), idempotency_key=key)

    def _effect(self, operation: Operation) -> Operation:
        """What ``operation`` does to the money: a checkout authorizes, or sells."""
        if operation is Operation.CREATE_CHECKOUT:
            return Operation(self.opening_type().value)
        return operation

    def _moved(self, operation: Operation) -> Money:
        """What a capture or refund moves: half the amount where the gateway allows
        partial ones, so one done twice would show at the provider."""
        capabilities = self.capabilities()
        partial = (
            capabilities.partial_capture
            if operation is Operation.CAPTURE
            else capabilities.partial_refund
        )
        return self.money(self.amount // 2 if partial else self.amount)

    @contextlib.contextmanager
    def _faulted(
        self,
        fault: MatrixFault,
        provider: _Provider,
        http: httpx.Client,
        paycore_services: MakeServices,
    ) -> Iterator[FaultedProvider]:
        """Services whose driver meets ``fault`` (short timeouts, `FAST_RETRIES`) on
        ``http``, whose request hook arms the sandbox for each mutation."""
        with contextlib.ExitStack() as stack:
            if fault is MatrixFault.REFUSED:
                url = refused_address()
            elif fault is MatrixFault.CONNECT_TIMEOUT:
                url = stack.enter_context(SaturatedListener()).url
            else:
                url = provider.url
            config = {**self.gateway_config(provider.sandbox, url), "timeouts": MATRIX_TIMEOUTS}
            gateway = self.gateway_class().from_config(config)
            services = paycore_services({self.gateway_name: self.driver_for(gateway, http)})
            faulted = FaultedProvider(fault, provider.sandbox, services)
            hooks = http.event_hooks
            http.event_hooks = {**hooks, "request": [*hooks["request"], faulted.arm]}
            stack.callback(setattr, http, "event_hooks", hooks)
            stack.callback(faulted.disarm)
            yield faulted

    def _reconciled(
        self,
        paycore_services: MakeServices,
        services: PaymentTransactionServices,
        attempted: PaymentTransaction,
    ) -> tuple[PaymentTransactionServices, PaymentTransaction]:
        """``attempted`` after a reconciliation run, as late as "not found" is final,
        and the services that ran it."""
        gateway: Gateway = services.drivers[self.gateway_name].gateway
        skew = timedelta(seconds=gateway.timeouts.total) + NOT_FOUND_MARGIN + timedelta(seconds=1)
        reconciling = paycore_services(
            {self.gateway_name: services.drivers[self.gateway_name]},
            clock=lambda: datetime.now(UTC) + skew,
        )
        report = Reconciler(reconciling, grace=timedelta(0)).run()
        checked = {row.transaction_id for row in report.rows}
        assert checked == (
            {attempted.id} if attempted.status is TransactionStatus.UNKNOWN else set()
        ), report.summary()
        return reconciling, reconciling.get_transaction(attempted.id)

    def _paid_by_the_customer(
        self,
        services: PaymentTransactionServices,
        operation: Operation,
        waiting: PaymentTransaction,
    ) -> PaymentTransaction:
        """``waiting`` once the customer paid on the provider's page and the provider
        was asked: a hosted checkout, or a gateway that `pays_on_page`."""
        assert waiting.next_action is not None, describe(waiting)
        payment = services.get_payment(waiting.payment_id)
        if operation is Operation.CREATE_CHECKOUT:
            session = CheckoutSession(
                reference=payment.gateway_reference or waiting.id,
                next_action=waiting.next_action,
                gateway_reference=payment.gateway_reference,
            )
            self.pay_checkout(self.browser, session)
            return services.fetch_status(waiting.id)
        return self.as_customer(services, payment, waiting)

    # -- what the provider did -----------------------------------------------------------

    def _provider_amounts(self, sandbox: Sandbox, payment: Payment) -> tuple[int, int]:
        if payment.gateway_reference is None:
            return (0, 0)
        totals = self.provider_totals(sandbox, payment.gateway_reference)
        return (totals.captured, totals.refunded)

    def _provider_view(
        self,
        services: PaymentTransactionServices,
        sandbox: Sandbox,
        operation: Operation,
        payment_before: Payment,
        before: tuple[int, int],
    ) -> ProviderView:
        """The ledger and the provider's own state, read after reconciliation.

        For authorize and void, what the provider holds is found by a capture sent
        straight through the driver (the ledger never hears of it), made last, once
        every total was read.
        """
        payment = services.get_payment(payment_before.id)
        transactions = services.list_transactions(payment.id)
        view = ProviderView(
            operation=operation,
            before=before,
            payment=payment,
            problems=states.problems(payment, transactions),
        )
        if payment.gateway_reference is None:
            view.truth = "no payment"
            return view
        view.provider = self.provider_totals(sandbox, payment.gateway_reference)
        if operation is Operation.REFUND:
            view.truth = f"refunded {before[1]} -> {view.provider.refunded}"
        elif operation in (Operation.CAPTURE, Operation.SALE):
            view.truth = f"captured {before[0]} -> {view.provider.captured}"
        elif self.capabilities().supports(Operation.CAPTURE):
            view.holds = self._provider_holds_authorization(services, payment)
            view.truth = "authorization held" if view.holds else "nothing held"
        else:
            view.truth = f"payment {payment.gateway_reference}"
        return view

    def _provider_holds_authorization(
        self, services: PaymentTransactionServices, payment: Payment
    ) -> bool:
        """Whether the provider captures ``payment`` when asked to, now."""
        driver: GatewayDriver = services.drivers[self.gateway_name]
        request = self.direct_request(
            TransactionType.CAPTURE,
            f"{payment.id}_probe",
            payment_id=payment.id,
            gateway_reference=payment.gateway_reference,
        )
        try:
            result = driver.run(driver.gateway.capture(request), operation="capture")
        except GatewayRefused:
            return False
        return result.outcome is Outcome.APPROVED


@attrs.frozen(kw_only=True)
class _Provider:
    """The matrix's sandbox, its fault injector, and where it is served."""

    sandbox: Sandbox
    injector: FaultInjector
    url: str
