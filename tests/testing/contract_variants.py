"""Dummy gateways that declare less, offer more, or break the contract on purpose.

Each comes with its contract subclass; `test_gateway_contract` runs those subclasses
in a pytest of their own and checks the contract passes what is right and fails what
is broken, with the failure pointing at the breakage.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
import httpx

from paycore.errors import InvalidRequest
from paycore.gateways.base import VAULT, Capabilities, Exchange, Gateway, Operation
from paycore.gateways.dummy import DummyGateway, _event_from
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.gateways.webhooks import verify_signature
from paycore.testing import GatewayContract, ProviderTotals
from paycore.transactions.model import (
    CheckoutKind,
    CheckoutSession,
    DeclineReason,
    GatewayResult,
    Outcome,
    PaymentMethod,
    PaymentRequest,
    SavedMethod,
    SaveMethodRequest,
    TransactionType,
    WebhookHandling,
    WebhookRequest,
)

CARD = PaymentMethod(type="card", token="tok_visa")
THREE_DS = PaymentMethod(type="card", token="tok_3ds")


class DummyContract(GatewayContract):
    """The dummy's contract settings (not collected: its name does not start with Test)."""

    gateway_name = "dummy"
    insufficient_funds = PaymentMethod(type="card", token="tok_insufficient_funds")
    challenge = THREE_DS

    def provider_totals(self, sandbox: DummySandbox, gateway_reference: str) -> ProviderTotals:
        payment = sandbox.ledger.get(gateway_reference)
        return ProviderTotals(
            captured=payment["amount_captured"], refunded=payment["amount_refunded"]
        )


# -- right: declares less, or more -------------------------------------------------------


class LessDummy(DummyGateway):
    """Captures and refunds once, in full, and cannot void."""

    capabilities: ClassVar[Capabilities] = attrs.evolve(
        DummyGateway.capabilities,
        operations=DummyGateway.capabilities.operations - {Operation.VOID},
        partial_capture=False,
        multiple_capture=False,
        multiple_refund=False,
    )
    void = Gateway.void


class TestLessDummy(DummyContract):
    gateway_type = LessDummy


class VaultDummy(DummyGateway):
    """Keeps test tokens for customers, in memory; refuses a deleted one."""

    capabilities: ClassVar[Capabilities] = attrs.evolve(
        DummyGateway.capabilities, operations=DummyGateway.capabilities.operations | VAULT
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deleted: set[str] = set()

    def authorize(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        method = request.payment_method
        if method is not None and method.token in self.deleted and method.off_session:
            raise InvalidRequest("this saved method was deleted")
        return (yield from super().authorize(request))

    def save_method(self, request: SaveMethodRequest) -> Exchange[SavedMethod]:
        yield from ()
        method = request.payment_method
        assert method.token is not None
        return SavedMethod(
            gateway=self.name,
            token=method.token,
            customer_reference=f"cus_{request.customer.reference}",
            type=method.type,
            brand="visa",
            last4="4242",
        )

    def delete_method(self, method: SavedMethod) -> Exchange[None]:
        yield from ()
        self.deleted.add(method.token)


class TestVaultDummy(DummyContract):
    gateway_type = VaultDummy
    vault_method = CARD


class TestVaultDummyWithoutAMethod(DummyContract):
    gateway_type = VaultDummy


class HostedDummy(DummyGateway):
    """A hosted checkout: the sandbox's 3-D Secure page stands in for the payment page."""

    capabilities: ClassVar[Capabilities] = attrs.evolve(
        DummyGateway.capabilities,
        operations=DummyGateway.capabilities.operations | {Operation.CREATE_CHECKOUT},
    )

    def create_checkout(
        self, request: PaymentRequest, *, kind: CheckoutKind = CheckoutKind.HOSTED_PAGE
    ) -> Exchange[CheckoutSession]:
        if kind not in self.capabilities.checkout_kinds:
            raise self.unsupported_checkout(kind)
        sale = request.transaction_type is TransactionType.SALE
        page_payment = attrs.evolve(request, payment_method=THREE_DS)
        started = yield from self._create_payment(page_payment, capture=sale)
        assert started.next_action is not None and started.gateway_reference is not None
        return CheckoutSession(
            reference=started.gateway_reference,
            next_action=started.next_action,
            gateway_reference=started.gateway_reference,
        )


class TestHostedDummy(DummyContract):
    gateway_type = HostedDummy

    def pay_checkout(self, http: httpx.Client, session: CheckoutSession) -> None:
        self.complete_action(http, session.next_action, approve=True)


class TestHostedDummyNobodyPays(DummyContract):
    gateway_type = HostedDummy


# -- broken ------------------------------------------------------------------------------


class MisreadDeclines(DummyGateway):
    """Reports every decline as OTHER."""

    def authorize(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        result = yield from super().authorize(request)
        if result.outcome is Outcome.DECLINED:
            return attrs.evolve(result, decline_reason=DeclineReason.OTHER)
        return result


class TestMisreadDeclines(DummyContract):
    gateway_type = MisreadDeclines


class TrustingWebhooks(DummyGateway):
    """Believes every delivery without checking its signature."""

    def handle_webhook(self, delivery: WebhookRequest) -> Exchange[WebhookHandling]:
        yield from ()
        event = _event_from(json.loads(delivery.body))
        return WebhookHandling(events=() if event is None else (event,))


class TestTrustingWebhooks(DummyContract):
    gateway_type = TrustingWebhooks


class ReserialisingWebhooks(DummyGateway):
    """Checks the signature of the body parsed and written again, not of the bytes sent."""

    def handle_webhook(self, delivery: WebhookRequest) -> Exchange[WebhookHandling]:
        rewritten = json.dumps(json.loads(delivery.body), separators=(",", ":")).encode()
        verify_signature(
            delivery.header("Dummy-Signature"),
            rewritten,
            self.config.webhook_secret,
            gateway=self.name,
            now=delivery.received_at,
        )
        return (yield from super().handle_webhook(attrs.evolve(delivery, body=rewritten)))


class TestReserialisingWebhooks(DummyContract):
    gateway_type = ReserialisingWebhooks


class ForgetfulVault(VaultDummy):
    """Says it deleted a saved method, and keeps charging it."""

    def delete_method(self, method: SavedMethod) -> Exchange[None]:
        yield from ()


class TestForgetfulVault(DummyContract):
    gateway_type = ForgetfulVault
    vault_method = CARD


class KeyRepeater(DummyGateway):
    """Sends no idempotency key, while declaring that the provider deduplicates."""

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Request:
        return super()._request(method, path, json=json, params=params)


class TestKeyRepeater(DummyContract):
    gateway_type = KeyRepeater


class ChattyStatus(DummyGateway):
    """Keeps the provider's status word, with the API key appended, for diagnostics.

    The ledger scrubs what it stores of a result; the contract still fails the plugin
    for handing the key out at all.
    """

    def authorize(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        result = yield from super().authorize(request)
        return attrs.evolve(
            result, provider_status=f"{result.provider_status} {self.config.api_key}"
        )


class TestChattyStatus(DummyContract):
    gateway_type = ChattyStatus


class OptimisticStatus(DummyGateway):
    """Answers every status question with "approved"."""

    def fetch_status(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        yield from ()
        return GatewayResult(
            outcome=Outcome.APPROVED,
            gateway_reference=request.gateway_reference,
            amount=request.amount,
        )


class TestOptimisticStatus(DummyContract):
    gateway_type = OptimisticStatus
