"""Random sequences of operations, with faults on the wire, against the dummy sandbox.

A Hypothesis state machine creates payments and authorizes, sells, captures, voids
and refunds them through `PaymentTransactionServices`, repeats earlier calls with
their idempotency keys, asks about unsettled transactions and reconciles, while the
sandbox declines cards, answers 500, stalls past the read timeout or cuts the
connection, and a second process finds the provider unreachable. After every step
the ledger must be consistent with itself and with what the provider did.

``PAYCORE_HYPOTHESIS_EXAMPLES`` sets how many random sequences run per database.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from attrs import frozen
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from paycore.errors import InvalidAmount, PaymentBusy, StateError
from paycore.gateways.driver import GatewayDriver, RetryPolicy
from paycore.gateways.dummy import DummyGateway
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.money import Money
from paycore.sandbox.faults import FaultPlan
from paycore.sandbox.server import SandboxServer
from paycore.testing.loopback import refused_address
from paycore.transactions import states
from paycore.transactions.ledger import utc_now
from paycore.transactions.model import (
    DeclineReason,
    PaymentMethod,
    PaymentStatus,
    TransactionStatus,
    TransactionType,
)
from paycore.transactions.orchestration import NOT_FOUND_MARGIN
from paycore.transactions.records import (
    IN_FLIGHT,
    MUTATIONS,
    UNRESOLVED,
    Payment,
    PaymentTransaction,
)
from paycore.transactions.schema import metadata
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store

S = TransactionStatus
T = TransactionType

EXAMPLES = int(os.environ.get("PAYCORE_HYPOTHESIS_EXAMPLES", "25"))
STEPS = 50
PAYMENTS = 4  # at most, per example: the steps act on few payments, and go further

# Small timeouts, so a stalled answer costs 0.3 s; the budget bounds "not found".
TIMEOUTS = {"connect": 1.0, "read": 0.3, "total": 2.0}
BUDGET = timedelta(seconds=TIMEOUTS["total"])
# Two attempts: one injected fault is retried away (the provider deduplicates by the
# transaction's key), two make the outcome unknown.
RETRIES = RetryPolicy(max_attempts=2, backoff=0.01, max_backoff=0.02, jitter=0.0)
# A stalled request ends when the client gives up; one second bounds it otherwise.
NO_FAULTS = FaultPlan(stall_seconds=1.0)

# What breaks a call: nothing (listed four times, so most calls go through), one-shot
# faults of the sandbox in order, or the provider unreachable from the process making
# the call. Simplest first, which is where shrinking heads.
UNAVAILABLE = ("unavailable",)
WRITE_FAULTS = (
    (),
    (),
    (),
    (),
    ("error",),
    ("drop",),
    ("timeout",),
    ("error", "error"),
    ("drop", "drop"),
    ("drop", "error"),
    ("timeout", "drop"),
    UNAVAILABLE,
)
READ_FAULTS = ((), ("error",), ("drop",), ("timeout",), ("error", "error"))
DECLINING_TOKENS = frozenset({"tok_declined", "tok_insufficient_funds"})
TOKENS = ("tok_visa",) * 6 + ("tok_declined", "tok_insufficient_funds")
CURRENCIES = ("USD", "EUR", "JPY")
AUTHORIZATION_LIFETIME = timedelta(days=8)  # longer than the sandbox's 7-day window
# What a refused call may raise: the state forbids it, or the amount, or another
# mutation of the payment is in flight. Anything else fails the machine.
REFUSALS = (PaymentBusy, StateError, InvalidAmount)


class ProviderClock:
    """The sandbox's time: moves with the wall clock, and jumps when told."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def __call__(self) -> float:
        return time.time() + self.skipped


class LedgerClock:
    """The services' time: the wall clock, plus what reconciliation skipped ahead."""

    def __init__(self) -> None:
        self.skipped = timedelta()

    def __call__(self) -> datetime:
        return utc_now() + self.skipped


@frozen
class Call:
    """One mutation as a caller made it, so it can be made again with its key."""

    operation: str  # authorize, sale, capture, void, refund
    payment_id: str
    key: str
    amount: Money | None = None
    final: bool = False


@frozen
class World:
    """What every example shares: the served sandbox and the drivers to it."""

    sandbox: DummySandbox
    provider_clock: ProviderClock
    online: GatewayDriver
    offline: GatewayDriver  # the same provider seen from a process that cannot reach it
    # A store with empty tables, and whether the example is to close it.
    fresh_store: Callable[[], tuple[Store, bool]]


def invoke(services: PaymentTransactionServices, call: Call) -> PaymentTransaction:
    if call.operation == "capture":
        return services.capture(
            call.payment_id, call.amount, final=call.final, idempotency_key=call.key
        )
    if call.operation == "refund":
        return services.refund(call.payment_id, call.amount, idempotency_key=call.key)
    method = getattr(services, call.operation)
    result: PaymentTransaction = method(call.payment_id, idempotency_key=call.key)
    return result


def share_of(base: Money, tenths: int) -> Money:
    """``tenths``/10 of ``base``, at least one minor unit (more than all of it past 10)."""
    return Money(max(1, base.minor_units * tenths // 10), base.currency)


class LedgerAgainstProvider(RuleBasedStateMachine):
    """The ledger, driven at random over a faulty wire, never disagrees with the provider."""

    world: ClassVar[World]

    payments = Bundle("payments")
    calls = Bundle("calls")

    def __init__(self) -> None:
        super().__init__()
        world = self.world
        self.sandbox = world.sandbox
        self.sandbox.set_faults(NO_FAULTS)
        self.store, self.owns_store = world.fresh_store()
        self.clock = LedgerClock()
        self.services = PaymentTransactionServices(
            self.store, {"dummy": world.online}, hooks=None, clock=self.clock
        )
        self.offline = PaymentTransactionServices(
            self.store, {"dummy": world.offline}, hooks=None, clock=self.clock
        )
        # Payments of earlier examples live on in the sandbox: this one ignores them.
        self.earlier = {p["id"] for p in self.sandbox.snapshot()["payments"]}
        self.payment_ids: list[str] = []
        self.tokens: dict[str, str] = {}
        self.returned: dict[str, str] = {}  # transaction id -> payment id, as handed out
        self.unresolved: list[str] = []
        self.keys = itertools.count(1)
        self.expired_once = False
        # False from the start of a step until the invariants passed after it.
        self.settled = True

    # -- rules ---------------------------------------------------------------------------

    @precondition(lambda self: len(self.payment_ids) < PAYMENTS)
    @rule(
        target=payments,
        minor_units=st.integers(100, 100_000),
        currency=st.sampled_from(CURRENCIES),
        token=st.sampled_from(TOKENS),
    )
    def create_payment(self, minor_units: int, currency: str, token: str) -> str:
        self.settled = False
        payment = self.services.create_payment(
            Money(minor_units, currency),
            gateway="dummy",
            payment_method=PaymentMethod(type="card", token=token),
        )
        assert payment.status is PaymentStatus.NEW
        self.payment_ids.append(payment.id)
        self.tokens[payment.id] = token
        return payment.id

    @rule(target=calls, payment=payments, faults=st.sampled_from(WRITE_FAULTS))
    def authorize(self, payment: str, faults: tuple[str, ...]) -> Call:
        return self.mutate(Call("authorize", payment, self.new_key()), faults)

    @rule(target=calls, payment=payments, faults=st.sampled_from(WRITE_FAULTS))
    def sale(self, payment: str, faults: tuple[str, ...]) -> Call:
        return self.mutate(Call("sale", payment, self.new_key()), faults)

    @rule(
        target=calls,
        payment=payments,
        how=st.sampled_from(("full", "partial", "final")),
        tenths=st.integers(1, 12),
        faults=st.sampled_from(WRITE_FAULTS),
    )
    def capture(self, payment: str, how: str, tenths: int, faults: tuple[str, ...]) -> Call:
        current = self.services.get_payment(payment)
        base = current.capturable if current.capturable.is_positive() else current.amount
        amount = None if how == "full" else share_of(base, tenths)
        call = Call("capture", payment, self.new_key(), amount, final=how == "final")
        return self.mutate(call, faults)

    @rule(target=calls, payment=payments, faults=st.sampled_from(WRITE_FAULTS))
    def void(self, payment: str, faults: tuple[str, ...]) -> Call:
        return self.mutate(Call("void", payment, self.new_key()), faults)

    @rule(
        target=calls,
        payment=payments,
        how=st.sampled_from(("full", "partial")),
        tenths=st.integers(1, 12),
        faults=st.sampled_from(WRITE_FAULTS),
    )
    def refund(self, payment: str, how: str, tenths: int, faults: tuple[str, ...]) -> Call:
        current = self.services.get_payment(payment)
        base = current.refundable if current.refundable.is_positive() else current.amount
        amount = None if how == "full" else share_of(base, tenths)
        return self.mutate(Call("refund", payment, self.new_key(), amount), faults)

    @rule(call=calls, faults=st.sampled_from(WRITE_FAULTS))
    def repeat(self, call: Call, faults: tuple[str, ...]) -> None:
        """The same call again with its key: a replay, never a second operation."""
        self.mutate(call, faults)

    @precondition(lambda self: bool(self.unresolved))
    @rule(pick=st.integers(0, 100), faults=st.sampled_from(READ_FAULTS))
    def fetch_status(self, pick: int, faults: tuple[str, ...]) -> None:
        self.settled = False
        transaction_id = self.unresolved[pick % len(self.unresolved)]
        before = self.services.get_transaction(transaction_id)
        asked_at = self.clock()
        posts = self.posts()
        self.sandbox.queue_faults(*faults)
        try:
            answer = self.services.fetch_status(transaction_id)
        finally:
            self.sandbox.set_faults(NO_FAULTS)
        assert self.posts() == posts, "asking about a transaction sent a mutation"
        assert answer.id == transaction_id
        operation = self.provider_operations().get(transaction_id)
        if answer.status is S.FAILED:
            # "Not found" is believed only once no attempt can still be on its way,
            # counted from when the transaction was last sent.
            assert operation is None
            assert self.clock() >= before.updated_at + BUDGET + NOT_FOUND_MARGIN
        elif answer.status in UNRESOLVED:
            found_for_sure = operation is not None and faults == ()
            assert not found_for_sure, f"the provider has {operation}, the ledger {answer}"
            if operation is None:
                assert faults != () or asked_at < before.updated_at + BUDGET + NOT_FOUND_MARGIN
        else:
            assert operation is not None
            assert answer.status is _STATUS_OF_OPERATION[operation["status"]]

    @rule()
    def reconcile(self) -> None:
        """What the reconciliation job does: ask about everything unsettled, late enough."""
        self.settled = False
        self.resolve_everything()

    @precondition(lambda self: not self.expired_once)
    @rule()
    def let_authorizations_expire(self) -> None:
        """The provider's clock passes every authorization's capture window."""
        self.settled = False
        self.expired_once = True
        self.world.provider_clock.skipped += AUTHORIZATION_LIFETIME.total_seconds()

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def ledger_agrees_with_itself_and_the_provider(self) -> None:
        self.check()
        self.settled = True

    def teardown(self) -> None:
        try:
            if self.settled:
                # The last step passed: reconcile, and nothing may stay unsettled.
                self.resolve_everything()
                self.check()
                assert self.unresolved == [], self.unresolved
        finally:
            self.sandbox.set_faults(NO_FAULTS)
            # Drop delivered outbox entries now, not from a timer after the store closed.
            self.services.ledger.outbox.close()
            self.offline.ledger.outbox.close()
            if self.owns_store:
                self.store.close()

    # -- one mutation, and what must hold of its outcome -----------------------------

    def new_key(self) -> str:
        return f"key-{next(self.keys)}"

    def mutate(self, call: Call, faults: tuple[str, ...]) -> Call:
        self.settled = False
        payment = self.services.get_payment(call.payment_id)
        recorded = self.services.list_transactions(call.payment_id)
        previous = next((t for t in recorded if t.idempotency_key == call.key), None)
        busy = any(t.status in IN_FLIGHT for t in recorded)
        expired = self.expired_at_provider(payment)
        requests = len(self.sandbox.requests_received)
        services = self.offline if faults == UNAVAILABLE else self.services
        if faults != UNAVAILABLE:
            self.sandbox.queue_faults(*faults)
        try:
            outcome: PaymentTransaction | Exception = invoke(services, call)
        except REFUSALS as refused:
            outcome = refused
        finally:
            # Faults the call did not use must not break the next one.
            self.sandbox.set_faults(NO_FAULTS)
        sent = self.sandbox.requests_received[requests:]

        if isinstance(outcome, Exception):
            # A refusal changes nothing and sends nothing.
            assert self.services.list_transactions(call.payment_id) == recorded
            assert self.services.get_payment(call.payment_id) == payment
            assert sent == ()
            # A recorded request is settled by its key, never refused (unless it failed:
            # then it is sent again, and checked again first).
            assert previous is None or previous.status is S.FAILED, (previous, outcome)
            if previous is None:
                assert isinstance(outcome, PaymentBusy) == busy, (outcome, recorded)
            return call

        transaction = outcome
        self.returned[transaction.id] = call.payment_id
        assert (transaction.payment_id, transaction.idempotency_key) == (call.payment_id, call.key)
        assert transaction.type.value == call.operation
        if previous is None:
            assert not busy, f"{call} was sent while {recorded} was in flight"
            assert not self.over_the_limit(payment, call), f"{call} went through on {payment}"
        else:
            assert transaction.id == previous.id
        if previous is not None and previous.status is not S.FAILED:
            # The same key is answered from the ledger, or by asking: never sent again.
            assert all(method == "GET" for method, _ in sent), sent
            if previous.status.is_final:
                assert sent == ()
                assert transaction == previous
            return call
        # Sent (again): what the faults let through decides the outcome.
        if faults == UNAVAILABLE:
            assert (transaction.status, transaction.failure) == (S.FAILED, "GatewayUnavailable")
            assert sent == ()
        elif len(faults) == 2:
            assert transaction.status is S.UNKNOWN, (faults, transaction)
        else:
            declines = self.declines(call, payment, expired)
            assert transaction.status is (S.DECLINED if declines else S.SUCCEEDED), (
                call,
                faults,
                transaction,
            )
            if transaction.succeeded and call.amount is not None:
                assert transaction.amount == call.amount
        return call

    def declines(self, call: Call, payment: Payment, expired: bool) -> bool:
        """Whether the provider refuses ``call``, from what the ledger and the test know."""
        if call.operation in ("authorize", "sale"):
            return self.tokens[call.payment_id] in DECLINING_TOKENS
        return call.operation in ("capture", "void") and expired

    def over_the_limit(self, payment: Payment, call: Call) -> bool:
        """Asks for more than the ledger says there is: refused before anything is sent."""
        if call.amount is None:
            return False
        if call.operation == "capture":
            return call.amount > payment.capturable
        return call.operation == "refund" and call.amount > payment.refundable

    # -- reconciliation ------------------------------------------------------------------

    def resolve_everything(self) -> None:
        # Late enough that "the provider has no record" is final (the exchange budget,
        # then the margin for clocks and queues).
        self.clock.skipped += BUDGET + NOT_FOUND_MARGIN + timedelta(seconds=1)
        posts = self.posts()
        for payment_id in self.payment_ids:
            for transaction in self.services.list_transactions(payment_id):
                if transaction.status in UNRESOLVED:
                    resolved = self.services.fetch_status(transaction.id)
                    assert resolved.status not in UNRESOLVED, resolved
        assert self.posts() == posts, "reconciliation sent a mutation"
        self.unresolved = []

    # -- the checks after every step -----------------------------------------------------

    def check(self) -> None:
        provider = self.provider_payments()
        operations = self.provider_operations(provider)
        everything: dict[str, PaymentTransaction] = {}
        unresolved = []
        for payment_id in self.payment_ids:
            payment = self.services.get_payment(payment_id)
            transactions = self.services.list_transactions(payment_id)
            assert states.problems(payment, transactions) == [], (payment, transactions)
            for transaction in transactions:
                everything[transaction.id] = transaction
                # Every call finished recording its outcome: nothing is left half-done.
                assert transaction.status is not S.PENDING, transaction
                if transaction.status in UNRESOLVED:
                    unresolved.append(transaction.id)
            self.check_totals(payment, transactions, provider)
        self.unresolved = unresolved

        # No transaction handed out is lost.
        for transaction_id, payment_id in self.returned.items():
            assert everything[transaction_id].payment_id == payment_id

        # Every operation at the provider is a transaction of the ledger, settled alike.
        for reference, operation in operations.items():
            recorded = everything.get(reference)
            assert recorded is not None, f"the ledger lost {operation}"
            assert recorded.type.value == operation["type"]
            assert recorded.status in {_STATUS_OF_OPERATION[operation["status"]], S.UNKNOWN}
        # And every settled transaction of the ledger is what the provider did.
        for transaction in everything.values():
            if transaction.type not in MUTATIONS or transaction.status is S.UNKNOWN:
                continue
            done = operations.get(transaction.id)
            if transaction.status is S.SUCCEEDED:
                assert done is not None, f"the provider has no {transaction}"
                assert done["status"] == "succeeded"
                assert done["amount"] == transaction.amount.minor_units, (done, transaction)
            elif transaction.status is S.DECLINED and transaction.type in states.CREATING:
                assert done is not None and done["status"] == "declined"
            else:
                # Failed, or a follow-up the provider refused: it never happened there.
                assert done is None, f"{transaction} happened at the provider: {done}"
                if transaction.status is S.DECLINED:
                    # Amounts are checked before sending, so only an expired
                    # authorization is refused by the provider, never an amount.
                    assert transaction.decline_reason is DeclineReason.AUTHORIZATION_EXPIRED

    def check_totals(
        self,
        payment: Payment,
        transactions: tuple[PaymentTransaction, ...],
        provider: dict[str, dict[str, Any]],
    ) -> None:
        creating = {t.id for t in transactions if t.type in states.CREATING}
        matches = [p for p in provider.values() if p["reference"] in creating]
        assert len(matches) <= 1, f"{payment.id} was created {len(matches)} times at the provider"
        theirs = matches[0] if matches else None
        if payment.gateway_reference is not None:
            assert theirs is not None and theirs["id"] == payment.gateway_reference
        if theirs is None:
            captured = refunded = capturable = 0
        else:
            captured, refunded = theirs["amount_captured"], theirs["amount_refunded"]
            capturable = theirs["amount_capturable"]
        ours = payment.totals()
        in_flight = [t for t in transactions if t.status in UNRESOLVED]
        if not in_flight:
            assert (ours["captured"], ours["refunded"]) == (captured, refunded), (payment, theirs)
            if theirs is None or not self.expired_at_provider(payment):
                assert ours["capturable"] == capturable, (payment, theirs)
            return

        # With a transaction unsettled the ledger may be behind the provider, never
        # ahead: it counts only what the provider confirmed, while the unsettled
        # operation may have happened there. It is behind by at most that operation's
        # amount (one mutation per payment is in flight at a time). What the
        # authorization holds may differ both ways: an authorize in flight may have
        # added to it at the provider; a capture may have taken its amount from it,
        # and a final capture or a void all of it.
        def in_flight_amount(*kinds: TransactionType) -> int:
            return sum(t.amount.minor_units for t in in_flight if t.type in kinds)

        behind = captured - ours["captured"]
        assert 0 <= behind <= in_flight_amount(T.CAPTURE, T.SALE), (payment, theirs, in_flight)
        behind = refunded - ours["refunded"]
        assert 0 <= behind <= in_flight_amount(T.REFUND), (payment, theirs, in_flight)
        if not self.expired_at_provider(payment):
            releases_all = any(t.type is T.VOID or t.final for t in in_flight)
            released = ours["capturable"] if releases_all else in_flight_amount(T.CAPTURE)
            held = capturable - ours["capturable"]
            assert -released <= held <= in_flight_amount(T.AUTHORIZE), (payment, theirs, in_flight)

    # -- the provider's side -------------------------------------------------------------

    def provider_payments(self) -> dict[str, dict[str, Any]]:
        """The sandbox's payments created during this example, by provider id."""
        return {
            p["id"]: p for p in self.sandbox.snapshot()["payments"] if p["id"] not in self.earlier
        }

    def provider_operations(
        self, provider: dict[str, dict[str, Any]] | None = None
    ) -> dict[str, dict[str, Any]]:
        """The operations at the provider, by the reference they were sent with."""
        found = provider if provider is not None else self.provider_payments()
        operations = [op for payment in found.values() for op in payment["operations"]]
        by_reference = {op["reference"]: op for op in operations}
        # A transaction is carried out once, whatever was retried or replayed.
        assert len(by_reference) == len(operations), f"an operation was duplicated: {operations}"
        return by_reference

    def expired_at_provider(self, payment: Payment) -> bool:
        if payment.gateway_reference is None:
            return False
        theirs = self.provider_payments().get(payment.gateway_reference)
        deadline = None if theirs is None else theirs["capture_before"]
        return deadline is not None and int(self.world.provider_clock()) > deadline

    def posts(self) -> int:
        return sum(method == "POST" for method, _ in self.sandbox.requests_received)


_STATUS_OF_OPERATION = {"succeeded": S.SUCCEEDED, "declined": S.DECLINED}

SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


# -- the sandbox and the databases ---------------------------------------------------------


@pytest.fixture
def provider_clock() -> ProviderClock:
    return ProviderClock()


@pytest.fixture
def paycore_dummy_sandbox(provider_clock: ProviderClock) -> DummySandbox:
    """The sandbox on a clock the machine can move (authorizations expire)."""
    return DummySandbox(seed=0, clock=provider_clock, faults=NO_FAULTS)


@pytest.fixture
def fresh_store(store: Store, tmp_path: Path) -> Callable[[], tuple[Store, bool]]:
    """A store with empty tables for each example: on SQLite a new migrated file, on
    PostgreSQL the test's store with its four tables truncated."""
    numbers = itertools.count(1)

    def fresh() -> tuple[Store, bool]:
        if store.dialect == "postgresql":
            tables = ", ".join(table.name for table in metadata.sorted_tables)
            with store.engine.begin() as connection:
                # An example that left a transaction open must not hang the next one.
                connection.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
                connection.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
            return store, False
        example = Store.connect(f"sqlite:///{tmp_path / f'example-{next(numbers)}.db'}")
        example.upgrade()
        return example, True

    return fresh


@pytest.fixture
def world(
    paycore_dummy_sandbox: DummySandbox,
    paycore_dummy_server: SandboxServer,
    provider_clock: ProviderClock,
    fresh_store: Callable[[], tuple[Store, bool]],
    http: httpx.Client,
) -> World:
    sandbox = paycore_dummy_sandbox

    def driver(base_url: str) -> GatewayDriver:
        config = {**sandbox.gateway_config(base_url), "timeouts": TIMEOUTS}
        return GatewayDriver(
            DummyGateway.from_config(config), client=http, hooks=None, retry=RETRIES
        )

    return World(
        sandbox=sandbox,
        provider_clock=provider_clock,
        online=driver(paycore_dummy_server.url),
        offline=driver(refused_address()),
        fresh_store=fresh_store,
    )


def test_random_operations_with_faults_keep_the_ledger_in_agreement_with_the_provider(
    world: World,
) -> None:
    machine = type("LedgerAgainstSandbox", (LedgerAgainstProvider,), {"world": world})
    run_state_machine_as_test(machine, settings=SETTINGS)
