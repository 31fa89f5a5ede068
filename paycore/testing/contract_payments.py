"""The gateway contract, part one: a payment's life through the services.

Methods offered, authorize, capture, refund, sale, declines, partial and multiple
captures and refunds, void, and 3-D Secure. See `paycore.testing.contract`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx
import pytest

from paycore.errors import InvalidAmount, StateError, UnsupportedOperation
from paycore.gateways.base import Operation
from paycore.gateways.driver import GatewayDriver
from paycore.testing.contract_base import ContractBase, describe
from paycore.testing.contract_support import needs
from paycore.transactions.model import (
    DeclineReason,
    NextActionKind,
    PaymentMethod,
    PaymentMethodOption,
    PaymentStatus,
    TransactionStatus,
    TransactionType,
)

if TYPE_CHECKING:
    from paycore.sandbox.base import Sandbox
    from paycore.transactions.records import Payment, PaymentTransaction
    from paycore.transactions.services import PaymentTransactionServices

__all__ = ["PaymentFlows"]

AUTHORIZE, CAPTURE, REFUND = Operation.AUTHORIZE, Operation.CAPTURE, Operation.REFUND
OPENING = (Operation.AUTHORIZE, Operation.SALE)


class PaymentFlows(ContractBase):
    """A payment's life, checked against the ledger and the provider's sandbox."""

    @needs(Operation.PAYMENT_METHODS)
    def test_payment_methods_are_offered_for_the_currency(self, driver: GatewayDriver) -> None:
        options = driver.run(
            driver.gateway.payment_methods(self.money()), operation=Operation.PAYMENT_METHODS
        )

        assert options, f"no payment method is offered for {self.money()}"
        assert all(isinstance(option, PaymentMethodOption) for option in options)
        assert {option.gateway for option in options} == {self.gateway_name}
        assert self.approved.type in {option.type for option in options}
        for option in options:
            for limit in (option.min_amount, option.max_amount):
                assert limit is None or limit.currency.code == self.currency

    @needs(AUTHORIZE, CAPTURE, REFUND)
    def test_authorize_capture_and_refund_in_full_match_the_provider(
        self, services: PaymentTransactionServices, sandbox: Sandbox
    ) -> None:
        payment = self.new_payment(services)

        authorization = services.authorize(payment.id)
        assert authorization.status is TransactionStatus.SUCCEEDED, describe(authorization)
        assert authorization.next_action is None
        authorized, _ = self.matches_provider(services, sandbox, payment.id)
        assert authorized.status is PaymentStatus.AUTHORIZED
        assert authorized.authorized == authorized.capturable == self.money()

        capture = services.capture(payment.id)
        assert capture.status is TransactionStatus.SUCCEEDED, describe(capture)
        assert capture.amount == self.money()
        captured, provider = self.matches_provider(services, sandbox, payment.id)
        assert captured.status is PaymentStatus.CAPTURED
        assert provider.captured == self.amount

        refund = services.refund(payment.id)
        assert refund.status is TransactionStatus.SUCCEEDED, describe(refund)
        refunded, provider = self.matches_provider(services, sandbox, payment.id)
        assert refunded.status is PaymentStatus.REFUNDED
        assert provider.refunded == self.amount
        assert {capture.parent_id, refund.parent_id} == {authorization.id}

    @needs(Operation.SALE)
    def test_a_sale_captures_the_whole_amount_in_one_step(
        self, services: PaymentTransactionServices, sandbox: Sandbox
    ) -> None:
        payment = self.new_payment(services)

        sale = self.as_customer(services, payment, services.sale(payment.id))

        assert sale.status is TransactionStatus.SUCCEEDED, describe(sale)
        paid, provider = self.matches_provider(services, sandbox, payment.id)
        assert paid.status is PaymentStatus.CAPTURED
        assert (paid.captured, paid.capturable) == (self.money(), self.money(0))
        assert provider.captured == self.amount
        refused = (
            StateError if self.capabilities().supports(Operation.VOID) else UnsupportedOperation
        )
        with pytest.raises(refused):
            services.void(payment.id)

    @needs(any_of=OPENING)
    def test_a_declined_method_is_a_declined_transaction_with_its_reason(
        self, services: PaymentTransactionServices
    ) -> None:
        self._declines(services, self.declined, self.declined_reason)

    @needs(any_of=OPENING, methods=("insufficient_funds",))
    def test_insufficient_funds_is_declined_as_such(
        self, services: PaymentTransactionServices
    ) -> None:
        assert self.insufficient_funds is not None
        self._declines(services, self.insufficient_funds, DeclineReason.INSUFFICIENT_FUNDS)

    def _declines(
        self, services: PaymentTransactionServices, method: PaymentMethod, reason: DeclineReason
    ) -> None:
        payment = self.new_payment(services, method)

        declined = self.open_payment(services, payment)

        assert declined.status is TransactionStatus.DECLINED, describe(declined)
        assert declined.decline_reason is reason, (
            f"declined for {declined.decline_reason}, not {reason}"
        )
        assert declined.next_action is None
        after = services.get_payment(payment.id)
        assert after.status is PaymentStatus.FAILED
        assert after.totals() == dict.fromkeys(after.totals(), 0)

    # -- captures --------------------------------------------------------------------------

    @needs(AUTHORIZE, CAPTURE, partial_capture=True)
    def test_a_partial_capture_takes_part_of_the_authorization(
        self, services: PaymentTransactionServices, sandbox: Sandbox
    ) -> None:
        payment = self.authorized(services)
        half = self.money(self.amount // 2)

        capture = services.capture(payment.id, half)

        assert (capture.status, capture.amount) == (TransactionStatus.SUCCEEDED, half)
        after, provider = self.matches_provider(services, sandbox, payment.id)
        assert after.captured == half
        assert provider.captured == half.minor_units
        if self.capabilities().multiple_capture:
            assert after.status is PaymentStatus.PARTIALLY_CAPTURED
            assert after.capturable == self.money() - half
        else:
            # A gateway that captures once releases what it did not capture.
            assert after.capturable == self.money(0)

    @needs(AUTHORIZE, CAPTURE, partial_capture=True, multiple_capture=True)
    def test_several_captures_add_up_to_the_authorization_and_then_stop(
        self, services: PaymentTransactionServices, sandbox: Sandbox
    ) -> None:
        payment = self.authorized(services)
        quarter = self.amount // 4
        parts = [quarter, quarter, self.amount - 2 * quarter]

        captures = [services.capture(payment.id, self.money(part)) for part in parts]

        assert [(c.status, c.amount.minor_units) for c in captures] == [
            (TransactionStatus.SUCCEEDED, part) for part in parts
        ]
        after, provider = self.matches_provider(services, sandbox, payment.id)
        assert (after.status, after.capturable) == (PaymentStatus.CAPTURED, self.money(0))
        assert provider.captured == self.amount
        assert provider.captures in (None, len(parts))
        self._refused(services, sandbox, lambda: services.capture(payment.id, self.money(1)))

    @needs(AUTHORIZE, CAPTURE, multiple_capture=False)
    def test_without_multiple_capture_a_second_capture_is_refused(
        self, services: PaymentTransactionServices, sandbox: Sandbox
    ) -> None:
        payment = self.authorized(services)
        partial = self.capabilities().partial_capture
        first = self.money(self.amount // 2) if partial else None

        assert services.capture(payment.id, first).succeeded
        after, _ = self.matches_provider(services, sandbox, payment.id)
        assert after.capturable == self.money(0)

        self._refused(services, sandbox, lambda: services.capture(payment.id, self.money(1)))
        assert len(services.list_transactions(payment.id)) == 2

    # -- refunds ---------------------------------------------------------------------------

    @needs(REFUND, any_of=OPENING, partial_refund=True)
    def test_a_partial_refund_gives_back_part_of_the_capture(
        self, services: PaymentTransactionServices, sandbox: Sandbox
    ) -> None:
        payment = self.captured(services)
        half = self.money(self.amount // 2)

        refund = services.refund(payment.id, half)

        assert (refund.status, refund.amount) == (TransactionStatus.SUCCEEDED, half)
        after, provider = self.matches_provider(services, sandbox, payment.id)
        assert (after.status, after.refunded) == (PaymentStatus.PARTIALLY_REFUNDED, half)
        assert provider.refunded == half.minor_units

    @needs(REFUND, any_of=OPENING, partial_refund=True, multiple_refund=True)
    def test_several_refunds_until_fully_refunded_and_then_no_more(
        self, services: PaymentTransactionServices, sandbox: Sandbox
    ) -> None:
        payment = self.captured(services)
        quarter = self.amount // 4
        parts = [quarter, quarter, self.amount - 2 * quarter]

        refunds = [services.refund(payment.id, self.money(part)) for part in parts]

        assert [(r.status, r.amount.minor_units) for r in refunds] == [
            (TransactionStatus.SUCCEEDED, part) for part in parts
        ]
        after, provider = self.matches_provider(services, sandbox, payment.id)
        assert after.status is PaymentStatus.REFUNDED
        assert provider.refunded == self.amount
        assert provider.refunds in (None, len(parts))
        self._refused(services, sandbox, lambda: services.refund(payment.id, self.money(1)))

    @needs(REFUND, any_of=OPENING, multiple_refund=False)
    def test_without_multiple_refund_a_second_refund_is_refused(
        self, services: PaymentTransactionServices, sandbox: Sandbox
    ) -> None:
        payment = self.captured(services)
        partial = self.capabilities().partial_refund
        first = self.money(self.amount // 2) if partial else None

        assert services.refund(payment.id, first).succeeded

        self._refused(services, sandbox, lambda: services.refund(payment.id, self.money(1)))

    def _refused(
        self,
        services: PaymentTransactionServices,
        sandbox: Sandbox,
        attempt: Callable[[], object],
    ) -> None:
        """``attempt`` is refused by paycore before anything is written or sent."""
        sent = len(sandbox.requests_received)
        with pytest.raises((StateError, InvalidAmount)):
            attempt()
        assert len(sandbox.requests_received) == sent, "a refused operation reached the provider"

    # -- void ------------------------------------------------------------------------------

    @needs(AUTHORIZE, Operation.VOID)
    def test_void_releases_the_authorization(
        self, services: PaymentTransactionServices, sandbox: Sandbox
    ) -> None:
        payment = self.authorized(services)

        void = services.void(payment.id)

        assert (void.status, void.amount) == (TransactionStatus.SUCCEEDED, self.money())
        after, provider = self.matches_provider(services, sandbox, payment.id)
        assert (after.status, after.capturable) == (PaymentStatus.VOIDED, self.money(0))
        assert provider.captured == 0
        with pytest.raises(StateError):
            services.capture(payment.id)

    # -- 3-D Secure --------------------------------------------------------------------------

    @needs(AUTHORIZE, Operation.FETCH_STATUS, methods=("challenge",))
    def test_a_challenge_the_customer_passes_ends_authorized(
        self, services: PaymentTransactionServices, sandbox: Sandbox, http: httpx.Client
    ) -> None:
        payment, started = self._challenged(services)

        assert started.next_action is not None
        self.complete_action(http, started.next_action, approve=True)
        check = services.check(started.id)

        assert check.transaction.status is TransactionStatus.SUCCEEDED, describe(check.transaction)
        after, _ = self.matches_provider(services, sandbox, payment.id)
        assert (after.status, after.authorized) == (PaymentStatus.AUTHORIZED, self.money())

    @needs(AUTHORIZE, Operation.FETCH_STATUS, methods=("challenge",))
    def test_a_challenge_the_customer_fails_ends_declined(
        self, services: PaymentTransactionServices, http: httpx.Client
    ) -> None:
        payment, started = self._challenged(services)

        assert started.next_action is not None
        self.complete_action(http, started.next_action, approve=False)
        check = services.check(started.id)

        declined = check.transaction
        assert declined.status is TransactionStatus.DECLINED, describe(declined)
        assert declined.decline_reason is DeclineReason.AUTHENTICATION_FAILED, (
            f"a failed challenge is declined for {declined.decline_reason}, "
            "not authentication_failed"
        )
        after = services.get_payment(payment.id)
        assert (after.status, after.authorized) == (PaymentStatus.FAILED, self.money(0))

    def _challenged(
        self, services: PaymentTransactionServices
    ) -> tuple[Payment, PaymentTransaction]:
        payment = self.new_payment(services, self.challenge)
        started = services.authorize(payment.id)
        assert started.status is TransactionStatus.REQUIRES_ACTION, describe(started)
        assert started.type is TransactionType.AUTHORIZE
        action = started.next_action
        assert action is not None and action.kind is NextActionKind.REDIRECT
        assert action.url.startswith(("http://", "https://"))
        assert services.get_payment(payment.id).status is PaymentStatus.REQUIRES_ACTION
        return payment, started
