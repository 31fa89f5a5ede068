"""AsyncPaymentTransactionServices against the dummy sandbox over HTTP, on both databases.

The async facade carries out the orchestration of the sync one: these tests check that
it gives the same results and errors, that many callers on one loop share one request,
that a cancelled call leaves its transaction for reconciliation, and that the ledger's
database calls never hold up the event loop.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import sqlalchemy as sa

from paycore.config import GatewaySettings, Settings
from paycore.errors import CurrencyMismatch, InvalidAmount, InvalidRequest, NotFound, PaycoreError
from paycore.gateways.driver import AsyncGatewayDriver, GatewayDriver
from paycore.gateways.dummy import DummyGateway
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.money import Money
from paycore.sandbox.server import SandboxServer
from paycore.transactions.async_services import AsyncPaymentTransactionServices
from paycore.transactions.model import (
    DeclineReason,
    PaymentMethod,
    PaymentStatus,
    TransactionStatus,
    TransactionType,
)
from paycore.transactions.records import Payment
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.states import problems
from paycore.transactions.store import Store

pytestmark = pytest.mark.anyio

# The cancelled capture must be cancelled well before its read timeout ends it.
STALLING = {"connect": 0.5, "read": 3.0, "total": 6.0}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def async_services(
    store: Store, paycore_dummy_gateway: DummyGateway
) -> AsyncIterator[AsyncPaymentTransactionServices]:
    """The async services with the dummy gateway (named ``dummy``), no hooks, on ``store``."""
    async with AsyncPaymentTransactionServices(
        store, {"dummy": paycore_dummy_gateway}, hooks=None
    ) as services:
        yield services


def usd(minor_units: int) -> Money:
    return Money(minor_units, "USD")


async def new_payment(
    services: AsyncPaymentTransactionServices, minor_units: int = 1000, token: str = "tok_visa"
) -> Payment:
    return await services.create_payment(
        usd(minor_units), gateway="dummy", payment_method=PaymentMethod(type="card", token=token)
    )


def provider_payment(sandbox: DummySandbox, reference: str | None) -> dict[str, Any]:
    (found,) = [p for p in sandbox.snapshot()["payments"] if p["id"] == reference]
    return dict(found)


def posts(sandbox: DummySandbox, suffix: str = "") -> list[str]:
    return [
        path
        for method, path in sandbox.requests_received
        if method == "POST" and path.endswith(suffix)
    ]


def rows(store: Store) -> tuple[int, int]:
    """How many payments and transactions the ledger holds."""
    with store.engine.connect() as connection:
        return (
            connection.execute(sa.text("SELECT count(*) FROM payments")).scalar_one(),
            connection.execute(sa.text("SELECT count(*) FROM transactions")).scalar_one(),
        )


def hold_the_ledger(store: Store, seconds: float) -> list[float]:
    """Lock the ledger against every write for ``seconds``, from a thread of its own.

    Returns once the lock is held, with a list that gets the time (``time.monotonic()``)
    it is released.
    """
    locked = threading.Event()
    released: list[float] = []

    def hold() -> None:
        with store.writing() as session:  # SQLite: BEGIN IMMEDIATE takes the write lock
            if store.dialect == "postgresql":
                session.connection.exec_driver_sql("LOCK TABLE transactions IN EXCLUSIVE MODE")
            locked.set()
            time.sleep(seconds)
        released.append(time.monotonic())

    threading.Thread(target=hold, daemon=True).start()
    assert locked.wait(10), "the ledger could not be locked"
    return released


# -- the same results as the sync facade -------------------------------------------------


def test_the_async_facade_has_every_method_of_the_sync_one_with_the_same_parameters() -> None:
    shared = [
        "create_payment",
        "authorize",
        "sale",
        "capture",
        "void",
        "refund",
        "fetch_status",
        "check",
        "apply_event",
        "get_payment",
        "get_transaction",
        "list_transactions",
        "payments_of",
    ]
    for name in shared:
        sync_method = getattr(PaymentTransactionServices, name)
        async_method = getattr(AsyncPaymentTransactionServices, name)
        assert inspect.iscoroutinefunction(async_method), name
        assert (
            inspect.signature(async_method).parameters == inspect.signature(sync_method).parameters
        ), name
        assert f"PaymentTransactionServices.{name}" in (async_method.__doc__ or ""), name
    assert inspect.iscoroutinefunction(AsyncPaymentTransactionServices.aclose)
    assert inspect.signature(AsyncPaymentTransactionServices.from_settings) == inspect.signature(
        PaymentTransactionServices.from_settings
    )


async def test_authorize_partial_captures_refund_and_void_match_the_provider(
    async_services: AsyncPaymentTransactionServices, sandbox: DummySandbox
) -> None:
    services = async_services
    payment = await new_payment(services, 1000)

    steps = [
        await services.authorize(payment.id),
        await services.capture(payment.id, usd(300)),
        await services.capture(payment.id, usd(200)),
        await services.refund(payment.id, usd(100)),
        await services.void(payment.id),
    ]

    assert [(t.type, t.status, t.amount) for t in steps] == [
        (TransactionType.AUTHORIZE, TransactionStatus.SUCCEEDED, usd(1000)),
        (TransactionType.CAPTURE, TransactionStatus.SUCCEEDED, usd(300)),
        (TransactionType.CAPTURE, TransactionStatus.SUCCEEDED, usd(200)),
        (TransactionType.REFUND, TransactionStatus.SUCCEEDED, usd(100)),
        (TransactionType.VOID, TransactionStatus.SUCCEEDED, usd(500)),
    ]
    payment = await services.get_payment(payment.id)
    provider = provider_payment(sandbox, payment.gateway_reference)
    assert (
        payment.totals()
        == {
            "authorized": provider["amount"],
            "captured": provider["amount_captured"],
            "refunded": provider["amount_refunded"],
            "capturable": provider["amount_capturable"],
        }
        == {"authorized": 1000, "captured": 500, "refunded": 100, "capturable": 0}
    )
    assert payment.status == provider["status"] == PaymentStatus.PARTIALLY_REFUNDED
    assert [(op["type"], op["reference"]) for op in provider["operations"]] == [
        (t.type.value, t.id) for t in steps
    ]
    recorded = await services.list_transactions(payment.id)
    assert recorded == tuple(steps)
    assert await services.get_transaction(steps[1].id) == steps[1]
    assert problems(payment, recorded) == []


async def test_a_declined_card_is_a_declined_transaction_not_an_exception(
    async_services: AsyncPaymentTransactionServices,
) -> None:
    payment = await new_payment(async_services, token="tok_declined")

    declined = await async_services.authorize(payment.id)

    assert declined.status is TransactionStatus.DECLINED
    assert declined.decline_reason is DeclineReason.CARD_DECLINED
    payment = await async_services.get_payment(payment.id)
    assert payment.status is PaymentStatus.FAILED
    assert payment.totals() == {"authorized": 0, "captured": 0, "refunded": 0, "capturable": 0}


BadCall = Callable[[Any, Payment], Any]

BAD_CALLS: dict[str, tuple[BadCall, type[PaycoreError]]] = {
    "a float amount": (lambda s, p: s.create_payment(10.0, gateway="dummy"), InvalidAmount),
    "an integer amount": (lambda s, p: s.create_payment(1000, gateway="dummy"), InvalidAmount),
    "a gateway not configured": (
        lambda s, p: s.create_payment(usd(100), gateway="elsewhere"),
        InvalidRequest,
    ),
    "a float to capture": (lambda s, p: s.capture(p.id, 3.0), InvalidAmount),
    "more than authorized": (lambda s, p: s.capture(p.id, usd(1001)), InvalidAmount),
    "another currency": (lambda s, p: s.refund(p.id, Money(100, "EUR")), CurrencyMismatch),
    "an unknown payment": (lambda s, p: s.capture("pay_unknown", usd(100)), NotFound),
    "a payment id that is no string": (lambda s, p: s.authorize(42), InvalidRequest),
    "an unknown payment to read": (lambda s, p: s.get_payment("pay_unknown"), NotFound),
    "an unknown transaction": (lambda s, p: s.fetch_status("txn_unknown"), NotFound),
}


@pytest.mark.parametrize(("call", "expected"), BAD_CALLS.values(), ids=BAD_CALLS.keys())
async def test_bad_input_raises_the_errors_of_the_sync_facade_and_writes_nothing(
    async_services: AsyncPaymentTransactionServices,
    services: PaymentTransactionServices,
    sandbox: DummySandbox,
    store: Store,
    call: BadCall,
    expected: type[PaycoreError],
) -> None:
    payment = await new_payment(async_services, 1000)
    await async_services.authorize(payment.id)
    before = (rows(store), len(sandbox.requests_received))

    with pytest.raises(expected) as async_error:
        await call(async_services, payment)
    with pytest.raises(expected) as sync_error:
        await asyncio.to_thread(call, services, payment)

    assert type(async_error.value) is type(sync_error.value) is expected
    assert str(async_error.value) == str(sync_error.value)
    assert (rows(store), len(sandbox.requests_received)) == before


# -- many callers on one loop ------------------------------------------------------------


async def test_16_identical_captures_on_one_loop_send_one_request_and_get_one_transaction(
    async_services: AsyncPaymentTransactionServices, sandbox: DummySandbox
) -> None:
    services = async_services
    payment = await new_payment(services, 1000)
    await services.authorize(payment.id)

    captured = await asyncio.gather(
        *(services.capture(payment.id, usd(600), idempotency_key="ship-1") for _ in range(16))
    )

    assert len(captured) == 16
    assert all(t == captured[0] for t in captured)
    assert (captured[0].type, captured[0].status, captured[0].amount) == (
        TransactionType.CAPTURE,
        TransactionStatus.SUCCEEDED,
        usd(600),
    )
    assert len(posts(sandbox, "/captures")) == 1
    recorded = await services.list_transactions(payment.id)
    assert [t.id for t in recorded[1:]] == [captured[0].id]
    payment = await services.get_payment(payment.id)
    assert payment.captured == usd(600)
    assert provider_payment(sandbox, payment.gateway_reference)["amount_captured"] == 600
    assert problems(payment, recorded) == []


async def test_database_calls_run_off_the_loop_which_keeps_ticking_while_the_ledger_is_locked(
    async_services: AsyncPaymentTransactionServices, sandbox: DummySandbox, store: Store
) -> None:
    services = async_services
    payments = [await new_payment(services, 100 + i) for i in range(20)]
    ticks: list[float] = []

    async def tick() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    hold = 1.0
    started = time.monotonic()
    released = hold_the_ledger(store, hold)
    try:
        authorizing = asyncio.gather(*(services.authorize(p.id) for p in payments))
        await asyncio.sleep(hold / 2)
        # Every write ahead waits for the lock: nothing could be sent yet.
        assert posts(sandbox) == []
        authorized = await authorizing
    finally:
        ticker.cancel()

    assert [t.status for t in authorized] == [TransactionStatus.SUCCEEDED] * 20
    assert len(posts(sandbox, "/v1/payments")) == 20
    assert released[0] >= started + hold * 0.9
    # The loop went on meanwhile: a store call on the loop would stop it for `hold`.
    while_locked = [t for t in ticks if started <= t <= released[0]]
    gaps = [later - earlier for earlier, later in itertools.pairwise(while_locked)]
    assert len(while_locked) >= 20
    assert max(gaps) < hold / 3


# -- cancellation ------------------------------------------------------------------------


async def test_a_capture_cancelled_while_the_provider_stalls_stays_pending_until_fetch_status(
    store: Store, sandbox: DummySandbox, paycore_dummy_server: SandboxServer
) -> None:
    gateway = DummyGateway.from_config(
        {**sandbox.gateway_config(paycore_dummy_server.url), "timeouts": STALLING}
    )
    driver = AsyncGatewayDriver(gateway, hooks=None)
    async with AsyncPaymentTransactionServices(store, {"dummy": driver}, hooks=None) as services:
        payment = await new_payment(services, 1000)
        await services.authorize(payment.id)
        payment = await services.get_payment(payment.id)
        sandbox.queue_faults("timeout")  # the provider captures, then does not answer

        capturing = asyncio.create_task(
            services.capture(payment.id, usd(300), idempotency_key="ship-1")
        )
        await until(
            lambda: provider_payment(sandbox, payment.gateway_reference)["amount_captured"] == 300
        )
        assert not capturing.done()
        cancelled_at = time.monotonic()
        capturing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await capturing

        assert time.monotonic() - cancelled_at < STALLING["read"] / 2
        _, pending = await services.list_transactions(payment.id)
        assert (pending.type, pending.status) == (
            TransactionType.CAPTURE,
            TransactionStatus.PENDING,
        )
        assert pending.failure is None  # never recorded as an error of its own
        assert (await services.get_payment(payment.id)).captured == usd(0)

        settled = await services.fetch_status(pending.id)

        assert (settled.id, settled.status) == (pending.id, TransactionStatus.SUCCEEDED)
        payment = await services.get_payment(payment.id)
        assert payment.captured == usd(300)
        assert payment.status is PaymentStatus.PARTIALLY_CAPTURED
        assert len(posts(sandbox, "/captures")) == 1
        assert problems(payment, await services.list_transactions(payment.id)) == []
    assert driver.client.is_closed


async def test_a_call_cancelled_during_a_database_call_returns_only_once_that_call_is_done(
    async_services: AsyncPaymentTransactionServices, sandbox: DummySandbox, store: Store
) -> None:
    services = async_services
    payment = await new_payment(services, 1000)
    released = hold_the_ledger(store, 0.5)

    authorizing = asyncio.create_task(services.authorize(payment.id))
    await asyncio.sleep(0.1)  # its write ahead is waiting for the lock
    authorizing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await authorizing

    # The cancellation did not overtake the write ahead, and nothing was sent.
    assert released and time.monotonic() >= released[0]
    (written,) = await services.list_transactions(payment.id)
    assert (written.type, written.status) == (TransactionType.AUTHORIZE, TransactionStatus.PENDING)
    assert posts(sandbox) == []


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.01)


# -- building the services ---------------------------------------------------------------


async def test_from_settings_builds_services_for_the_configured_database_and_gateways(
    database_url: str, sandbox: DummySandbox, paycore_dummy_server: SandboxServer
) -> None:
    settings = Settings(
        database_url=database_url,
        gateways={
            "shop": GatewaySettings(
                name="shop",
                plugin="dummy",
                config=sandbox.gateway_config(paycore_dummy_server.url),
            )
        },
    )
    async with AsyncPaymentTransactionServices.from_settings(settings, hooks=None) as services:
        payment = await services.create_payment(
            usd(2599), payment_method=PaymentMethod(type="card", token="tok_visa")
        )
        sale = await services.sale(payment.id)

        assert payment.gateway == "shop"
        assert (sale.type, sale.status) == (TransactionType.SALE, TransactionStatus.SUCCEEDED)
        assert (await services.get_payment(payment.id)).status is PaymentStatus.CAPTURED


def test_a_sync_driver_or_anything_else_is_refused_as_a_gateway(
    store: Store, paycore_dummy_gateway: DummyGateway
) -> None:
    with (
        GatewayDriver(paycore_dummy_gateway, hooks=None) as sync_driver,
        pytest.raises(InvalidRequest, match="AsyncGatewayDriver was expected"),
    ):
        AsyncPaymentTransactionServices(store, {"dummy": sync_driver}, hooks=None)  # type: ignore[dict-item]
    with pytest.raises(InvalidRequest, match="at least one gateway"):
        AsyncPaymentTransactionServices(store, {}, hooks=None)
