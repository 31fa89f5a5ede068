"""Reconciliation against the dummy sandbox, on every database, with a clock the tests move."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from paycore import hookspecs, plugins
from paycore.errors import InvalidRequest
from paycore.gateways.attempts import RetryPolicy
from paycore.gateways.driver import GatewayDriver
from paycore.gateways.dummy import DummyGateway
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.money import Money
from paycore.sandbox.server import SandboxServer
from paycore.transactions import states
from paycore.transactions.ledger import Settlement
from paycore.transactions.model import PaymentMethod, TransactionStatus, TransactionType
from paycore.transactions.orchestration import NOT_FOUND_MARGIN
from paycore.transactions.reconcile import (
    Reconciler,
    ReconcileReport,
    Schedule,
    parse_duration,
)
from paycore.transactions.records import Payment, PaymentTransaction
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store

CARD = PaymentMethod(type="card", token="tok_visa")
BANK_TRANSFER = PaymentMethod(type="bank_transfer")
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


class WallClock:
    """The ledger's clock, moved by the test: ``clock.advance(minutes=6)``."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def wall() -> WallClock:
    return WallClock()


def services_for(
    store: Store, gateway: DummyGateway, wall: WallClock, *, hooks: Any = None
) -> PaymentTransactionServices:
    # One attempt per exchange: a dropped answer is "unknown" at once, not retried.
    driver = GatewayDriver(gateway, hooks=None, retry=RetryPolicy(max_attempts=1))
    return PaymentTransactionServices(store, {"dummy": driver}, hooks=hooks, clock=wall)


@pytest.fixture
def services(
    store: Store, paycore_dummy_gateway: DummyGateway, wall: WallClock
) -> Iterator[PaymentTransactionServices]:
    """Services on ``store`` over the dummy sandbox, on the test's clock, no retries."""
    services = services_for(store, paycore_dummy_gateway, wall)
    yield services
    services.close()


@pytest.fixture
def reconciler(services: PaymentTransactionServices, wall: WallClock) -> Reconciler:
    return Reconciler(services)


@pytest.fixture
def authorized(
    services: PaymentTransactionServices, new_payment: Callable[..., Payment], wall: WallClock
) -> Payment:
    payment = new_payment()
    assert services.authorize(payment.id).succeeded
    wall.advance(seconds=1)  # the ledger orders a payment's transactions by time
    return payment


def unknown_capture(
    services: PaymentTransactionServices, sandbox: DummySandbox, payment: Payment
) -> PaymentTransaction:
    """Capture ``payment``: the sandbox captures, the connection drops before the answer."""
    sandbox.queue_faults("drop")
    transaction = services.capture(payment.id)
    assert transaction.status is TransactionStatus.UNKNOWN
    return transaction


def bank_transfer(services: PaymentTransactionServices) -> PaymentTransaction:
    """A sale by bank transfer: ``processing`` until the sandbox settles it."""
    payment = services.create_payment(
        Money(1500, "EUR"), gateway="dummy", payment_method=BANK_TRANSFER
    )
    transaction = services.sale(payment.id)
    assert transaction.status is TransactionStatus.PROCESSING
    return transaction


def gets(sandbox: DummySandbox) -> int:
    return sum(method == "GET" for method, _ in sandbox.requests_received)


def posts_to(sandbox: DummySandbox, suffix: str) -> int:
    return sum(
        method == "POST" and path.endswith(suffix) for method, path in sandbox.requests_received
    )


def only_row(report: ReconcileReport, transaction: PaymentTransaction) -> Any:
    (row,) = report.rows
    assert row.transaction_id == transaction.id
    return row


def assert_consistent(services: PaymentTransactionServices, payment_id: str) -> Payment:
    payment = services.get_payment(payment_id)
    assert states.problems(payment, services.list_transactions(payment_id)) == []
    return payment


# -- the schedule and durations ----------------------------------------------------------


def test_the_default_schedule_waits_an_hour_after_the_first_check_then_a_day() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    schedule = Schedule()

    assert schedule.next_check(0, now) == now
    assert schedule.next_check(1, now) == now + HOUR
    assert [schedule.next_check(n, now) for n in (2, 3, 30)] == [now + DAY] * 3


def test_a_schedule_takes_its_own_delays_and_repeats_the_last() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    schedule = Schedule([timedelta(minutes=10), timedelta(minutes=30), 4 * HOUR])

    assert [schedule.delay_after(n) for n in (1, 2, 3, 4)] == [
        timedelta(minutes=10),
        timedelta(minutes=30),
        4 * HOUR,
        4 * HOUR,
    ]
    assert schedule.next_check(2, now) == now + timedelta(minutes=30)


@pytest.mark.parametrize("delays", [[], [timedelta(0)], [HOUR, -HOUR], ["1h"]])
def test_a_schedule_without_positive_delays_is_refused(delays: list[Any]) -> None:
    with pytest.raises(InvalidRequest, match="positive"):
        Schedule(delays)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h", HOUR),
        ("2d", 2 * DAY),
        ("0s", timedelta(0)),
    ],
)
def test_durations_are_a_whole_number_and_a_unit(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["5x", "5", "m", "1.5h", "-1h", "1h30m", "5 m", "", "1H"])
def test_other_durations_are_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(InvalidRequest, match=r"30s, 5m, 1h, 2d"):
        parse_duration(text)


def test_a_duration_beyond_a_century_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="too long"):
        parse_duration("999999999d")


# -- resolving -----------------------------------------------------------------------------


def test_an_unknown_capture_resolves_to_what_the_provider_did_without_capturing_again(
    services: PaymentTransactionServices,
    reconciler: Reconciler,
    sandbox: DummySandbox,
    authorized: Payment,
    wall: WallClock,
) -> None:
    capture = unknown_capture(services, sandbox, authorized)
    wall.advance(minutes=6)

    report = reconciler.run()

    row = only_row(report, capture)
    assert (row.before, row.after) == (TransactionStatus.UNKNOWN, TransactionStatus.SUCCEEDED)
    assert row.error is None and row.next_check_at is None
    assert report.unresolved == ()
    assert report.counts == {"checked": 1, "due": 1, "resolved": 1, "unresolved": 0, "errors": 0}
    assert services.get_transaction(capture.id).status is TransactionStatus.SUCCEEDED
    (provided,) = sandbox.snapshot()["payments"]
    payment = assert_consistent(services, authorized.id)
    assert payment.captured == Money(provided["amount_captured"], "USD") == Money(1000, "USD")
    assert payment.capturable == Money(provided["amount_capturable"], "USD")
    assert posts_to(sandbox, "/captures") == 1


def test_a_pending_sale_left_by_a_crashed_caller_is_resolved_only_after_the_grace_period(
    services: PaymentTransactionServices,
    reconciler: Reconciler,
    sandbox: DummySandbox,
    new_payment: Callable[..., Payment],
    wall: WallClock,
) -> None:
    payment = new_payment()
    begun = services.ledger.begin(payment.id, TransactionType.SALE, None, idempotency_key=None)
    assert begun.request is not None
    # The caller sent the sale, then died before recording the answer.
    driver = services.drivers["dummy"]
    driver.run(driver.gateway.sale(begun.request), operation="sale")
    requests_before = len(sandbox.requests_received)

    wall.advance(minutes=4, seconds=59)
    early = reconciler.run()

    assert early.rows == ()
    assert len(sandbox.requests_received) == requests_before
    assert services.get_transaction(begun.transaction.id).status is TransactionStatus.PENDING

    wall.advance(seconds=2)
    report = reconciler.run()

    row = only_row(report, begun.transaction)
    assert (row.before, row.after) == (TransactionStatus.PENDING, TransactionStatus.SUCCEEDED)
    resolved = assert_consistent(services, payment.id)
    assert resolved.captured == Money(1000, "USD")
    assert resolved.gateway_reference == sandbox.snapshot()["payments"][0]["id"]
    assert posts_to(sandbox, "/v1/payments") == 1


@pytest.fixture
def patient_gateway(sandbox: DummySandbox, paycore_dummy_server: SandboxServer) -> DummyGateway:
    """The dummy gateway with a 10-minute exchange budget: longer than the grace period."""
    config = {**sandbox.gateway_config(paycore_dummy_server.url), "timeouts": {"total": 600}}
    gateway = DummyGateway.from_config(config)
    assert isinstance(gateway, DummyGateway)
    return gateway


def test_a_capture_the_provider_never_received_fails_only_once_no_attempt_can_be_in_flight(
    store: Store, patient_gateway: DummyGateway, sandbox: DummySandbox, wall: WallClock
) -> None:
    with services_for(store, patient_gateway, wall) as services:
        payment = services.create_payment(Money(1000, "USD"), gateway="dummy", payment_method=CARD)
        assert services.authorize(payment.id).succeeded
        wall.advance(seconds=1)
        begun = services.ledger.begin(
            payment.id, TransactionType.CAPTURE, None, idempotency_key=None
        )
        created = begun.transaction.created_at
        reconciler = Reconciler(services)

        wall.advance(minutes=6)  # past the grace period, within the exchange's budget
        first = reconciler.run()

        row = only_row(first, begun.transaction)
        assert row.after is TransactionStatus.PENDING
        assert row.error is None
        assert "no record of it yet" in row.note
        assert first.unresolved == (row,)
        assert row.next_check_at == wall.now + HOUR
        assert services.get_transaction(begun.transaction.id).checks == 1
        assert wall.now < created + timedelta(seconds=600) + NOT_FOUND_MARGIN

        wall.advance(hours=1)
        second = reconciler.run()

        row = only_row(second, begun.transaction)
        assert (row.before, row.after) == (TransactionStatus.PENDING, TransactionStatus.FAILED)
        assert row.note.startswith("NotFound: ")
        failed = services.get_transaction(begun.transaction.id)
        assert failed.failure == "NotFound"
        payment = assert_consistent(services, payment.id)
        assert payment.captured == Money(0, "USD")
        assert payment.capturable == Money(1000, "USD")
        assert posts_to(sandbox, "/captures") == 0


def test_an_unresolved_transaction_is_checked_again_only_when_its_next_check_is_due(
    services: PaymentTransactionServices,
    reconciler: Reconciler,
    sandbox: DummySandbox,
    wall: WallClock,
) -> None:
    sale = bank_transfer(services)
    started = wall.now
    asked = gets(sandbox)

    def run_at(moment: timedelta) -> ReconcileReport:
        wall.now = started + moment
        return reconciler.run()

    first = run_at(timedelta(minutes=6))
    row = only_row(first, sale)
    assert row.after is TransactionStatus.PROCESSING
    assert (row.checks, row.next_check_at) == (1, wall.now + HOUR)
    assert row.note.startswith("still processing at the gateway; next check ")
    assert gets(sandbox) == asked + 1

    assert run_at(timedelta(minutes=65)).rows == ()
    assert gets(sandbox) == asked + 1

    second = run_at(timedelta(minutes=66))
    assert (only_row(second, sale).checks, only_row(second, sale).next_check_at) == (
        2,
        wall.now + DAY,
    )
    assert gets(sandbox) == asked + 2

    assert run_at(timedelta(minutes=66) + DAY - timedelta(seconds=1)).rows == ()
    third = run_at(timedelta(minutes=66) + DAY)
    assert only_row(third, sale).checks == 3
    assert gets(sandbox) == asked + 3
    assert services.get_transaction(sale.id).status is TransactionStatus.PROCESSING


def test_a_processing_bank_transfer_is_resolved_once_the_provider_settles_it(
    services: PaymentTransactionServices,
    reconciler: Reconciler,
    sandbox: DummySandbox,
    paycore_dummy_server: SandboxServer,
    http: httpx.Client,
    wall: WallClock,
) -> None:
    sale = bank_transfer(services)
    wall.advance(minutes=6)
    assert only_row(reconciler.run(), sale).after is TransactionStatus.PROCESSING

    reference = services.get_payment(sale.payment_id).gateway_reference
    settled = http.post(
        f"{paycore_dummy_server.url}/_sandbox/payments/{reference}/settle",
        json={"outcome": "succeeded"},
    )
    assert settled.status_code == 200, settled.text
    wall.advance(hours=1)
    report = reconciler.run()

    row = only_row(report, sale)
    assert (row.before, row.after) == (TransactionStatus.PROCESSING, TransactionStatus.SUCCEEDED)
    assert report.counts["resolved"] == 1
    payment = assert_consistent(services, sale.payment_id)
    assert payment.captured == Money(1500, "EUR")


def test_a_dry_run_lists_what_is_due_and_neither_asks_nor_records_anything(
    services: PaymentTransactionServices,
    reconciler: Reconciler,
    sandbox: DummySandbox,
    authorized: Payment,
    wall: WallClock,
) -> None:
    capture = unknown_capture(services, sandbox, authorized)
    wall.advance(seconds=1)
    sale = bank_transfer(services)
    wall.advance(minutes=6)
    requests = len(sandbox.requests_received)
    recorded = [services.get_transaction(capture.id), services.get_transaction(sale.id)]

    report = reconciler.run(dry_run=True)

    assert [(row.transaction_id, row.before, row.after) for row in report.rows] == [
        (capture.id, TransactionStatus.UNKNOWN, TransactionStatus.UNKNOWN),
        (sale.id, TransactionStatus.PROCESSING, TransactionStatus.PROCESSING),
    ]
    assert all(row.note.startswith("due: would be checked") for row in report.rows)
    assert (
        report.summary() == "dry run: 2 transactions due for a check; nothing was asked or recorded"
    )
    assert len(sandbox.requests_received) == requests
    assert [services.get_transaction(capture.id), services.get_transaction(sale.id)] == recorded

    assert reconciler.run().counts["checked"] == 2  # what was due is still due


def test_a_gateway_that_is_down_leaves_its_transaction_unresolved_and_the_run_goes_on(
    services: PaymentTransactionServices,
    reconciler: Reconciler,
    sandbox: DummySandbox,
    authorized: Payment,
    new_payment: Callable[..., Payment],
    wall: WallClock,
) -> None:
    first = unknown_capture(services, sandbox, authorized)
    wall.advance(seconds=1)
    other = new_payment(2000)
    assert services.authorize(other.id).succeeded
    wall.advance(seconds=1)
    second = unknown_capture(services, sandbox, other)
    wall.advance(minutes=6)
    sandbox.queue_faults("error")  # the first look-up meets a provider failing with a 500

    report = reconciler.run()

    down, up = report.rows
    assert (down.transaction_id, up.transaction_id) == (first.id, second.id)
    assert down.after is TransactionStatus.UNKNOWN
    assert down.error is not None and "500" in down.error
    assert down.note.startswith("check failed: ")
    assert down.next_check_at == wall.now + HOUR
    assert up.after is TransactionStatus.SUCCEEDED
    assert report.unresolved == (down,)
    assert report.errors == (down,)
    assert report.counts == {"checked": 2, "due": 2, "resolved": 1, "unresolved": 1, "errors": 1}
    assert report.summary().startswith("2 checked: 1 resolved, 1 still unresolved (1 check failed)")
    assert services.get_transaction(first.id).status is TransactionStatus.UNKNOWN
    assert_consistent(services, authorized.id)

    wall.advance(hours=1)
    again = reconciler.run()

    assert only_row(again, first).after is TransactionStatus.SUCCEEDED
    assert posts_to(sandbox, "/captures") == 2


@pytest.fixture
def two_gateways(
    store: Store, paycore_dummy_gateway: DummyGateway, wall: WallClock, unused_port: int
) -> Iterator[PaymentTransactionServices]:
    """Services with the dummy sandbox (``dummy``) and a gateway nobody listens for
    (``closed``)."""
    closed = DummyGateway.from_config(
        {
            "base_url": f"http://127.0.0.1:{unused_port}",
            "api_key": "sk_test_dummy",
            "webhook_secret": "whsec_test",
            "timeouts": {"connect": 0.5, "read": 0.5, "total": 1},
        }
    )
    assert isinstance(closed, DummyGateway)
    once = RetryPolicy(max_attempts=1)
    drivers = {
        name: GatewayDriver(gateway, hooks=None, retry=once)
        for name, gateway in (("dummy", paycore_dummy_gateway), ("closed", closed))
    }
    services = PaymentTransactionServices(store, drivers, hooks=None, clock=wall)
    yield services
    services.close()


def pending_sale(
    services: PaymentTransactionServices, gateway: str, wall: WallClock
) -> PaymentTransaction:
    """A sale written ahead and never sent, one second after the previous one."""
    payment = services.create_payment(Money(1000, "USD"), gateway=gateway, payment_method=CARD)
    wall.advance(seconds=1)
    return services.ledger.begin(
        payment.id, TransactionType.SALE, None, idempotency_key=None
    ).transaction


def test_a_gateway_nobody_listens_on_fails_its_checks_and_others_are_still_checked(
    two_gateways: PaymentTransactionServices, wall: WallClock
) -> None:
    unreachable = pending_sale(two_gateways, "closed", wall)
    reachable = pending_sale(two_gateways, "dummy", wall)
    wall.advance(minutes=6)

    report = Reconciler(two_gateways).run()

    down, up = report.rows
    assert down.transaction_id == unreachable.id
    assert down.after is TransactionStatus.PENDING
    assert down.error is not None and down.error.startswith("GatewayUnavailable: ")
    assert up.transaction_id == reachable.id
    assert up.after is TransactionStatus.FAILED  # the sandbox never heard of it: not sent
    assert report.unresolved == (down,)


def test_a_run_stops_asking_a_gateway_after_failures_in_a_row_and_leaves_the_rest_due(
    two_gateways: PaymentTransactionServices, wall: WallClock
) -> None:
    unreachable = [pending_sale(two_gateways, "closed", wall) for _ in range(4)]
    reachable = pending_sale(two_gateways, "dummy", wall)
    wall.advance(minutes=6)
    reconciler = Reconciler(two_gateways, batch=1, max_failures=2)

    report = reconciler.run()

    assert [row.transaction_id for row in report.rows] == [
        *(t.id for t in unreachable),
        reachable.id,
    ]
    failed, unasked, (resolved,) = report.rows[:2], report.rows[2:4], report.rows[4:]
    assert all(row.error and row.error.startswith("GatewayUnavailable") for row in failed)
    assert all(row.checks == 1 and row.next_check_at == wall.now + HOUR for row in failed)
    assert [row.error for row in unasked] == [
        "not asked: gateway 'closed' failed 2 checks in a row in this run"
    ] * 2
    assert all(row.checks == 0 and row.next_check_at is None for row in unasked)
    assert resolved.after is TransactionStatus.FAILED
    assert report.counts == {"checked": 5, "due": 5, "resolved": 1, "unresolved": 4, "errors": 4}

    again = reconciler.run()

    assert [row.transaction_id for row in again.rows] == [t.id for t in unreachable[2:]]
    assert all(row.checks == 1 for row in again.rows)


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_limit_checks_the_oldest_first_and_leaves_the_rest_due(
    services: PaymentTransactionServices,
    reconciler: Reconciler,
    wall: WallClock,
) -> None:
    older = bank_transfer(services)
    wall.advance(seconds=1)
    newer = bank_transfer(services)
    wall.advance(minutes=6)

    first = reconciler.run(limit=1)
    rest = reconciler.run()

    assert [row.transaction_id for row in first.rows] == [older.id]
    assert [row.transaction_id for row in rest.rows] == [newer.id]


def test_older_than_replaces_the_grace_period_for_one_run(
    services: PaymentTransactionServices, reconciler: Reconciler, wall: WallClock
) -> None:
    sale = bank_transfer(services)
    wall.advance(seconds=40)

    assert reconciler.run(older_than=timedelta(minutes=1)).rows == ()
    assert only_row(reconciler.run(older_than=timedelta(seconds=30)), sale).checks == 1


def test_batches_reach_every_transaction_due(
    services: PaymentTransactionServices, wall: WallClock
) -> None:
    sales = [bank_transfer(services) for _ in range(5)]
    wall.advance(minutes=6)

    report = Reconciler(services, batch=2).run()

    assert sorted(row.transaction_id for row in report.rows) == sorted(s.id for s in sales)


@pytest.mark.parametrize(
    "options",
    [{"older_than": timedelta(seconds=-1)}, {"limit": 0}, {"older_than": "5m"}],
)
def test_bad_run_options_are_refused(reconciler: Reconciler, options: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest):
        reconciler.run(**options)


# -- hooks a stopped process never delivered ---------------------------------------------


class RecordingHooks:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    @hookspecs.hookimpl
    def paycore_transaction_recorded(self, payment: Payment, transaction: Any) -> None:
        self.calls.append(("recorded", transaction.id))

    @hookspecs.hookimpl
    def paycore_payment_status_changed(
        self, payment: Payment, previous_status: Any, transaction: Any
    ) -> None:
        self.calls.append(("status_changed", payment.id))


def test_hook_notifications_a_stopped_process_left_are_delivered_by_a_run(
    store: Store,
    paycore_dummy_gateway: DummyGateway,
    wall: WallClock,
) -> None:
    recording = RecordingHooks()
    manager = plugins.new_hook_manager(load_entry_points=False)
    manager.register(recording)
    with services_for(store, paycore_dummy_gateway, wall, hooks=manager.hook) as services:
        payment = services.create_payment(Money(1000, "USD"), gateway="dummy", payment_method=CARD)
        begun = services.ledger.begin(
            payment.id, TransactionType.AUTHORIZE, None, idempotency_key=None
        )
        # Committed, then the process stopped before calling the hooks.
        services.ledger.record(
            begun.transaction.id,
            Settlement(status=TransactionStatus.DECLINED, decline_code="card_declined"),
        )
        reconciler = Reconciler(services)

        dry = reconciler.run(dry_run=True)
        wall.advance(minutes=2)
        report = reconciler.run()
        again = reconciler.run()

    assert dry.redelivered == 0
    assert report.rows == ()
    assert report.redelivered == 2
    assert recording.calls == [
        ("recorded", begun.transaction.id),
        ("status_changed", payment.id),
    ]
    assert again.redelivered == 0
    assert report.summary() == "nothing was due for a check; 2 hook notifications redelivered"
