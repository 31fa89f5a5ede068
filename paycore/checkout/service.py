"""CheckoutService: checkouts over `PaymentTransactionServices`, in the calling thread.

The logic is `paycore.checkout.coordination` (read its docstring for how a checkout
goes); this facade carries it out with the payment services' own runner, so a
checkout's database calls and gateway exchanges follow the same rules as theirs.
`paycore.checkout.async_service.AsyncCheckoutService` is the same on an event loop.

    services = PaymentTransactionServices.from_settings(settings)
    checkout = CheckoutService(services, return_base_url="https://shop.example/paycore")
    cart = Cart(currency="EUR", items=[CartItem(sku="tea", name="Tea", quantity=2,
                                               unit_price=Money(450, "EUR"))])
    started = checkout.create(cart, owner="customer-42")
    checkout.add_payment(started.id, Money(500, "EUR"), gateway="giftcards",
                         payment_method=PaymentMethod(type="gift_card", token="gc_…"))
    card = checkout.add_payment(started.id, Money(400, "EUR"), gateway="wooshpay")
    submission = checkout.submit(started.id)   # the card payment waits for its page:
    submission.next_actions[card.id].url       # send the customer there
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from paycore.checkout.coordination import (
    DEFAULT_ABANDON_AFTER,
    DEFAULT_OPTIONS_TIMEOUT,
    Coordination,
)
from paycore.checkout.model import (
    CaptureMode,
    Cart,
    Checkout,
    PaymentOptions,
    StoredMethod,
    Submission,
)
from paycore.money import Money
from paycore.transactions.model import CheckoutKind, Customer, NextAction, PaymentMethod
from paycore.transactions.records import Payment
from paycore.transactions.services import PaymentTransactionServices

__all__ = ["CheckoutService"]


class CheckoutService(Coordination):
    """Checkouts: payment options, split tender, hosted pages, submit and complete.

    ``capture`` (a merchant setting) says whether submitting authorizes each payment
    (captured later, on shipment) or sells it. ``return_base_url`` is the public
    address of paycore's web app (`paycore.web`): payments started here return the
    customer to its ``/return/{gateway}`` and have their webhooks sent to
    ``/webhooks/{gateway}``. ``options_timeout`` bounds how long `payment_options`
    waits for the gateways. ``order_id`` makes the order id of a completed checkout
    (``ord_…`` by default).
    """

    def __init__(
        self,
        services: PaymentTransactionServices,
        *,
        capture: CaptureMode | str = CaptureMode.AUTHORIZE,
        return_base_url: str | None = None,
        options_timeout: float = DEFAULT_OPTIONS_TIMEOUT,
        order_id: Callable[[Checkout], str] | None = None,
    ) -> None:
        self._setup(
            services,
            capture=capture,
            return_base_url=return_base_url,
            options_timeout=options_timeout,
            order_id=order_id,
        )
        self.services = services

    def create(self, cart: Cart, *, owner: str, idempotency_key: str | None = None) -> Checkout:
        """A new open checkout of ``cart`` for ``owner`` (the same one again for the same key)."""
        return self.services._carry_out(self._create(cart, owner, idempotency_key))

    def get(self, checkout_id: str) -> Checkout:
        return self.services._carry_out(self._get(checkout_id))

    def checkout_of_payment(self, payment_id: str) -> str | None:
        """The id of the checkout ``payment_id`` belongs to, if any."""
        return self.records.checkout_of_payment(payment_id)

    def payment_options(self, cart: Cart, *, owner: str | None = None) -> PaymentOptions:
        """What can pay ``cart``: each gateway's methods (asked at once, within
        ``options_timeout``; one slow or failing is reported unavailable, the others
        listed) and ``owner``'s stored methods."""
        return self.services._carry_out(self._payment_options(cart, owner))

    def add_payment(
        self,
        checkout_id: str,
        amount: Money,
        *,
        gateway: str | None = None,
        payment_method: PaymentMethod | None = None,
        saved_method: str | None = None,
        customer: Customer | None = None,
        description: str | None = None,
        idempotency_key: str | None = None,
    ) -> Payment:
        """Pay ``amount`` of the open checkout through ``gateway`` (split tender: call it
        for each part). ``saved_method``: the id of one of the owner's `StoredMethod`\\ s.
        Without a method, the customer pays on the gateway's page (`start_payment`).
        More than what remains to pay is `InvalidAmount`; nothing is written then."""
        return self.services._carry_out(
            self._add_payment(
                checkout_id,
                amount,
                gateway=gateway,
                payment_method=payment_method,
                saved_method=saved_method,
                customer=customer,
                description=description,
                idempotency_key=idempotency_key,
            )
        )

    def remove_payment(self, checkout_id: str, payment_id: str) -> Checkout:
        """Take a payment out of the open checkout (an authorized one is voided first)."""
        return self.services._carry_out(self._remove_payment(checkout_id, payment_id))

    def start_payment(
        self,
        checkout_id: str,
        payment_id: str,
        *,
        kind: CheckoutKind | str = CheckoutKind.HOSTED_PAGE,
    ) -> NextAction:
        """Open the gateway's hosted page, payment link or widget for the payment: where
        to send the customer (the same again when called twice)."""
        return self.services._carry_out(self._start_payment(checkout_id, payment_id, kind))

    def submit(self, checkout_id: str) -> Submission:
        """Authorize (or sell) every payment, in order; see `Submission`.

        The payments must add up to the total exactly (`StateError` otherwise). A
        decline or failure stops it, releases what the others hold and fails the
        checkout; payments waiting for the customer come back in ``next_actions``.
        Submitting again carries on where it stopped and sends nothing twice.
        """
        return self.services._carry_out(self._submit(checkout_id))

    def complete(self, checkout_id: str, *, confirm: bool = False) -> Checkout:
        """Finish the checkout if its payments allow: ``completed`` with an order id
        once all went through, ``failed`` (the others released) once one was declined
        or failed; else it stays as it is. ``confirm`` asks the gateways about payments
        still unsettled first (the customer's return). Safe to call any number of
        times, from anywhere, at once: it finishes once."""
        return self.services._carry_out(self._complete(checkout_id, confirm=confirm))

    def complete_unfinished(
        self,
        *,
        older_than: timedelta = timedelta(minutes=5),
        abandon_after: timedelta | None = DEFAULT_ABANDON_AFTER,
        limit: int = 100,
    ) -> list[Checkout]:
        """The sweep (run it with reconciliation): complete, confirming with the
        gateways, the checkouts waiting for ``older_than`` (submitted ones whose customer
        never came back and whose webhook never came, failed ones still holding money,
        payments taken out of one still holding money), and cancel as ``abandoned``, with
        what they hold released, those not finished ``abandon_after`` their creation.
        Returns them as they are afterwards."""
        return self.services._carry_out(self._sweep(older_than, abandon_after, limit))

    def cancel(self, checkout_id: str) -> Checkout:
        """Fail the checkout as ``canceled`` and release what its payments hold (a
        completed one is an order: cancel that with `paycore.oms.OrderPayments`)."""
        return self.services._carry_out(self._cancel(checkout_id))

    def save_method(
        self,
        owner: str,
        *,
        gateway: str,
        payment_method: PaymentMethod,
        idempotency_key: str,
        customer: Customer | None = None,
    ) -> StoredMethod:
        """Have ``gateway`` keep a method (its token from the provider's own
        tokenisation) for ``owner``, and list it among the owner's payment options."""
        return self.services._carry_out(
            self._save_method(owner, gateway, payment_method, customer, idempotency_key)
        )

    def saved_methods(self, owner: str) -> tuple[StoredMethod, ...]:
        return self.services._carry_out(self._saved_methods(owner))

    def delete_saved_method(self, owner: str, method_id: str) -> None:
        """Forget the method at its gateway (it can no longer be charged), then here."""
        self.services._carry_out(self._delete_method(owner, method_id))
