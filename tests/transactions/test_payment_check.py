"""A provider asking before it takes a payment (`PaymentCheck`): the ledger's answer,
and the hook that may overrule it; nothing is written either way."""

from __future__ import annotations

from collections.abc import Iterator

import pluggy
import pytest

from paycore.errors import InvalidRequest
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.hookspecs import hookimpl
from paycore.money import Money
from paycore.plugins import new_hook_manager
from paycore.sandbox.server import SandboxServer
from paycore.testing.contract_support import ledger_text
from paycore.transactions.model import PaymentCheck, PaymentMethod, WebhookReply
from paycore.transactions.records import PaymentTransaction
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store
from tests.transactions.test_checkout import PAGE, PagesGateway

ACCEPT = WebhookReply(body=b'{"result":"10"}', media_type="application/json")
REJECT = WebhookReply(body=b'{"result":"21"}', media_type="application/json")


@pytest.fixture
def manager() -> pluggy.PluginManager:
    return new_hook_manager(load_entry_points=False)


@pytest.fixture
def services(
    store: Store,
    paycore_dummy_sandbox: DummySandbox,
    paycore_dummy_server: SandboxServer,
    manager: pluggy.PluginManager,
) -> Iterator[PaymentTransactionServices]:
    config = paycore_dummy_sandbox.gateway_config(paycore_dummy_server.url)
    gateways = {
        "pages": PagesGateway.from_config(config),
        "other": PagesGateway.from_config(config),
    }
    with PaymentTransactionServices(store, gateways, hooks=manager.hook) as services:
        yield services


@pytest.fixture
def waiting(services: PaymentTransactionServices) -> PaymentTransaction:
    """A sale on the provider's page, waiting for the customer."""
    payment = services.create_payment(Money(2500, "UAH"), gateway="pages", return_url=PAGE)
    return services.sale(payment.id, checkout="hosted_page")


def check(transaction: PaymentTransaction, **changes: object) -> PaymentCheck:
    fields: dict[str, object] = {
        "transaction_id": transaction.id,
        "amount": transaction.amount,
        "payment_id": transaction.payment_id,
        "accept": ACCEPT,
        "reject": REJECT,
    }
    return PaymentCheck(**{**fields, **changes})  # type: ignore[arg-type]


def test_a_payment_waiting_for_its_customer_is_accepted_and_nothing_is_written(
    services: PaymentTransactionServices, waiting: PaymentTransaction
) -> None:
    before = ledger_text(services.store)

    assert services.answer_check("pages", check(waiting)) == ACCEPT
    assert services.answer_check("pages", check(waiting, payment_id=None)) == ACCEPT
    assert ledger_text(services.store) == before


@pytest.mark.parametrize(
    "changes",
    [
        {"amount": Money(2499, "UAH")},  # another sum
        {"amount": Money(2500, "EUR")},  # another currency
        {"payment_id": "pay_someone_else"},  # another order
        {"transaction_id": "txn_never_made"},  # no such transaction
        {"transaction_id": "not an id!"},  # not even an id
    ],
)
def test_what_does_not_match_the_ledger_is_rejected(
    services: PaymentTransactionServices, waiting: PaymentTransaction, changes: dict[str, object]
) -> None:
    assert services.answer_check("pages", check(waiting, **changes)) == REJECT


def test_a_transaction_of_another_gateway_or_no_longer_waiting_is_rejected(
    services: PaymentTransactionServices, waiting: PaymentTransaction
) -> None:
    assert services.answer_check("other", check(waiting)) == REJECT

    card = services.create_payment(
        Money(2500, "UAH"),
        gateway="pages",
        payment_method=PaymentMethod(type="card", token="tok_visa"),
    )
    settled = services.sale(card.id)  # the dummy provider pays it at once
    assert settled.succeeded
    assert services.answer_check("pages", check(settled)) == REJECT


def test_the_hook_may_overrule_the_ledger_and_sees_what_it_decided_on(
    services: PaymentTransactionServices,
    waiting: PaymentTransaction,
    manager: pluggy.PluginManager,
) -> None:
    seen: list[tuple[object, ...]] = []

    class OutOfStock:
        @hookimpl
        def paycore_answer_payment_check(self, gateway, check, payment, transaction, expected):
            seen.append((gateway, check.transaction_id, payment.id, transaction.id, expected))
            return False

    manager.register(OutOfStock())

    assert services.answer_check("pages", check(waiting)) == REJECT
    assert seen == [("pages", waiting.id, waiting.payment_id, waiting.id, True)]


def test_a_hook_that_abstains_leaves_the_ledger_s_answer(
    services: PaymentTransactionServices,
    waiting: PaymentTransaction,
    manager: pluggy.PluginManager,
) -> None:
    class Abstains:
        @hookimpl
        def paycore_answer_payment_check(self, expected):
            return None

    manager.register(Abstains())

    assert services.answer_check("pages", check(waiting)) == ACCEPT
    assert services.answer_check("pages", check(waiting, amount=Money(1, "UAH"))) == REJECT


def test_a_check_through_an_unknown_gateway_or_not_a_check_is_bad_input(
    services: PaymentTransactionServices, waiting: PaymentTransaction
) -> None:
    with pytest.raises(InvalidRequest, match="no gateway"):
        services.answer_check("nope", check(waiting))
    with pytest.raises(InvalidRequest, match="PaymentCheck"):
        services.answer_check("pages", {"transaction_id": waiting.id})  # type: ignore[arg-type]
