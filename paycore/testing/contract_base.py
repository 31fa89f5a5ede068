"""The gateway contract's settings, overridable methods, fixtures and shared steps.

`ContractBase` is what every part of `paycore.testing.GatewayContract` builds on; the
contract's module docstring (`paycore.testing.contract`) documents it for plugin
authors.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
import pytest

from paycore.gateways.base import Capabilities, Gateway, Operation
from paycore.gateways.driver import GatewayDriver, RetryPolicy
from paycore.money import Money
from paycore.sandbox.browser import submit_form
from paycore.testing.contract_support import ProviderTotals, requirement_of
from paycore.transactions import states
from paycore.transactions.model import (
    CheckoutSession,
    DeclineReason,
    NextAction,
    PaymentMethod,
    PaymentRequest,
    TransactionStatus,
    TransactionType,
)
from paycore.transactions.records import Payment, PaymentTransaction

if TYPE_CHECKING:
    from paycore.sandbox.base import Sandbox
    from paycore.sandbox.server import SandboxServer
    from paycore.sandbox.webhook_receiver import WebhookReceiver
    from paycore.testing.pytest_plugin import MakeServices, ServeSandbox
    from paycore.transactions.services import PaymentTransactionServices

__all__ = ["FAST_RETRIES", "WEBHOOK_TIME_SCALE", "ContractBase"]

# Retries that wait milliseconds, not seconds: the contract sends faults on purpose.
FAST_RETRIES = RetryPolicy(max_attempts=3, backoff=0.01, factor=2.0, max_backoff=0.05)
# The sandbox's webhook retry schedule, compressed: hours become seconds.
WEBHOOK_TIME_SCALE = 0.01
# How long the contract waits for the sandbox to deliver its webhooks.
WEBHOOK_WAIT = 10.0


class ContractBase:
    """Settings, overridable methods, fixtures and steps of the gateway contract."""

    # -- settings (see the module docstring of paycore.testing.contract) -----------------

    gateway_name: ClassVar[str]
    gateway_type: ClassVar[type[Gateway] | None] = None
    sandbox_type: ClassVar[type[Any] | None] = None
    currency: ClassVar[str] = "USD"
    amount: ClassVar[int] = 10_000
    # Sandbox test tokens, published by every provider: no secret.
    approved: ClassVar[PaymentMethod] = PaymentMethod(type="card", token="tok_visa")  # noqa: S106
    declined: ClassVar[PaymentMethod] = PaymentMethod(type="card", token="tok_declined")  # noqa: S106
    declined_reason: ClassVar[DeclineReason] = DeclineReason.CARD_DECLINED
    insufficient_funds: ClassVar[PaymentMethod | None] = None
    challenge: ClassVar[PaymentMethod | None] = None
    vault_method: ClassVar[PaymentMethod | None] = None
    sandbox_options: ClassVar[Mapping[str, Any]] = {}
    return_url: ClassVar[str] = "https://shop.example/paycore/return"
    sentinel_card_number: ClassVar[str] = "4111111111111111"
    # A provider that takes every payment on its own page (XPAY): an opening waits for
    # the customer, the contract pays as one (`pay_on_page`), then asks the provider.
    pays_on_page: ClassVar[bool] = False

    # -- what a plugin provides ----------------------------------------------------------

    def provider_totals(self, sandbox: Any, gateway_reference: str) -> ProviderTotals:
        """What ``sandbox`` says the payment ``gateway_reference`` captured and refunded.

        ``sandbox`` is the plugin's own sandbox class (typed loosely, so an override
        may name it).
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement provider_totals(sandbox, "
            "gateway_reference): read the payment from the sandbox's state and return "
            "ProviderTotals(captured=…, refunded=…) in minor units"
        )

    def make_sandbox(self, **options: Any) -> Sandbox:
        """A new sandbox: ``seed=0``, then `sandbox_options`, then ``options``."""
        sandbox: Sandbox = self.sandbox_class()(**{"seed": 0, **self.sandbox_options, **options})
        return sandbox

    def gateway_config(self, sandbox: Sandbox, url: str) -> dict[str, Any]:
        """The gateway's config for ``sandbox`` served at ``url``."""
        return dict(sandbox.gateway_config(url))

    def complete_action(
        self, http: httpx.Client, next_action: NextAction, *, approve: bool
    ) -> None:
        """Act as the customer on ``next_action``: approve or decline the challenge.

        By default: open the redirect like a browser, and click the button of the
        page's single form whose value is ``approve`` or ``decline``.
        """
        assert next_action.method == "GET", "override complete_action for a POST redirect"
        submit_form(http, next_action.url, "approve" if approve else "decline")

    def pay_on_page(
        self, http: httpx.Client, next_action: NextAction, method: PaymentMethod
    ) -> None:
        """Act as the customer paying with ``method`` (`approved`, `declined` …) on the
        provider's page, for a gateway whose payments are all made there (`pays_on_page`)."""
        raise NotImplementedError(
            f"{type(self).__name__} sets pays_on_page, so it must implement "
            "pay_on_page(http, next_action, method): pay or fail on the sandbox's page as "
            "the method says"
        )

    def pay_checkout(self, http: httpx.Client, session: CheckoutSession) -> None:
        """Act as the customer on a hosted checkout: pay successfully."""
        raise NotImplementedError(
            f"gateway {self.gateway_name!r} declares create_checkout, so "
            f"{type(self).__name__} must implement pay_checkout(http, session): drive the "
            "sandbox's hosted page at session.next_action.url to a successful payment "
            "(submit_form from paycore.sandbox.browser clicks a form's button)"
        )

    # -- plugin classes ------------------------------------------------------------------

    @classmethod
    def gateway_class(cls) -> type[Gateway]:
        if not isinstance(getattr(cls, "gateway_name", None), str):
            raise TypeError(f"{cls.__name__} must set gateway_name (the entry-point name)")
        if cls.gateway_type is not None:
            return cls.gateway_type
        from paycore.plugins import gateway_class

        return gateway_class(cls.gateway_name)

    @classmethod
    def sandbox_class(cls) -> type[Any]:
        if cls.sandbox_type is not None:
            return cls.sandbox_type
        from paycore.plugins import sandbox_class

        return sandbox_class(cls.gateway_name)

    @classmethod
    def capabilities(cls) -> Capabilities:
        return cls.gateway_class().capabilities

    def build_gateway(self, sandbox: Sandbox, url: str) -> Gateway:
        """The gateway, from `gateway_config`, as ``paycore`` builds it from settings."""
        return self.gateway_class().from_config(self.gateway_config(sandbox, url))

    def driver_for(
        self, gateway: Gateway, http: httpx.Client, *, hooks: Any = None
    ) -> GatewayDriver:
        return GatewayDriver(gateway, client=http, hooks=hooks, retry=FAST_RETRIES)

    # -- fixtures ------------------------------------------------------------------------

    @pytest.fixture(autouse=True)
    def _contract_requirements(self, request: pytest.FixtureRequest) -> None:
        """Skip, before any server starts, a test needing what the gateway lacks."""
        requirement = requirement_of(request.function)
        if requirement is None:
            return
        capabilities = self.capabilities()
        name = self.gateway_name
        for operation in requirement.operations:
            if not capabilities.supports(operation):
                pytest.skip(f"gateway {name!r} does not declare {operation.value}")
        if requirement.any_of and not any(map(capabilities.supports, requirement.any_of)):
            listed = " or ".join(op.value for op in requirement.any_of)
            pytest.skip(f"gateway {name!r} declares neither {listed}")
        for flag, wanted in requirement.flags.items():
            if bool(getattr(capabilities, flag)) is not wanted:
                state = "does not declare" if wanted else "declares"
                pytest.skip(f"gateway {name!r} {state} {flag}")
        for method in requirement.methods:
            if getattr(self, method) is None:
                pytest.skip(f"{type(self).__name__}.{method} is not set")

    @pytest.fixture(scope="class")
    @classmethod
    def http(cls) -> Iterator[httpx.Client]:
        """A loopback client for the drivers and the customer's browser: no proxy, no
        redirects followed unless asked."""
        with httpx.Client(timeout=10, trust_env=False, follow_redirects=False) as client:
            yield client

    @pytest.fixture(autouse=True)
    def _customer_browser(self, http: httpx.Client) -> None:
        """The browser the contract pays on a provider's page with (`pays_on_page`)."""
        self.browser = http

    @pytest.fixture
    def webhook_receiver(self, paycore_webhook_receiver: WebhookReceiver) -> WebhookReceiver:
        """The merchant's webhook endpoint the sandbox delivers to."""
        return paycore_webhook_receiver

    @pytest.fixture
    def sandbox(self, webhook_receiver: WebhookReceiver) -> Sandbox:
        """The provider's sandbox, delivering webhooks to ``webhook_receiver``, fast."""
        return self.make_sandbox(
            webhook_url=webhook_receiver.url, webhook_time_scale=WEBHOOK_TIME_SCALE
        )

    @pytest.fixture
    def server(self, sandbox: Sandbox, paycore_sandbox_server: ServeSandbox) -> SandboxServer:
        """``sandbox``, served on loopback."""
        return paycore_sandbox_server(sandbox)

    @pytest.fixture
    def gateway(self, sandbox: Sandbox, server: SandboxServer) -> Gateway:
        """The gateway, configured for ``server``."""
        return self.build_gateway(sandbox, server.url)

    @pytest.fixture
    def driver(self, gateway: Gateway, http: httpx.Client) -> GatewayDriver:
        """The gateway's driver: loopback client, fast retries, no hooks."""
        return self.driver_for(gateway, http)

    @pytest.fixture
    def services(
        self, driver: GatewayDriver, paycore_services: MakeServices
    ) -> PaymentTransactionServices:
        """Services on a fresh ledger, with the gateway configured under its own name."""
        return paycore_services({self.gateway_name: driver})

    # -- steps the tests share -----------------------------------------------------------

    def money(self, minor_units: int | None = None) -> Money:
        return Money(self.amount if minor_units is None else minor_units, self.currency)

    def new_payment(
        self,
        services: PaymentTransactionServices,
        method: PaymentMethod | None = None,
        **options: Any,
    ) -> Payment:
        """A new payment of `amount` in `currency` by ``method`` (`approved` by default)."""
        return services.create_payment(
            self.money(options.pop("minor_units", None)),
            gateway=self.gateway_name,
            payment_method=method or self.approved,
            return_url=self.return_url,
            **options,
        )

    def opening_type(self) -> TransactionType:
        """How a payment is opened: authorize when declared, else sale."""
        if self.capabilities().supports(Operation.AUTHORIZE):
            return TransactionType.AUTHORIZE
        return TransactionType.SALE

    def open_payment(
        self, services: PaymentTransactionServices, payment: Payment, **options: Any
    ) -> PaymentTransaction:
        """Authorize ``payment`` (or pay it by sale when the gateway cannot authorize);
        on the provider's page, as the customer, when it `pays_on_page`."""
        return self.as_customer(services, payment, self.start_payment(services, payment, **options))

    def start_payment(
        self, services: PaymentTransactionServices, payment: Payment, **options: Any
    ) -> PaymentTransaction:
        """`open_payment` up to the customer: what the authorize or sale call answers."""
        if self.opening_type() is TransactionType.AUTHORIZE:
            return services.authorize(payment.id, **options)
        return services.sale(payment.id, **options)

    def as_customer(
        self, services: PaymentTransactionServices, payment: Payment, opened: PaymentTransaction
    ) -> PaymentTransaction:
        """``opened`` once the customer paid on the provider's page and the provider was
        asked (`pays_on_page`); as it is otherwise."""
        if not self.pays_on_page or opened.status is not TransactionStatus.REQUIRES_ACTION:
            return opened
        assert opened.next_action is not None, describe(opened)
        self.pay_on_page(self.browser, opened.next_action, payment.payment_method or self.approved)
        return services.fetch_status(opened.id)

    def authorized(self, services: PaymentTransactionServices) -> Payment:
        """A payment of `amount`, authorized."""
        payment = self.new_payment(services)
        authorization = self.as_customer(services, payment, services.authorize(payment.id))
        assert authorization.status is TransactionStatus.SUCCEEDED, describe(authorization)
        return services.get_payment(payment.id)

    def captured(self, services: PaymentTransactionServices) -> Payment:
        """A payment of `amount`, captured in full (by sale, or authorize and capture)."""
        payment = self.new_payment(services)
        if self.capabilities().supports(Operation.SALE):
            done = self.as_customer(services, payment, services.sale(payment.id))
        else:
            assert services.authorize(payment.id).succeeded
            done = services.capture(payment.id)
        assert done.status is TransactionStatus.SUCCEEDED, describe(done)
        return services.get_payment(payment.id)

    def matches_provider(
        self, services: PaymentTransactionServices, sandbox: Sandbox, payment_id: str
    ) -> tuple[Payment, ProviderTotals]:
        """The payment as recorded, checked for consistency and against the provider."""
        payment = services.get_payment(payment_id)
        transactions = services.list_transactions(payment_id)
        assert states.problems(payment, transactions) == []
        assert payment.gateway_reference, "the gateway gave the payment no reference"
        provider = self.provider_totals(sandbox, payment.gateway_reference)
        ledger = (payment.captured.minor_units, payment.refunded.minor_units)
        assert ledger == (provider.captured, provider.refunded), (
            f"the ledger has captured and refunded {ledger}; the provider says "
            f"{(provider.captured, provider.refunded)}"
        )
        return payment, provider

    def direct_request(
        self, kind: TransactionType, transaction_id: str, **changes: Any
    ) -> PaymentRequest:
        """A `PaymentRequest` for calling the gateway directly, through a driver."""
        fields: dict[str, Any] = {
            "transaction_id": transaction_id,
            "transaction_type": kind,
            "payment_id": f"pay_{transaction_id}",
            "amount": self.money(),
            "payment_method": self.approved,
            "return_url": self.return_url,
        }
        return PaymentRequest(**{**fields, **changes})


def describe(transaction: PaymentTransaction) -> str:
    """A transaction in one line, for assertion messages."""
    reason = f" ({transaction.decline_reason})" if transaction.decline_reason else ""
    failure = f" ({transaction.failure}: {transaction.message})" if transaction.failure else ""
    return f"{transaction.type} {transaction.status}{reason}{failure}"
