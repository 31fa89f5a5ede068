"""Bad input gets a typed error and changes nothing: no row written, no request sent.

Each case brings a payment to a state through the services and the dummy sandbox,
then makes one bad call. The error must be exactly the one named, every table of the
ledger must read as before (every row, not only their counts) and the sandbox must
have received no request. Runs on both databases. The hostile input corpus
(``tests/corpus``) holds the cases that need no set-up beyond a payment's state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import attrs
import pytest

from paycore.errors import (
    CurrencyMismatch,
    IdempotencyConflict,
    InvalidAmount,
    InvalidRequest,
    NotFound,
    PaycoreError,
    StateError,
)
from paycore.gateways.dummy import DummyGateway
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.money import Money
from paycore.sandbox.server import SandboxServer
from paycore.transactions.model import PaymentMethod
from paycore.transactions.records import Payment
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store
from tests.ledger_snapshot import ledger_rows

CARD = PaymentMethod(type="card", token="tok_visa")
TEN_DOLLARS = Money(1000, "USD")


def usd(minor_units: int) -> Money:
    return Money(minor_units, "USD")


class EuroOnlyGateway(DummyGateway):
    """The dummy provider on an account that settles euros only."""

    capabilities = attrs.evolve(DummyGateway.capabilities, currencies={"EUR"})


@pytest.fixture
def services(
    store: Store,
    paycore_dummy_sandbox: DummySandbox,
    paycore_dummy_server: SandboxServer,
    paycore_dummy_gateway: DummyGateway,
) -> Iterator[PaymentTransactionServices]:
    """The dummy gateway, and ``euro_only`` (the same provider, euros only)."""
    euro_only = EuroOnlyGateway.from_config(
        paycore_dummy_sandbox.gateway_config(paycore_dummy_server.url)
    )
    services = PaymentTransactionServices(
        store, {"dummy": paycore_dummy_gateway, "euro_only": euro_only}, hooks=None
    )
    yield services
    services.close()


# -- the states a payment is brought to before the bad call -------------------------------

Setup = Callable[[PaymentTransactionServices], Payment]


def _created(services: PaymentTransactionServices, **options: Any) -> Payment:
    return services.create_payment(TEN_DOLLARS, gateway="dummy", payment_method=CARD, **options)


def new(services: PaymentTransactionServices) -> Payment:
    return _created(services)


def created_with_a_key(services: PaymentTransactionServices) -> Payment:
    return _created(services, idempotency_key="checkout-42")


def authorized(services: PaymentTransactionServices) -> Payment:
    payment = _created(services)
    assert services.authorize(payment.id).succeeded
    return payment


def partly_captured(services: PaymentTransactionServices) -> Payment:
    """1000 authorized, 400 captured with the key ``capture-1``."""
    payment = authorized(services)
    assert services.capture(payment.id, usd(400), idempotency_key="capture-1").succeeded
    return payment


def captured(services: PaymentTransactionServices) -> Payment:
    payment = authorized(services)
    assert services.capture(payment.id).succeeded
    return payment


def partly_refunded(services: PaymentTransactionServices) -> Payment:
    """1000 captured, 300 refunded."""
    payment = captured(services)
    assert services.refund(payment.id, usd(300)).succeeded
    return payment


def voided(services: PaymentTransactionServices) -> Payment:
    payment = authorized(services)
    assert services.void(payment.id).succeeded
    return payment


def sold(services: PaymentTransactionServices) -> Payment:
    payment = _created(services)
    assert services.sale(payment.id).succeeded
    return payment


# -- the bad calls ---------------------------------------------------------------------------

Call = Callable[[PaymentTransactionServices, Payment], object]

# Amounts that are not Money; None is one too for a payment (for a capture or refund
# it means "all there is").
NOT_MONEY = [
    pytest.param(1000, id="an-int"),
    pytest.param(10.5, id="a-float"),
    pytest.param(Decimal("10.50"), id="a-Decimal"),
    pytest.param("10.50", id="a-str"),
    pytest.param(True, id="a-bool"),
]


def create(amount: Any = TEN_DOLLARS, **options: Any) -> Call:
    def call(services: PaymentTransactionServices, _: Payment) -> object:
        fields: dict[str, Any] = {"gateway": "dummy", "payment_method": CARD, **options}
        return services.create_payment(amount, **fields)

    return call


def operation(name: str, *args: object, payment_id: object = None, **options: Any) -> Call:
    """``services.<name>(payment_id, *args, **options)``, on the set-up payment by default."""

    def call(services: PaymentTransactionServices, payment: Payment) -> object:
        target = payment.id if payment_id is None else payment_id
        return getattr(services, name)(target, *args, **options)

    return call


CASES = [
    # -- amounts -----------------------------------------------------------------------------
    pytest.param(new, create(usd(-100)), InvalidAmount, id="create-with-a-negative-amount"),
    pytest.param(new, create(usd(0)), InvalidAmount, id="create-with-a-zero-amount"),
    *[
        pytest.param(new, create(p.values[0]), InvalidAmount, id=f"create-with-{p.id}")
        for p in NOT_MONEY
    ],
    pytest.param(new, create(None), InvalidAmount, id="create-with-None"),
    pytest.param(authorized, operation("capture", usd(-1)), InvalidAmount, id="capture-negative"),
    pytest.param(authorized, operation("capture", usd(0)), InvalidAmount, id="capture-zero"),
    *[
        pytest.param(
            authorized, operation("capture", p.values[0]), InvalidAmount, id=f"capture-{p.id}"
        )
        for p in NOT_MONEY
    ],
    pytest.param(captured, operation("refund", usd(-1)), InvalidAmount, id="refund-negative"),
    pytest.param(captured, operation("refund", usd(0)), InvalidAmount, id="refund-zero"),
    *[
        pytest.param(captured, operation("refund", p.values[0]), InvalidAmount, id=f"refund-{p.id}")
        for p in NOT_MONEY
    ],
    pytest.param(
        authorized,
        operation("capture", Money(1000, "EUR")),
        CurrencyMismatch,
        id="capture-in-another-currency",
    ),
    pytest.param(
        captured,
        operation("refund", Money(100, "EUR")),
        CurrencyMismatch,
        id="refund-in-another-currency",
    ),
    pytest.param(authorized, operation("capture", usd(1001)), InvalidAmount, id="over-capture"),
    pytest.param(
        partly_captured,
        operation("capture", usd(601)),
        InvalidAmount,
        id="over-capture-after-a-partial-capture",
    ),
    pytest.param(captured, operation("refund", usd(1001)), InvalidAmount, id="over-refund"),
    pytest.param(
        partly_refunded,
        operation("refund", usd(701)),
        InvalidAmount,
        id="over-refund-after-a-partial-refund",
    ),
    # -- states ------------------------------------------------------------------------------
    pytest.param(voided, operation("capture"), StateError, id="capture-after-void"),
    pytest.param(new, operation("capture"), StateError, id="capture-before-authorize"),
    pytest.param(authorized, operation("refund"), StateError, id="refund-before-capture"),
    pytest.param(captured, operation("void"), StateError, id="void-after-full-capture"),
    pytest.param(sold, operation("void"), StateError, id="void-after-sale"),
    pytest.param(new, operation("void"), StateError, id="void-before-authorize"),
    pytest.param(voided, operation("void"), StateError, id="void-twice"),
    pytest.param(authorized, operation("authorize"), StateError, id="authorize-twice"),
    pytest.param(authorized, operation("sale"), StateError, id="sale-after-authorize"),
    pytest.param(sold, operation("authorize"), StateError, id="authorize-after-sale"),
    pytest.param(
        captured, operation("capture", usd(1)), StateError, id="capture-when-all-captured"
    ),
    # -- ids ---------------------------------------------------------------------------------
    pytest.param(
        new, operation("authorize", payment_id="pay_nope"), NotFound, id="unknown-payment"
    ),
    pytest.param(
        new,
        operation("capture", usd(100), payment_id="pay_nope"),
        NotFound,
        id="capture-unknown-payment",
    ),
    pytest.param(
        new, operation("get_payment", payment_id="pay_nope"), NotFound, id="get-unknown-payment"
    ),
    pytest.param(
        new,
        operation("list_transactions", payment_id="pay_nope"),
        NotFound,
        id="list-unknown-payment",
    ),
    pytest.param(
        authorized,
        operation("fetch_status", payment_id="txn_nope"),
        NotFound,
        id="fetch-status-of-an-unknown-transaction",
    ),
    pytest.param(
        authorized,
        operation("fetch_status", payment_id="t" * 65),
        InvalidRequest,
        id="fetch-status-of-a-too-long-transaction-id",
    ),
    pytest.param(
        new, operation("authorize", payment_id=42), InvalidRequest, id="payment-id-an-int"
    ),
    pytest.param(
        new, operation("authorize", payment_id=b"pay_1"), InvalidRequest, id="payment-id-bytes"
    ),
    pytest.param(new, operation("authorize", payment_id=""), InvalidRequest, id="payment-id-empty"),
    pytest.param(
        new, operation("authorize", payment_id="p" * 65), InvalidRequest, id="payment-id-too-long"
    ),
    pytest.param(
        new, operation("get_payment", payment_id=["pay_1"]), InvalidRequest, id="payment-id-a-list"
    ),
    # -- idempotency keys --------------------------------------------------------------------
    pytest.param(
        partly_captured,
        operation("capture", usd(500), idempotency_key="capture-1"),
        IdempotencyConflict,
        id="key-reused-for-another-amount",
    ),
    pytest.param(
        partly_captured,
        operation("refund", usd(100), idempotency_key="capture-1"),
        IdempotencyConflict,
        id="key-reused-for-another-operation",
    ),
    pytest.param(
        partly_captured,
        operation("capture", usd(400), final=True, idempotency_key="capture-1"),
        IdempotencyConflict,
        id="key-reused-with-final",
    ),
    pytest.param(
        created_with_a_key,
        create(usd(2000), idempotency_key="checkout-42"),
        IdempotencyConflict,
        id="payment-key-reused-for-another-amount",
    ),
    pytest.param(
        authorized, operation("capture", idempotency_key=""), InvalidRequest, id="key-empty"
    ),
    pytest.param(
        authorized,
        operation("capture", idempotency_key="k" * 256),
        InvalidRequest,
        id="key-too-long",
    ),
    pytest.param(
        authorized,
        operation("capture", idempotency_key="line\nbreak"),
        InvalidRequest,
        id="key-not-printable",
    ),
    pytest.param(
        authorized, operation("capture", idempotency_key=7), InvalidRequest, id="key-an-int"
    ),
    pytest.param(new, create(idempotency_key=""), InvalidRequest, id="payment-key-empty"),
    # -- other fields ------------------------------------------------------------------------
    pytest.param(
        authorized, operation("capture", final="yes"), InvalidRequest, id="final-not-a-bool"
    ),
    pytest.param(new, create(metadata={"order": 42}), InvalidRequest, id="metadata-an-int-value"),
    pytest.param(new, create(metadata={"tags": ["a"]}), InvalidRequest, id="metadata-a-list-value"),
    pytest.param(new, create(metadata={"gift": None}), InvalidRequest, id="metadata-a-none-value"),
    pytest.param(new, create(metadata={1: "one"}), InvalidRequest, id="metadata-an-int-key"),
    pytest.param(
        new, create(metadata=[("order", "42")]), InvalidRequest, id="metadata-not-a-mapping"
    ),
    pytest.param(new, create(owner="o" * 256), InvalidRequest, id="owner-too-long"),
    pytest.param(new, create(payment_method="tok_visa"), InvalidRequest, id="payment-method-a-str"),
    pytest.param(new, create(gateway="nope"), InvalidRequest, id="an-unconfigured-gateway"),
    pytest.param(new, create(gateway=7), InvalidRequest, id="a-gateway-name-not-a-str"),
    pytest.param(
        new,
        create(gateway="euro_only"),
        InvalidRequest,
        id="a-gateway-that-does-not-take-the-currency",
    ),
]


@pytest.mark.parametrize(("setup", "call", "error"), CASES)
def test_bad_input_is_refused_with_a_typed_error_and_changes_nothing(
    setup: Setup,
    call: Call,
    error: type[PaycoreError],
    services: PaymentTransactionServices,
    store: Store,
    sandbox: DummySandbox,
) -> None:
    payment = setup(services)
    # Drop the outbox entries the set-up delivered, so the tables hold still.
    services.ledger.outbox.flush()
    before = ledger_rows(store)
    requests = sandbox.requests_received

    with pytest.raises(PaycoreError) as refused:
        call(services, payment)

    assert type(refused.value) is error, repr(refused.value)
    assert str(refused.value)
    assert ledger_rows(store) == before
    assert sandbox.requests_received == requests


def test_a_call_that_goes_through_changes_the_rows_compared(
    services: PaymentTransactionServices, store: Store, sandbox: DummySandbox
) -> None:
    """The comparison above is not vacuous: a good call changes what it reads."""
    payment = new(services)
    services.ledger.outbox.flush()
    before = ledger_rows(store)
    assert {table: len(found) for table, found in before.items() if found} == {"payments": 1}
    requests = sandbox.requests_received

    services.authorize(payment.id)

    after = ledger_rows(store)
    assert len(after["transactions"]) == 1
    assert after["payments"] != before["payments"]
    assert len(sandbox.requests_received) == len(requests) + 1


def test_a_refused_request_leaves_its_idempotency_key_free_for_the_corrected_one(
    services: PaymentTransactionServices,
) -> None:
    payment = authorized(services)
    with pytest.raises(InvalidAmount):
        services.capture(payment.id, usd(1001), idempotency_key="ship-1")

    corrected = services.capture(payment.id, usd(1000), idempotency_key="ship-1")

    assert corrected.succeeded
    assert (corrected.amount, corrected.idempotency_key) == (usd(1000), "ship-1")
    assert [t.type.value for t in services.list_transactions(payment.id)] == [
        "authorize",
        "capture",
    ]


def test_the_euro_only_gateway_takes_euros_and_refuses_dollars_for_their_currency_alone(
    services: PaymentTransactionServices,
) -> None:
    payment = services.create_payment(Money(1000, "EUR"), gateway="euro_only", payment_method=CARD)
    assert services.authorize(payment.id).succeeded
    with pytest.raises(InvalidRequest, match="does not take USD"):
        services.create_payment(Money(1000, "USD"), gateway="euro_only", payment_method=CARD)


# -- Money itself ----------------------------------------------------------------------------


def money(minor_units: Any, currency: Any = "USD") -> Money:
    """``Money(...)`` with anything, as a caller without a type checker may write it."""
    return Money(minor_units, currency)


def parse(amount: Any, currency: Any = "USD") -> Money:
    return Money.parse(amount, currency)


@pytest.mark.parametrize(
    ("build", "error"),
    [
        pytest.param(lambda: money(10.5), InvalidAmount, id="a-float"),
        pytest.param(lambda: money(Decimal("10.50")), InvalidAmount, id="a-Decimal"),
        pytest.param(lambda: money("1050"), InvalidAmount, id="a-str"),
        pytest.param(lambda: money(True), InvalidAmount, id="a-bool"),
        pytest.param(lambda: money(None), InvalidAmount, id="None"),
        pytest.param(lambda: money(2**63), InvalidAmount, id="beyond-64-bits"),
        pytest.param(lambda: money(100, "XYZ"), InvalidRequest, id="an-unknown-currency"),
        pytest.param(lambda: money(100, "XXX"), InvalidRequest, id="a-currency-without-minor-unit"),
        pytest.param(lambda: money(100, "US"), InvalidRequest, id="a-two-letter-code"),
        pytest.param(lambda: money(100, 840), InvalidRequest, id="a-numeric-currency-code"),
        pytest.param(lambda: parse("10.005"), InvalidAmount, id="too-many-decimals"),
        pytest.param(lambda: parse(10.5), InvalidAmount, id="parse-a-float"),
        pytest.param(lambda: parse("ten"), InvalidAmount, id="parse-words"),
        pytest.param(lambda: parse("10", "ZZZ"), InvalidRequest, id="parse-unknown-currency"),
    ],
)
def test_money_refuses_what_is_not_an_exact_amount_of_a_known_currency(
    build: Callable[[], Money], error: type[PaycoreError]
) -> None:
    with pytest.raises(PaycoreError) as refused:
        build()
    assert type(refused.value) is error, repr(refused.value)


@pytest.mark.parametrize("minor_units", [-100, 0])
def test_money_may_be_negative_or_zero_but_a_payment_may_not(
    minor_units: int, services: PaymentTransactionServices, store: Store
) -> None:
    amount = Money(minor_units, "USD")  # arithmetic needs these: Money allows them
    with pytest.raises(InvalidAmount, match="positive"):
        services.create_payment(amount, gateway="dummy", payment_method=CARD)
    with store.reading() as session:
        assert session.count_payments() == 0
