"""`GatewayContract`: the behaviour suite every gateway plugin runs against its sandbox.

A plugin proves it honours paycore's contract by subclassing one class in its tests.
Every test drives the real thing: the plugin's sandbox served on loopback, the
gateway built from its config as paycore builds it, the real driver over HTTP, and
`PaymentTransactionServices` on a ledger of the test's own::

    # plugins/shop/tests/test_contract.py
    from paycore.testing import GatewayContract, ProviderTotals
    from paycore.transactions.model import DeclineReason, PaymentMethod

    class TestShopContract(GatewayContract):
        gateway_name = "shop"
        currency = "EUR"
        amount = 2_500
        approved = PaymentMethod(type="card", token="tok_visa")
        declined = PaymentMethod(type="card", token="tok_chargeDeclined")
        declined_reason = DeclineReason.CARD_DECLINED
        insufficient_funds = PaymentMethod(type="card", token="tok_insufficientFunds")
        challenge = PaymentMethod(type="card", token="tok_threeDSecure")

        def provider_totals(self, sandbox, gateway_reference):
            payment = sandbox.snapshot()["payments"][gateway_reference]
            return ProviderTotals(captured=payment["captured"], refunded=payment["refunded"])

The class name must start with ``Test`` for pytest to collect it; ``GatewayContract``
itself is never collected. A test that needs what the gateway's `Capabilities` do not
declare (or a test method the subclass leaves unset) is *skipped, with the reason*,
never passed silently; ``pytest -rs`` lists them.

Settings (class attributes)
===========================

``gateway_name`` (required)
    The plugin's entry-point name; the gateway and sandbox classes are loaded from the
    ``paycore.gateways`` and ``paycore.sandboxes`` entry points under it, and the
    services configure the gateway under it.
``gateway_type``, ``sandbox_type``
    The classes themselves, to test them before they are installed (or a variant);
    by default loaded through `paycore.plugins`.
``currency``, ``amount``
    The currency (ISO 4217 code) and the amount, in minor units, of every payment the
    tests make; partial operations take halves and quarters of it. Default 100.00 USD.
``approved``
    A `PaymentMethod` the sandbox approves without asking the customer anything.
``declined``, ``declined_reason``
    A method the sandbox declines, and the `DeclineReason` the gateway must report.
``insufficient_funds``
    A method declined for insufficient funds (reported as ``INSUFFICIENT_FUNDS``), or
    None when the sandbox has none.
``challenge``
    A method for which the sandbox asks for 3-D Secure (a redirect), or None.
``vault_method``
    A method the sandbox can save for a customer; required when the gateway declares
    ``save_method``.
``sandbox_options``
    Extra keyword arguments for the sandbox's constructor.
``return_url``
    Where hosted pages send the customer back (never followed by the tests).
``sentinel_card_number``
    A card number pushed through the flows (descriptions, metadata) that must never
    come out of them.

Methods to override
===================

``provider_totals(sandbox, gateway_reference) -> ProviderTotals`` (required)
    What the sandbox says the payment captured and refunded, in minor units (and, when
    it can tell, how many captures and refunds succeeded). The tests compare it with
    the ledger.
``make_sandbox(**options) -> Sandbox``
    A new sandbox; by default ``sandbox_class(seed=0, **sandbox_options, **options)``.
    The tests pass ``webhook_url``, ``webhook_time_scale`` and ``webhook_secret``.
``gateway_config(sandbox, url) -> dict``
    The gateway's config for the sandbox served at ``url``; by default
    ``sandbox.gateway_config(url)``.
``complete_action(http, next_action, *, approve)``
    Act as the customer on a 3-D Secure redirect. By default: open the URL like a
    browser, find the page's single form, and click the button whose value is
    ``approve`` or ``decline`` (see `paycore.sandbox.browser.submit_form`).
``pay_checkout(http, session)``
    Pay a `CheckoutSession` on the sandbox's hosted page. Required when the gateway
    declares ``create_checkout``; by default it raises `NotImplementedError` saying so.

Fixtures (usable by the subclass's own tests too)
=================================================

``http`` (per class)
    A loopback `httpx.Client`: no proxy from the environment, no redirect followed
    unless asked. The drivers and the customer's browser share it.
``webhook_receiver``
    A served merchant endpoint recording the sandbox's deliveries.
``sandbox``
    ``make_sandbox(webhook_url=webhook_receiver.url, webhook_time_scale=0.01)``: the
    provider's webhook retries compressed a hundredfold.
``server``
    ``sandbox``, served with ``paycore_sandbox_server``.
``gateway``
    The gateway class's ``from_config(gateway_config(sandbox, server.url))``.
``driver``
    A `GatewayDriver` for ``gateway`` over ``http``, with fast retries and no hooks.
``services``
    `PaymentTransactionServices` on ``paycore_ledger`` (SQLite, or PostgreSQL with
    ``PAYCORE_TEST_DATABASE_URL``), with ``driver`` configured under ``gateway_name``.

Steps for the subclass's own tests
==================================

``money(minor_units=None)`` (`amount` in `currency` by default), ``new_payment(services,
method=None, **options)``, ``open_payment(services, payment)`` (authorize, or sale),
``authorized(services)``, ``captured(services)``, ``matches_provider(services, sandbox,
payment_id)`` (the ledger consistent and equal to `provider_totals`), and
``direct_request(kind, transaction_id, **changes)`` (a `PaymentRequest` for calling the
gateway through ``driver``). `paycore.sandbox.browser.submit_form` clicks
through a sandbox's page, filling in fields (a card number on a hosted payment page)::

    def pay_checkout(self, http, session):
        submit_form(http, session.next_action.url, "pay",
                    fields={"card_number": "4242424242424242"})

What the suite checks
=====================

- payment methods for the currency; authorize, capture and refund in full, with the
  ledger's totals equal to the provider's; sale; declines and insufficient funds;
  partial capture; several captures, or else a second capture refused and nothing
  left to capture; partial and several refunds, or else a second refund refused;
  void; 3-D Secure passed and failed, settled by ``fetch_status``;
- an idempotency key replayed is one transaction sent once; a mutation sent twice
  under one key happens once at the provider; an unreachable provider fails a
  transaction and changes nothing; a capture whose answers are all lost is
  ``unknown`` until reconciliation finds it captured, once;
- crashes: a process capturing (or, without capture, refunding) killed before its
  write-ahead, before sending, before recording the answer or after, then
  reconciled and run again under its key, has done it exactly once, ledger equal to
  provider (each worker a process of its own, ``paycore.testing.crash_worker``);
- the fault matrix: every declared authorize, sale, capture, void and refund under
  every fault (refused, connect timeout, read timeout, reset after send, 500, a body
  not the provider's, an answer later than the timeout) on every attempt ends
  ``failed`` where nothing was sent and ``unknown`` otherwise, and reconciliation
  settles it as the provider did it, once (``paycore.testing.contract_faults``);
- webhooks: every delivery verifies and applies once (again: ``duplicate``), one
  settles a passed challenge, a tampered body or a gateway holding another secret
  raises `WebhookSignatureError` and changes nothing;
- scrubbing: the sentinel card number and the config's secrets never reach a
  transcript, a log line, a row of the ledger or an error message;
- undeclared operations raise `UnsupportedOperation`, and the services refuse them
  (and undeclared partial captures) before sending anything;
- the vault (``save_method``): save, pay off-session, delete, then refused; hosted
  checkout (``create_checkout``): paid through ``pay_checkout``, then approved.
"""

from __future__ import annotations

from paycore.testing.contract_crash import CrashRecovery
from paycore.testing.contract_faults import FaultMatrix
from paycore.testing.contract_operations import DeclaredOperations
from paycore.testing.contract_payments import PaymentFlows
from paycore.testing.contract_resilience import Resilience
from paycore.testing.contract_scrubbing import Scrubbing
from paycore.testing.contract_support import ProviderTotals
from paycore.testing.contract_webhooks import Webhooks

__all__ = ["GatewayContract", "ProviderTotals"]


class GatewayContract(
    PaymentFlows,
    Resilience,
    CrashRecovery,
    FaultMatrix,
    Webhooks,
    Scrubbing,
    DeclaredOperations,
):
    """The gateway contract suite; subclass it as ``Test<Provider>Contract`` (see the module)."""
