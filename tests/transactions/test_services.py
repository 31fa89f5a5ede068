"""PaymentTransactionServices against the dummy sandbox over HTTP, on both databases."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs
import httpx
import pytest
import sqlalchemy as sa

from paycore.errors import (
    CurrencyMismatch,
    IdempotencyConflict,
    InvalidAmount,
    InvalidRequest,
    PaymentBusy,
    PluginError,
    StateError,
    UnsupportedOperation,
)
from paycore.gateways.driver import GatewayDriver, RetryPolicy
from paycore.gateways.dummy import DummyGateway
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.hookspecs import hookimpl
from paycore.money import Money
from paycore.plugins import new_hook_manager
from paycore.sandbox.server import SandboxServer
from paycore.testing.loopback import refused_address
from paycore.transactions.model import (
    DeclineReason,
    NextActionKind,
    PaymentMethod,
    PaymentStatus,
    TransactionStatus,
    TransactionType,
)
from paycore.transactions.records import Payment, PaymentTransaction
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.states import problems
from paycore.transactions.store import Store

NewPayment = Callable[..., Payment]

# Small budgets: a test that waits for a timeout must not wait long.
QUICK = {"connect": 0.5, "read": 2.0, "total": 4.0}
NO_RETRY = RetryPolicy(max_attempts=1)


def usd(minor_units: int) -> Money:
    return Money(minor_units, "USD")


def provider_payment(sandbox: DummySandbox, reference: str | None) -> dict[str, Any]:
    (found,) = [p for p in sandbox.snapshot()["payments"] if p["id"] == reference]
    return dict(found)


def posts(sandbox: DummySandbox, suffix: str = "") -> list[str]:
    return [
        path
        for method, path in sandbox.requests_received
        if method == "POST" and path.endswith(suffix)
    ]


class KeylessDummy(DummyGateway):
    """The dummy as a provider that keeps no idempotency keys: none sent, none declared."""

    capabilities = attrs.evolve(
        DummyGateway.capabilities, idempotency_keys=False, idempotency_window=None
    )

    def build_request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        **options: Any,
    ) -> httpx.Request:
        kept = {name: value for name, value in (headers or {}).items() if name != "Idempotency-Key"}
        return super().build_request(method, url, headers=kept, **options)


def gateway_at(sandbox: DummySandbox, url: str) -> DummyGateway:
    gateway = DummyGateway.from_config({**sandbox.gateway_config(url), "timeouts": QUICK})
    assert isinstance(gateway, DummyGateway)
    return gateway


@pytest.fixture
def unretried(
    store: Store, sandbox: DummySandbox, paycore_dummy_server: SandboxServer
) -> Iterator[PaymentTransactionServices]:
    """Services on the same store and sandbox whose driver never retries: a dropped
    connection is an unknown outcome at once."""
    driver = GatewayDriver(
        gateway_at(sandbox, paycore_dummy_server.url), hooks=None, retry=NO_RETRY
    )
    services = PaymentTransactionServices(store, {"dummy": driver}, hooks=None)
    yield services
    driver.close()


@pytest.fixture
def unreachable(store: Store, sandbox: DummySandbox) -> Iterator[PaymentTransactionServices]:
    """Services on the same store whose gateway ``dummy`` is at an address that refuses."""
    driver = GatewayDriver(gateway_at(sandbox, refused_address()), hooks=None, retry=NO_RETRY)
    services = PaymentTransactionServices(store, {"dummy": driver}, hooks=None)
    yield services
    driver.close()


# -- a payment's life --------------------------------------------------------------------


def test_authorize_partial_captures_refund_and_void_match_the_provider(
    services: PaymentTransactionServices, sandbox: DummySandbox, new_payment: NewPayment
):
    payment = new_payment(1000)

    steps = [
        services.authorize(payment.id),
        services.capture(payment.id, usd(300)),
        services.capture(payment.id, usd(200)),
        services.refund(payment.id, usd(100)),
        services.void(payment.id),
    ]

    assert [(t.type, t.status, t.amount) for t in steps] == [
        (TransactionType.AUTHORIZE, TransactionStatus.SUCCEEDED, usd(1000)),
        (TransactionType.CAPTURE, TransactionStatus.SUCCEEDED, usd(300)),
        (TransactionType.CAPTURE, TransactionStatus.SUCCEEDED, usd(200)),
        (TransactionType.REFUND, TransactionStatus.SUCCEEDED, usd(100)),
        (TransactionType.VOID, TransactionStatus.SUCCEEDED, usd(500)),
    ]
    payment = services.get_payment(payment.id)
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
    # Each transaction reached the provider once, under paycore's id as its reference.
    assert [(op["type"], op["reference"]) for op in provider["operations"]] == [
        (t.type.value, t.id) for t in steps
    ]
    assert {t.parent_id for t in steps[1:]} == {steps[0].id}
    recorded = services.list_transactions(payment.id)
    assert [t.id for t in recorded] == [t.id for t in steps]
    assert problems(payment, recorded) == []


def test_a_sale_captures_the_whole_amount_in_one_step(
    services: PaymentTransactionServices, sandbox: DummySandbox, new_payment: NewPayment
):
    payment = new_payment(2599)

    sale = services.sale(payment.id)

    assert (sale.type, sale.status, sale.amount) == (
        TransactionType.SALE,
        TransactionStatus.SUCCEEDED,
        usd(2599),
    )
    payment = services.get_payment(payment.id)
    assert payment.status is PaymentStatus.CAPTURED
    assert payment.totals() == {
        "authorized": 2599,
        "captured": 2599,
        "refunded": 0,
        "capturable": 0,
    }
    assert provider_payment(sandbox, payment.gateway_reference)["amount_captured"] == 2599
    with pytest.raises(StateError, match="nothing to void"):
        services.void(payment.id)


class CaptureOnceGateway(DummyGateway):
    """The dummy provider on an account that captures an authorization once."""

    capabilities = attrs.evolve(DummyGateway.capabilities, multiple_capture=False)


def test_a_partial_capture_on_a_gateway_that_captures_once_releases_the_rest(
    store: Store, sandbox: DummySandbox, paycore_dummy_server: SandboxServer
):
    gateway = CaptureOnceGateway.from_config(sandbox.gateway_config(paycore_dummy_server.url))
    with PaymentTransactionServices(store, {"once": gateway}, hooks=None) as services:
        payment = services.create_payment(
            usd(1000), gateway="once", payment_method=PaymentMethod(type="card", token="tok_visa")
        )
        services.authorize(payment.id)

        capture = services.capture(payment.id, usd(600))

        payment = services.get_payment(payment.id)
        assert capture.final and capture.status is TransactionStatus.SUCCEEDED
        assert payment.totals() == {
            "authorized": 1000,
            "captured": 600,
            "refunded": 0,
            "capturable": 0,
        }
        assert payment.status is PaymentStatus.CAPTURED
        provider = provider_payment(sandbox, payment.gateway_reference)
        assert (provider["amount_captured"], provider["amount_capturable"]) == (600, 0)
        with pytest.raises(StateError, match="nothing to void"):
            services.void(payment.id)


def test_what_the_state_machine_refuses_is_neither_sent_nor_written(
    services: PaymentTransactionServices, sandbox: DummySandbox, new_payment: NewPayment
):
    payment = new_payment(1000)
    services.authorize(payment.id)
    sent = len(sandbox.requests_received)

    with pytest.raises(InvalidAmount, match="at most"):
        services.capture(payment.id, usd(1001))
    with pytest.raises(CurrencyMismatch):
        services.capture(payment.id, Money(100, "EUR"))
    with pytest.raises(StateError, match="nothing captured to refund"):
        services.refund(payment.id, usd(100))

    assert len(sandbox.requests_received) == sent
    assert len(services.list_transactions(payment.id)) == 1


# -- declines and customer actions -------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("tok_declined", DeclineReason.CARD_DECLINED),
        ("tok_insufficient_funds", DeclineReason.INSUFFICIENT_FUNDS),
    ],
)
def test_a_decline_is_a_declined_transaction_and_the_payment_fails(
    services: PaymentTransactionServices, new_payment: NewPayment, token: str, reason: DeclineReason
):
    payment = new_payment(token=token)

    declined = services.authorize(payment.id)

    assert declined.status is TransactionStatus.DECLINED
    assert declined.decline_reason is reason
    assert declined.decline_code == reason.value
    payment = services.get_payment(payment.id)
    assert payment.status is PaymentStatus.FAILED
    assert payment.totals() == {"authorized": 0, "captured": 0, "refunded": 0, "capturable": 0}
    assert services.get_transaction(declined.id) == declined
    with pytest.raises(StateError, match="create a new payment"):
        services.authorize(payment.id)


@pytest.mark.parametrize(
    ("choice", "transaction_status", "payment_status"),
    [
        ("approve", TransactionStatus.SUCCEEDED, PaymentStatus.AUTHORIZED),
        ("decline", TransactionStatus.DECLINED, PaymentStatus.FAILED),
    ],
)
def test_3ds_requires_action_and_fetch_status_records_what_the_customer_did(
    services: PaymentTransactionServices,
    sandbox: DummySandbox,
    new_payment: NewPayment,
    http: httpx.Client,
    choice: str,
    transaction_status: TransactionStatus,
    payment_status: PaymentStatus,
):
    payment = new_payment(1500, token="tok_3ds")

    pending = services.authorize(payment.id)

    assert pending.status is TransactionStatus.REQUIRES_ACTION
    assert pending.next_action is not None
    assert pending.next_action.kind is NextActionKind.REDIRECT
    assert "/3ds/" in pending.next_action.url
    assert services.get_payment(payment.id).status is PaymentStatus.REQUIRES_ACTION
    # Until the customer acts, asking changes nothing.
    assert services.fetch_status(pending.id).status is TransactionStatus.REQUIRES_ACTION

    assert http.get(pending.next_action.url).status_code == 200
    assert http.post(pending.next_action.url, data={"result": choice}).status_code < 400
    settled = services.fetch_status(pending.id)

    assert settled.id == pending.id
    assert settled.status is transaction_status
    payment = services.get_payment(payment.id)
    assert payment.status is payment_status
    expected = 1500 if choice == "approve" else 0
    assert payment.authorized == payment.capturable == usd(expected)
    # A settled transaction is answered from the ledger, without a call.
    received = len(sandbox.requests_received)
    assert services.fetch_status(pending.id) == settled
    assert len(sandbox.requests_received) == received


# -- idempotency -------------------------------------------------------------------------


def test_the_same_key_and_request_return_the_recorded_transaction_without_a_second_call(
    services: PaymentTransactionServices, sandbox: DummySandbox, new_payment: NewPayment
):
    payment = new_payment(1000)
    services.authorize(payment.id, idempotency_key="auth-1")
    first = services.capture(payment.id, usd(300), idempotency_key="ship-1")

    again = services.capture(payment.id, usd(300), idempotency_key="ship-1")
    authorized_again = services.authorize(payment.id, idempotency_key="auth-1")

    assert again == first
    assert authorized_again.type is TransactionType.AUTHORIZE
    assert len(posts(sandbox, "/captures")) == 1
    assert len(posts(sandbox, "/v1/payments")) == 1
    assert services.get_payment(payment.id).captured == usd(300)
    assert len(services.list_transactions(payment.id)) == 2


def test_the_same_key_for_another_request_is_a_conflict_and_writes_nothing(
    services: PaymentTransactionServices, sandbox: DummySandbox, new_payment: NewPayment
):
    payment = new_payment(1000)
    services.authorize(payment.id)
    services.capture(payment.id, usd(300), idempotency_key="ship-1")
    before = (services.get_payment(payment.id), services.list_transactions(payment.id))
    sent = len(sandbox.requests_received)

    with pytest.raises(IdempotencyConflict, match="ship-1"):
        services.capture(payment.id, usd(400), idempotency_key="ship-1")
    with pytest.raises(IdempotencyConflict):
        services.capture(payment.id, usd(300), final=True, idempotency_key="ship-1")
    with pytest.raises(IdempotencyConflict):
        services.refund(payment.id, usd(300), idempotency_key="ship-1")

    assert (services.get_payment(payment.id), services.list_transactions(payment.id)) == before
    assert len(sandbox.requests_received) == sent


def test_a_mutation_in_flight_makes_the_payment_busy(
    services: PaymentTransactionServices, sandbox: DummySandbox, new_payment: NewPayment
):
    payment = new_payment(1000)
    services.authorize(payment.id)
    services.capture(payment.id, usd(200))
    begun = services.ledger.begin(
        payment.id, TransactionType.CAPTURE, usd(100), idempotency_key="in-flight"
    )
    assert begun.action == "send"
    assert begun.transaction.status is TransactionStatus.PENDING
    sent = len(sandbox.requests_received)

    for attempt in (
        lambda: services.capture(payment.id, usd(100)),
        lambda: services.void(payment.id),
        lambda: services.refund(payment.id, usd(100)),
    ):
        with pytest.raises(PaymentBusy, match=begun.transaction.id):
            attempt()

    assert len(sandbox.requests_received) == sent
    assert len(services.list_transactions(payment.id)) == 3


# -- what the gateway could not say ------------------------------------------------------


def test_an_unknown_outcome_is_resolved_by_asking_the_gateway_never_by_sending_again(
    services: PaymentTransactionServices,
    unretried: PaymentTransactionServices,
    sandbox: DummySandbox,
    new_payment: NewPayment,
):
    payment = new_payment(1000)
    services.authorize(payment.id)
    sandbox.queue_faults("drop")  # the provider captures, then the connection breaks

    lost = unretried.capture(payment.id, usd(400), idempotency_key="ship-1")

    assert lost.status is TransactionStatus.UNKNOWN
    assert lost.failure == "OutcomeUnknown"
    unsure = services.get_payment(payment.id)
    assert unsure.captured == usd(0)  # nothing is counted before it is known
    assert provider_payment(sandbox, unsure.gateway_reference)["amount_captured"] == 400
    with pytest.raises(PaymentBusy):
        services.capture(payment.id, usd(100), idempotency_key="ship-2")
    received = len(sandbox.requests_received)

    settled = services.capture(payment.id, usd(400), idempotency_key="ship-1")

    assert settled.id == lost.id
    assert settled.status is TransactionStatus.SUCCEEDED
    assert sandbox.requests_received[received:] == (
        ("GET", f"/v1/payments/{unsure.gateway_reference}"),
    )
    assert len(posts(sandbox, "/captures")) == 1
    payment = services.get_payment(payment.id)
    assert payment.captured == usd(400)
    assert payment.status is PaymentStatus.PARTIALLY_CAPTURED
    assert problems(payment, services.list_transactions(payment.id)) == []
    # No longer busy.
    assert services.capture(payment.id, usd(100)).status is TransactionStatus.SUCCEEDED


def captured_but_answered_500(
    services: PaymentTransactionServices, sandbox: DummySandbox, payment: Payment
) -> PaymentTransaction:
    """``payment`` authorized, then a capture of 4.00 under key ``ship-1`` that the
    provider answers 500 (before doing it), with no retry: unknown."""
    services.authorize(payment.id)
    sandbox.queue_faults("error")
    lost = services.capture(payment.id, usd(400), idempotency_key="ship-1")
    assert lost.status is TransactionStatus.UNKNOWN
    assert len(posts(sandbox, "/captures")) == 1
    return lost


def captured_once(
    services: PaymentTransactionServices, sandbox: DummySandbox, payment_id: str
) -> None:
    """The 500, then one capture that counted; the ledger agrees with the provider."""
    assert len(posts(sandbox, "/captures")) == 2
    after = services.get_payment(payment_id)
    assert provider_payment(sandbox, after.gateway_reference)["amount_captured"] == 400
    assert after.captured == usd(400)
    assert problems(after, services.list_transactions(payment_id)) == []


def test_a_capture_answered_500_is_sent_again_under_its_key_once_the_provider_has_no_record(
    services: PaymentTransactionServices,
    unretried: PaymentTransactionServices,
    sandbox: DummySandbox,
    new_payment: NewPayment,
):
    # The dummy provider deduplicates by key, so the caller retrying under the same key
    # need not wait for "no record" to be believed.
    payment = new_payment(1000)
    lost = captured_but_answered_500(unretried, sandbox, payment)

    again = services.capture(payment.id, usd(400), idempotency_key="ship-1")

    assert (again.id, again.status) == (lost.id, TransactionStatus.SUCCEEDED)
    captured_once(services, sandbox, payment.id)
    assert services.void(payment.id).status is TransactionStatus.SUCCEEDED  # not busy


def test_two_callers_retrying_an_unknown_capture_at_once_send_it_again_once(
    services: PaymentTransactionServices,
    unretried: PaymentTransactionServices,
    sandbox: DummySandbox,
    new_payment: NewPayment,
):
    payment = new_payment(1000)
    lost = captured_but_answered_500(unretried, sandbox, payment)
    start = threading.Barrier(2)

    def retry() -> PaymentTransaction:
        start.wait(5)
        return services.capture(payment.id, usd(400), idempotency_key="ship-1")

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: retry(), range(2)))

    assert {(t.id, t.status) for t in answers} == {(lost.id, TransactionStatus.SUCCEEDED)}
    # One resend: whichever caller lost the race waited for the other's outcome.
    captured_once(services, sandbox, payment.id)


def test_a_capture_answered_500_stays_unknown_where_the_provider_ignores_keys(
    store: Store,
    sandbox: DummySandbox,
    paycore_dummy_server: SandboxServer,
    new_payment: NewPayment,
):
    keyless = KeylessDummy.from_config(sandbox.gateway_config(paycore_dummy_server.url))
    driver = GatewayDriver(keyless, hooks=None, retry=NO_RETRY)
    with PaymentTransactionServices(store, {"dummy": driver}, hooks=None) as services:
        payment = new_payment(1000)
        lost = captured_but_answered_500(services, sandbox, payment)
        sent = len(sandbox.requests_received)

        again = services.capture(payment.id, usd(400), idempotency_key="ship-1")

        # Asked, not resent: a provider that cannot deduplicate might capture twice.
        assert (again.id, again.status) == (lost.id, TransactionStatus.UNKNOWN)
        assert [method for method, _ in sandbox.requests_received[sent:]] == ["GET"]
        with pytest.raises(PaymentBusy):
            services.void(payment.id)


def test_fetch_status_settles_an_unknown_outcome(
    services: PaymentTransactionServices,
    unretried: PaymentTransactionServices,
    sandbox: DummySandbox,
    new_payment: NewPayment,
):
    payment = new_payment(1000)
    sandbox.queue_faults("drop")

    lost = unretried.authorize(payment.id)
    assert lost.status is TransactionStatus.UNKNOWN
    assert services.get_payment(payment.id).gateway_reference is None

    settled = services.fetch_status(lost.id)

    assert settled.status is TransactionStatus.SUCCEEDED
    payment = services.get_payment(payment.id)
    assert payment.status is PaymentStatus.AUTHORIZED
    assert payment.gateway_reference is not None
    assert len(posts(sandbox, "/v1/payments")) == 1


def test_a_gateway_that_cannot_be_reached_fails_the_transaction_and_the_same_key_sends_it_again(
    services: PaymentTransactionServices,
    unreachable: PaymentTransactionServices,
    sandbox: DummySandbox,
    new_payment: NewPayment,
):
    payment = new_payment(1000)

    failed = unreachable.authorize(payment.id, idempotency_key="auth-1")

    assert failed.status is TransactionStatus.FAILED
    assert failed.failure == "GatewayUnavailable"
    assert services.get_payment(payment.id).status is PaymentStatus.NEW
    assert sandbox.requests_received == ()

    # The provider is reachable again.
    sent = services.authorize(payment.id, idempotency_key="auth-1")

    assert sent.id == failed.id
    assert sent.status is TransactionStatus.SUCCEEDED
    assert sent.failure is None
    assert services.list_transactions(payment.id) == (sent,)
    provider = provider_payment(sandbox, services.get_payment(payment.id).gateway_reference)
    assert provider["reference"] == failed.id  # the provider-side key did not change
    assert services.get_payment(payment.id).status is PaymentStatus.AUTHORIZED


def test_a_failed_transaction_never_blocks_the_payment(
    services: PaymentTransactionServices,
    unreachable: PaymentTransactionServices,
    sandbox: DummySandbox,
    new_payment: NewPayment,
):
    payment = new_payment(1000)
    assert unreachable.authorize(payment.id).status is TransactionStatus.FAILED
    authorized = services.authorize(payment.id)
    assert authorized.status is TransactionStatus.SUCCEEDED

    assert unreachable.capture(payment.id, usd(300)).status is TransactionStatus.FAILED
    assert unreachable.void(payment.id).status is TransactionStatus.FAILED
    captured = services.capture(payment.id, usd(1000))

    assert captured.status is TransactionStatus.SUCCEEDED
    payment = services.get_payment(payment.id)
    assert payment.status is PaymentStatus.CAPTURED
    statuses = [t.status for t in services.list_transactions(payment.id)]
    assert statuses.count(TransactionStatus.FAILED) == 3
    assert problems(payment, services.list_transactions(payment.id)) == []


# -- creating payments -------------------------------------------------------------------


def test_create_payment_with_a_key_returns_the_same_payment_and_refuses_other_details(
    services: PaymentTransactionServices, store: Store
):
    def create(**changes: Any) -> Payment:
        details: dict[str, Any] = {
            "amount": usd(1000),
            "gateway": "dummy",
            "payment_method": PaymentMethod(type="card", token="tok_visa"),
            "owner": "order-7",
            "metadata": {"channel": "web"},
        }
        return services.create_payment(**{**details, **changes}, idempotency_key="create-order-7")

    first = create()

    assert create() == first
    with pytest.raises(IdempotencyConflict, match="create-order-7"):
        create(amount=usd(1001))
    with pytest.raises(IdempotencyConflict):
        create(amount=Money(1000, "EUR"))
    with pytest.raises(IdempotencyConflict):
        create(metadata={"channel": "phone"})
    with pytest.raises(IdempotencyConflict):
        create(owner="order-8")
    with pytest.raises(IdempotencyConflict):
        create(payment_method=PaymentMethod(type="bank_transfer"))
    with pytest.raises(IdempotencyConflict):
        create(payment_method=PaymentMethod(type="card", token="tok_visa", fields={"a": "1"}))
    with store.reading() as session:
        assert session.count_payments() == 1


def test_card_numbers_in_a_methods_fields_are_masked_before_they_are_stored(
    services: PaymentTransactionServices, store: Store
):
    method = PaymentMethod(
        type="wallet", fields={"note": "card 4111 1111 1111 1111", "phone": "+380501234567"}
    )

    payment = services.create_payment(usd(1000), gateway="dummy", payment_method=method)

    stored = services.get_payment(payment.id).payment_method
    assert stored is not None
    assert stored.fields["phone"] == "+380501234567"
    assert "4111 1111 1111 1111" not in stored.fields["note"]
    assert stored.fields["note"] == "card [PAN …1111]"


def test_create_payment_refuses_bad_input_and_writes_nothing(
    services: PaymentTransactionServices, store: Store
):
    with pytest.raises(InvalidRequest, match="no gateway 'elsewhere'"):
        services.create_payment(usd(100), gateway="elsewhere")
    with pytest.raises(InvalidAmount):
        services.create_payment(usd(0), gateway="dummy")
    with pytest.raises(InvalidAmount):
        services.create_payment(1000, gateway="dummy")  # type: ignore[arg-type]
    with store.reading() as session:
        assert session.count_payments() == 0


class Chooser:
    """Chooses the gateway named ``answer``; remembers what it was asked."""

    def __init__(self, answer: str | None) -> None:
        self.answer = answer
        self.asked: list[tuple[Any, tuple[str, ...]]] = []

    @hookimpl
    def paycore_select_gateway(self, request: Any, candidates: tuple[str, ...]) -> str | None:
        self.asked.append((request, candidates))
        return self.answer


def test_the_select_gateway_hook_chooses_among_the_gateways_that_take_the_currency(
    store: Store, paycore_dummy_gateway: DummyGateway
):
    manager = new_hook_manager(load_entry_points=False)
    chooser = Chooser("backup")
    manager.register(chooser)
    gateways = {"main": paycore_dummy_gateway, "backup": paycore_dummy_gateway}
    with PaymentTransactionServices(store, gateways, hooks=manager.hook) as services:
        payment = services.create_payment(
            usd(1000), payment_method=PaymentMethod(type="card", token="tok_visa"), owner="o-1"
        )
        chosen = services.create_payment(usd(1000), gateway="main")

        assert payment.gateway == "backup"
        assert services.authorize(payment.id).status is TransactionStatus.SUCCEEDED
        assert chosen.gateway == "main"  # a gateway named by the caller is not second-guessed
        ((request, candidates),) = chooser.asked
        assert candidates == ("main", "backup")
        assert (request.amount, request.order_reference) == (usd(1000), "o-1")


def test_a_hook_choosing_a_gateway_outside_the_candidates_is_a_plugin_error(
    store: Store, paycore_dummy_gateway: DummyGateway
):
    manager = new_hook_manager(load_entry_points=False)
    manager.register(Chooser("elsewhere"))
    with PaymentTransactionServices(
        store, {"dummy": paycore_dummy_gateway}, hooks=manager.hook
    ) as services:
        with pytest.raises(PluginError, match="elsewhere"):
            services.create_payment(usd(1000))
        with store.reading() as session:
            assert session.count_payments() == 0


def test_no_hook_answer_picks_the_first_configured_gateway(
    store: Store, paycore_dummy_gateway: DummyGateway
):
    manager = new_hook_manager(load_entry_points=False)
    manager.register(Chooser(None))
    gateways = {"main": paycore_dummy_gateway, "backup": paycore_dummy_gateway}
    with PaymentTransactionServices(store, gateways, hooks=manager.hook) as services:
        assert services.create_payment(usd(1000)).gateway == "main"


# -- secrets -----------------------------------------------------------------------------


def test_the_exchange_kept_on_a_transaction_is_scrubbed(
    services: PaymentTransactionServices,
    sandbox: DummySandbox,
    paycore_dummy_server: SandboxServer,
    new_payment: NewPayment,
    store: Store,
):
    config = sandbox.gateway_config(paycore_dummy_server.url)
    payment = new_payment()
    authorized = services.authorize(payment.id)

    assert authorized.exchange is not None
    assert "POST " in authorized.exchange and "/v1/payments -> 201" in authorized.exchange
    assert config["api_key"] not in authorized.exchange

    # A provider that puts its key in the URL: the URL is kept, the key is not.
    keyed = DummyGateway.from_config(
        {**config, "base_url": f"{paycore_dummy_server.url}/{config['api_key']}"}
    )
    driver = GatewayDriver(keyed, hooks=None, retry=NO_RETRY)
    other = PaymentTransactionServices(store, {"dummy": driver}, hooks=None)
    try:
        lost = other.authorize(new_payment().id)
    finally:
        driver.close()

    assert lost.status is TransactionStatus.UNKNOWN  # an unreadable answer to a POST
    assert lost.exchange is not None and "[REDACTED]/v1/payments" in lost.exchange
    assert config["api_key"] not in lost.exchange
    assert config["api_key"] not in (lost.message or "")


def test_no_key_or_secret_reaches_the_database(
    services: PaymentTransactionServices,
    unretried: PaymentTransactionServices,
    unreachable: PaymentTransactionServices,
    sandbox: DummySandbox,
    paycore_dummy_server: SandboxServer,
    new_payment: NewPayment,
    http: httpx.Client,
    store: Store,
):
    config = sandbox.gateway_config(paycore_dummy_server.url)
    secrets = [config["api_key"], config["webhook_secret"], "Bearer"]
    # Every path that writes: success, partial operations, decline, customer action,
    # unknown and failed outcomes, idempotent payment creation.
    paid = services.create_payment(
        usd(1000),
        gateway="dummy",
        payment_method=PaymentMethod(type="card", token="tok_visa"),
        idempotency_key="create-1",
    )
    services.authorize(paid.id)
    services.capture(paid.id, usd(600))
    services.refund(paid.id, usd(100))
    sandbox.queue_faults("drop")
    unretried.void(paid.id)
    services.authorize(new_payment(token="tok_declined").id)
    action = services.authorize(new_payment(token="tok_3ds").id)
    assert action.next_action is not None
    http.post(action.next_action.url, data={"result": "approve"})
    services.fetch_status(action.id)
    unreachable.authorize(new_payment().id)

    texts = []
    metadata = sa.MetaData()
    metadata.reflect(store.engine)
    with store.engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(sa.select(table)):
                texts.extend(str(value) for value in row if value is not None)

    assert len(texts) > 100
    leaked = [(secret, text) for text in texts for secret in secrets if secret in text]
    assert leaked == []


def test_a_checkout_page_the_gateway_lacks_is_refused_before_anything_is_written(
    services: PaymentTransactionServices, sandbox: DummySandbox, new_payment: NewPayment
):
    payment = new_payment()

    with pytest.raises(UnsupportedOperation, match=r"create_checkout \(hosted_page\)"):
        services.authorize(payment.id, checkout="hosted_page")
    with pytest.raises(InvalidRequest, match="checkout must be one of hosted_page"):
        services.sale(payment.id, checkout="kiosk")

    assert services.list_transactions(payment.id) == ()
    assert posts(sandbox) == []
