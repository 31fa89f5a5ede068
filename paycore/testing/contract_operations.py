"""The gateway contract, part five: what a gateway declares, and the optional operations.

Operations left out of the capabilities raise `UnsupportedOperation`, and the services
refuse them before sending; a vault saves, charges off-session and forgets a method;
a hosted checkout is paid and then found approved. See `paycore.testing.contract`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import httpx
import pytest

from paycore.errors import InvalidAmount, InvalidRequest, UnsupportedOperation
from paycore.gateways.base import Gateway, Operation
from paycore.gateways.driver import GatewayDriver
from paycore.gateways.scrub import Scrubber
from paycore.testing.contract_base import ContractBase, describe
from paycore.testing.contract_support import needs
from paycore.transactions.model import (
    CheckoutKind,
    CheckoutSession,
    Customer,
    NextActionKind,
    PaymentStatus,
    SavedMethod,
    SaveMethodRequest,
    TransactionStatus,
    TransactionType,
    WebhookRequest,
)
from paycore.transactions.records import MUTATIONS

if TYPE_CHECKING:
    from paycore.sandbox.base import Sandbox
    from paycore.transactions.records import PaymentTransaction
    from paycore.transactions.services import PaymentTransactionServices

__all__ = ["DeclaredOperations"]

OPENING = (Operation.AUTHORIZE, Operation.SALE)
FOLLOW_UPS = {
    Operation.SALE: TransactionType.SALE,
    Operation.CAPTURE: TransactionType.CAPTURE,
    Operation.VOID: TransactionType.VOID,
    Operation.REFUND: TransactionType.REFUND,
}
CUSTOMER = Customer(reference="contract-customer-1", email="buyer@shop.example")


class DeclaredOperations(ContractBase):
    """The capabilities hold, and the optional operations work when declared."""

    def test_every_operation_left_undeclared_raises_unsupported_operation(
        self, gateway: Gateway
    ) -> None:
        missing = [op for op in Operation if not self.capabilities().supports(op)]
        if not missing:
            pytest.skip(f"gateway {self.gateway_name!r} declares every operation")

        for operation in missing:
            call = getattr(gateway, operation.value)
            with pytest.raises(UnsupportedOperation):
                start(call, *self._arguments(operation))

    def test_the_services_refuse_an_undeclared_mutation_before_sending(
        self, services: PaymentTransactionServices, sandbox: Sandbox
    ) -> None:
        missing = [
            kind for kind in MUTATIONS if not self.capabilities().supports(Operation(kind.value))
        ]
        if not missing:
            pytest.skip(f"gateway {self.gateway_name!r} declares every mutation")
        payment = self.new_payment(services)

        for kind in sorted(missing):
            with pytest.raises(UnsupportedOperation):
                getattr(services, kind.value)(payment.id)

        assert sandbox.requests_received == ()
        assert services.list_transactions(payment.id) == ()

    @needs(Operation.AUTHORIZE, Operation.CAPTURE, partial_capture=False)
    def test_a_partial_capture_is_refused_when_not_declared(
        self, services: PaymentTransactionServices, sandbox: Sandbox
    ) -> None:
        payment = self.authorized(services)
        sent = len(sandbox.requests_received)

        with pytest.raises(InvalidAmount):
            services.capture(payment.id, self.money(self.amount // 2))

        assert len(sandbox.requests_received) == sent

    # -- the vault ---------------------------------------------------------------------------

    @needs(Operation.SAVE_METHOD, any_of=OPENING)
    def test_a_saved_method_pays_off_session_until_it_is_deleted(
        self, services: PaymentTransactionServices, driver: GatewayDriver
    ) -> None:
        assert self.vault_method is not None, (
            f"gateway {self.gateway_name!r} declares save_method: set "
            f"{type(self).__name__}.vault_method to a method its sandbox can save"
        )
        request = SaveMethodRequest(
            idempotency_key="contract-save-1", payment_method=self.vault_method, customer=CUSTOMER
        )

        saved = driver.run(driver.gateway.save_method(request), operation=Operation.SAVE_METHOD)

        assert isinstance(saved, SavedMethod)
        assert saved.gateway == self.gateway_name
        assert saved.token and saved.customer_reference
        shown = repr(attrs.asdict(saved))
        assert Scrubber(()).text(shown) == shown, "a saved method shows a card number"
        charged = self._off_session(services, saved)
        assert charged.status is TransactionStatus.SUCCEEDED, describe(charged)
        assert charged.next_action is None

        driver.run(driver.gateway.delete_method(saved), operation=Operation.DELETE_METHOD)

        try:
            later = self._off_session(services, saved)
        except InvalidRequest:
            return  # refused before sending: as good as declined
        assert later.status is TransactionStatus.DECLINED, describe(later)

    def _off_session(
        self, services: PaymentTransactionServices, saved: SavedMethod
    ) -> PaymentTransaction:
        customer = attrs.evolve(CUSTOMER, gateway_customer_id=saved.customer_reference)
        payment = self.new_payment(
            services, saved.as_payment_method(off_session=True), customer=customer
        )
        return self.open_payment(services, payment)

    # -- hosted checkout -------------------------------------------------------------------

    @needs(Operation.CREATE_CHECKOUT, Operation.FETCH_STATUS)
    def test_a_hosted_checkout_paid_by_the_customer_is_approved(
        self, driver: GatewayDriver, http: httpx.Client
    ) -> None:
        page, kind = self._checkout()
        request = self.direct_request(kind, "txn_contract_checkout", payment_method=None)

        session = driver.run(
            driver.gateway.create_checkout(request, kind=page), operation=Operation.CREATE_CHECKOUT
        )

        assert isinstance(session, CheckoutSession)
        assert session.kind is page
        assert session.next_action.kind is NextActionKind.REDIRECT
        assert session.next_action.url.startswith(("http://", "https://"))
        self.pay_checkout(http, session)
        asked = attrs.evolve(request, gateway_reference=session.gateway_reference)
        status = driver.run(driver.gateway.fetch_status(asked), operation=Operation.FETCH_STATUS)
        assert status.approved, f"after paying, the checkout's {kind} is {status.outcome}"
        assert status.amount in (None, self.money())

    @needs(Operation.CREATE_CHECKOUT, Operation.FETCH_STATUS)
    def test_a_checkout_paid_on_its_page_settles_the_payment_in_the_ledger(
        self, services: PaymentTransactionServices, sandbox: Sandbox, http: httpx.Client
    ) -> None:
        page, kind = self._checkout()
        payment = services.create_payment(
            self.money(), gateway=self.gateway_name, return_url=self.return_url
        )

        opened = getattr(services, kind.value)(payment.id, checkout=page)

        assert opened.status is TransactionStatus.REQUIRES_ACTION, describe(opened)
        assert opened.next_action is not None
        assert opened.next_action.kind is NextActionKind.REDIRECT
        reference = services.get_payment(payment.id).gateway_reference
        session = CheckoutSession(
            reference=opened.gateway_transaction_id or "",
            next_action=opened.next_action,
            kind=page,
            gateway_reference=reference,
        )
        self.pay_checkout(http, session)
        settled = services.check(opened.id).transaction
        assert settled.status is TransactionStatus.SUCCEEDED, describe(settled)
        after, provider = self.matches_provider(services, sandbox, payment.id)
        if kind is TransactionType.SALE:
            assert (after.status, provider.captured) == (PaymentStatus.CAPTURED, self.amount)
        else:
            assert (after.status, after.authorized) == (PaymentStatus.AUTHORIZED, self.money())

    # -- steps -----------------------------------------------------------------------------

    def _checkout(self) -> tuple[CheckoutKind, TransactionType]:
        """The redirect checkout the gateway makes, and what paying on it does."""
        capabilities = self.capabilities()
        redirects = (CheckoutKind.HOSTED_PAGE, CheckoutKind.PAYMENT_LINK)
        pages = [page for page in redirects if page in capabilities.checkout_kinds]
        if not pages:
            pytest.skip(f"gateway {self.gateway_name!r} makes only widget checkouts")
        if capabilities.supports(Operation.SALE):
            return pages[0], TransactionType.SALE
        return pages[0], TransactionType.AUTHORIZE

    def _arguments(self, operation: Operation) -> tuple[Any, ...]:
        """Arguments for calling ``operation`` on the gateway directly."""
        if operation is Operation.PAYMENT_METHODS:
            return (self.money(),)
        if operation is Operation.HANDLE_WEBHOOK:
            return (WebhookRequest(method="POST", headers={}, body=b"{}"),)
        if operation is Operation.SAVE_METHOD:
            return (
                SaveMethodRequest(
                    idempotency_key="contract-save-1",
                    payment_method=self.approved,
                    customer=CUSTOMER,
                ),
            )
        if operation is Operation.DELETE_METHOD:
            saved = SavedMethod(
                gateway=self.gateway_name,
                token="contract_token",  # noqa: S106 - a made-up provider id
                customer_reference="contract_customer",
                type=self.approved.type,
            )
            return (saved,)
        # fetch_status and create_checkout ask about (or pay) an authorization.
        kind = FOLLOW_UPS.get(operation, TransactionType.AUTHORIZE)
        return (self.direct_request(kind, "txn_contract_unsupported", gateway_reference="ref_1"),)


def start(operation: Callable[..., Any], *arguments: Any) -> None:
    """Call a gateway operation and run its exchange to its first request."""
    exchange = operation(*arguments)
    next(exchange)
