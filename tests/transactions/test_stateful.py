"""Random operations on payments at every gateway at once, with faults, on one ledger.

`paycore.testing.ledger_machine.LedgerMachine` creates payments on the dummy provider,
MilkyPay, XPAY and WooshPay, interleaved, and authorizes, sells, captures, voids and
refunds them through `PaymentTransactionServices`, repeats calls with their keys, pays
on XPAY's page as the customer, asks and reconciles; the sandboxes answer 500, stall
or cut the connection, a second process finds them unreachable, and their webhooks
reach paycore's web app twice, out of order or late. After every step the ledger is
consistent with itself and never ahead of a provider; reconciled, it equals each one.

Each gateway is driven as its contract class says (what its sandbox approves and
declines, its currency, its page, what its sandbox holds): the contract modules are
imported as modules, so pytest does not collect their classes a second time here.

``PAYCORE_STATEFUL_STEPS`` sets how many steps run per database (2,500 by default:
5,000 in all).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from paycore.testing.contract_base import ContractBase
from paycore.testing.ledger_machine import run_ledger_machine
from paycore.testing.ledger_world import LedgerWorld, serve_world
from paycore.transactions.store import Store
from plugins.milkypay.tests import test_contract as milkypay
from plugins.wooshpay.tests import test_contract as wooshpay
from plugins.xpay.tests import test_contract as xpay
from tests.gateways import test_dummy_contract as dummy

STEPS = int(os.environ.get("PAYCORE_STATEFUL_STEPS", "2500"))

CONTRACTS: tuple[type[ContractBase], ...] = (
    dummy.TestDummyContract,
    milkypay.TestMilkyPayContract,
    xpay.TestXpayContract,
    wooshpay.TestWooshPayContract,
)


@pytest.fixture
def world(store: Store, http: httpx.Client) -> Iterator[LedgerWorld]:
    with serve_world([contract() for contract in CONTRACTS], store, http) as served:
        yield served


def test_random_operations_at_every_gateway_keep_the_ledger_in_agreement_with_each_provider(
    world: LedgerWorld,
) -> None:
    run_ledger_machine(world, steps=STEPS)
