"""The gateway contract, part three: webhooks, as the sandbox delivers them.

Deliveries verify on their raw bytes and apply once (the same event again is a
duplicate); an event settles a payment the customer completed, whatever order the
events come in; a tampered body or a
gateway holding the wrong secret is refused. See `paycore.testing.contract`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import attrs
import httpx
import pytest

from paycore.errors import WebhookSignatureError
from paycore.gateways.base import Operation
from paycore.gateways.driver import GatewayDriver
from paycore.testing.contract_base import WEBHOOK_WAIT, ContractBase, describe
from paycore.testing.contract_support import ledger_text, needs
from paycore.transactions.model import (
    GatewayEvent,
    PaymentStatus,
    TransactionStatus,
    WebhookRequest,
)

if TYPE_CHECKING:
    from paycore.sandbox.base import Sandbox
    from paycore.sandbox.server import SandboxServer
    from paycore.sandbox.webhook_receiver import ReceivedWebhook, WebhookReceiver
    from paycore.transactions.records import Payment, PaymentTransaction
    from paycore.transactions.services import PaymentTransactionServices

__all__ = ["Webhooks"]

HANDLE_WEBHOOK = Operation.HANDLE_WEBHOOK
OPENING = (Operation.AUTHORIZE, Operation.SALE)
WRONG_SECRET = "whsec_contract_not_the_providers"  # noqa: S105 - a test value


class Webhooks(ContractBase):
    """What the sandbox delivers to the merchant's endpoint, through the gateway."""

    @needs(HANDLE_WEBHOOK, any_of=OPENING)
    def test_deliveries_verify_and_apply_once_and_then_are_duplicates(
        self,
        services: PaymentTransactionServices,
        sandbox: Sandbox,
        driver: GatewayDriver,
        webhook_receiver: WebhookReceiver,
    ) -> None:
        payment = self._paid(services)
        events = self._events(driver, self._deliveries(sandbox, webhook_receiver))

        results = [services.apply_event(self.gateway_name, event) for event in events]

        assert [r.disposition for r in results if r.disposition not in ("applied", "ignored")] == []
        assert services.apply_event(self.gateway_name, events[0]).disposition == "duplicate"
        after, _ = self.matches_provider(services, sandbox, payment.id)
        assert after.totals() == payment.totals(), "a webhook changed a settled payment"

    @needs(Operation.AUTHORIZE, HANDLE_WEBHOOK, methods=("challenge",))
    def test_a_webhook_settles_a_challenge_the_customer_passed(
        self,
        services: PaymentTransactionServices,
        sandbox: Sandbox,
        driver: GatewayDriver,
        webhook_receiver: WebhookReceiver,
        http: httpx.Client,
    ) -> None:
        payment, started = self._challenge_passed(services, http)

        events = self._events(driver, self._deliveries(sandbox, webhook_receiver))
        dispositions = [services.apply_event(self.gateway_name, e).disposition for e in events]

        assert "applied" in dispositions, f"no event settled the payment: {dispositions}"
        settled = services.get_transaction(started.id)
        assert settled.status is TransactionStatus.SUCCEEDED, describe(settled)
        after, _ = self.matches_provider(services, sandbox, payment.id)
        assert (after.status, after.authorized) == (PaymentStatus.AUTHORIZED, self.money())

    @needs(Operation.AUTHORIZE, HANDLE_WEBHOOK, methods=("challenge",))
    def test_webhooks_delivered_in_reverse_order_settle_the_payment_all_the_same(
        self,
        services: PaymentTransactionServices,
        sandbox: Sandbox,
        driver: GatewayDriver,
        webhook_receiver: WebhookReceiver,
        http: httpx.Client,
    ) -> None:
        payment, started = self._challenge_passed(services, http)
        events = self._events(driver, self._deliveries(sandbox, webhook_receiver))

        # The latest news first: an older event that arrives late must not undo it.
        late = [services.apply_event(self.gateway_name, e) for e in reversed(events)]
        again = [services.apply_event(self.gateway_name, e).disposition for e in events]

        assert "applied" in [result.disposition for result in late]
        settled = services.get_transaction(started.id)
        assert settled.status is TransactionStatus.SUCCEEDED, describe(settled)
        assert set(again) == {"duplicate"}, again
        after, _ = self.matches_provider(services, sandbox, payment.id)
        assert (after.status, after.authorized) == (PaymentStatus.AUTHORIZED, self.money())

    @needs(HANDLE_WEBHOOK, any_of=OPENING)
    def test_a_tampered_delivery_is_refused_and_changes_nothing(
        self,
        services: PaymentTransactionServices,
        sandbox: Sandbox,
        driver: GatewayDriver,
        webhook_receiver: WebhookReceiver,
    ) -> None:
        self._paid(services)
        delivery = self._deliveries(sandbox, webhook_receiver)[0]
        before = ledger_text(services.store)

        for forged in tampered(delivery.as_request()):
            with pytest.raises(WebhookSignatureError):
                driver.run(driver.gateway.handle_webhook(forged), operation=HANDLE_WEBHOOK)

        assert ledger_text(services.store) == before

    @needs(HANDLE_WEBHOOK, any_of=OPENING, webhook_signing=True)
    def test_a_gateway_with_another_secret_refuses_the_deliveries(
        self,
        services: PaymentTransactionServices,
        sandbox: Sandbox,
        server: SandboxServer,
        webhook_receiver: WebhookReceiver,
        http: httpx.Client,
    ) -> None:
        config = self.gateway_config(sandbox, server.url)
        other = self.gateway_config(self.make_sandbox(webhook_secret=WRONG_SECRET), server.url)
        assert other != config, (
            "a sandbox built with another webhook_secret gives the same gateway config; "
            "its gateway_config must carry the webhook secret"
        )
        wrong = self.gateway_class().from_config(other)
        self._paid(services)
        before = ledger_text(services.store)

        for delivery in self._deliveries(sandbox, webhook_receiver):
            with pytest.raises(WebhookSignatureError):
                self.driver_for(wrong, http).run(
                    wrong.handle_webhook(delivery.as_request()), operation=HANDLE_WEBHOOK
                )

        assert ledger_text(services.store) == before

    # -- steps -----------------------------------------------------------------------------

    def _paid(self, services: PaymentTransactionServices) -> Payment:
        """A payment taken as far as the gateway goes: captured, or else authorized."""
        capabilities = self.capabilities()
        if capabilities.supports(Operation.SALE) or capabilities.supports(Operation.CAPTURE):
            return self.captured(services)
        return self.authorized(services)

    def _challenge_passed(
        self, services: PaymentTransactionServices, http: httpx.Client
    ) -> tuple[Payment, PaymentTransaction]:
        """An authorization that asked for a challenge, which the customer passed."""
        payment = self.new_payment(services, self.challenge)
        started = services.authorize(payment.id)
        assert started.status is TransactionStatus.REQUIRES_ACTION, describe(started)
        assert started.next_action is not None
        self.complete_action(http, started.next_action, approve=True)
        return payment, started

    def _deliveries(
        self, sandbox: Sandbox, receiver: WebhookReceiver
    ) -> tuple[ReceivedWebhook, ...]:
        assert sandbox.wait_for_webhooks(WEBHOOK_WAIT), "the sandbox kept delivering webhooks"
        received = receiver.received
        assert received, "the sandbox delivered no webhook for what happened"
        return received

    def _events(
        self, driver: GatewayDriver, deliveries: tuple[ReceivedWebhook, ...]
    ) -> list[GatewayEvent]:
        events: list[GatewayEvent] = []
        for delivery in deliveries:
            handling = driver.run(
                driver.gateway.handle_webhook(delivery.as_request()), operation=HANDLE_WEBHOOK
            )
            assert 200 <= handling.reply.status_code < 300, handling.reply
            events.extend(handling.events)
        assert events, "the gateway found no event in the sandbox's deliveries"
        assert {event.gateway for event in events} == {self.gateway_name}
        return events


def tampered(delivery: WebhookRequest) -> list[WebhookRequest]:
    """Deliveries that differ from ``delivery`` as an attacker's would.

    A body: a changed digit, and trailing whitespace (which parsing and re-serialising
    before verifying misses). A query string (a provider calling back with GET): each
    parameter holding a digit, with that digit changed.
    """
    if delivery.body:
        body = delivery.body
        variants = [body + b" "]
        digit = re.search(rb"[0-9]", body)
        if digit is not None:
            at = digit.start()
            changed = b"1" if body[at : at + 1] != b"1" else b"2"
            variants.append(body[:at] + changed + body[at + 1 :])
        return [attrs.evolve(delivery, body=variant) for variant in variants]
    forged = []
    for name, value in delivery.query.items():
        found = re.search(r"[0-9]", value)
        if found is not None:
            where = found.start()
            other = "1" if value[where] != "1" else "2"
            query = {**delivery.query, name: value[:where] + other + value[where + 1 :]}
            forged.append(attrs.evolve(delivery, query=query))
    return forged
