"""The checkout's logic, written once as generators of steps (DESIGN §7).

Like the payment services' (`paycore.transactions.orchestration`), each operation is
a generator of steps: database calls, gateway exchanges, and the payment services'
own operations joined with ``yield from``. `paycore.checkout.service.CheckoutService`
carries them out in the calling thread, `AsyncCheckoutService` on an event loop.

How a checkout goes:

1. `create` it for a cart and an owner; `payment_options` lists what can pay it.
2. `add_payment` (several: split tender) creates a ledger payment for part of the
   total, owned by the checkout. Payments may not pay more than the total.
3. `start_payment` opens a hosted page, payment link or widget for a payment that
   needs the customer; its return and webhook URLs point at paycore's web app.
4. `submit` checks that the payments cover the total exactly, then authorizes (or
   sells) each in order, stopping at the first decline or failure.
5. `complete` (from `submit`, the customer's return, or a webhook: whichever comes
   first) finishes the checkout once every payment went through (``completed``, with
   an order id), or fails it when one was declined or failed: the others are voided
   (or refunded, when sold) with keys derived from the checkout, so finishing twice,
   even from two processes at once, does everything once.

A payment that succeeds after its checkout failed (a customer paying late on a page)
is released too, the next time the checkout is completed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from contextlib import suppress
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from attrs import evolve

from paycore.checkout.model import (
    CaptureMode,
    Cart,
    Checkout,
    CheckoutFailure,
    CheckoutStatus,
    PaymentOptions,
    StoredMethod,
    Submission,
)
from paycore.checkout.store import (
    HOLDING,
    REMOVABLE,
    CheckoutStore,
    Finished,
    checkout_fingerprint,
    fully_paid,
)
from paycore.errors import (
    CurrencyMismatch,
    IdempotencyConflict,
    InvalidAmount,
    InvalidRequest,
    NotFound,
    PaycoreError,
    PaymentBusy,
    StateError,
    UnsupportedOperation,
)
from paycore.gateways.base import Exchange, Gateway, Operation
from paycore.gateways.scrub import Scrubber
from paycore.money import Money
from paycore.transactions.inputs import check_id, check_owner
from paycore.transactions.ledger import fingerprint, new_id
from paycore.transactions.model import (
    CheckoutKind,
    Customer,
    NextAction,
    PaymentMethod,
    PaymentMethodOption,
    PaymentStatus,
    SavedMethod,
    SaveMethodRequest,
    TransactionStatus,
    TransactionType,
    _member,
)
from paycore.transactions.orchestration import (
    DbStep,
    GatherStep,
    Orchestration,
    RunStep,
    Steps,
    one_line,
)
from paycore.transactions.records import Payment, PaymentTransaction

__all__ = ["Coordination"]

# A payment that went through: the money is reserved or taken.
PAID = HOLDING
# A payment that can no longer go through.
GONE = frozenset(
    {PaymentStatus.FAILED, PaymentStatus.EXPIRED, PaymentStatus.VOIDED, PaymentStatus.REFUNDED}
)
# Pay transactions still waiting for the customer, the provider or reconciliation.
UNSETTLED = frozenset(
    {
        TransactionStatus.PENDING,
        TransactionStatus.UNKNOWN,
        TransactionStatus.PROCESSING,
        TransactionStatus.REQUIRES_ACTION,
    }
)
PAY_TYPES = (TransactionType.AUTHORIZE, TransactionType.SALE)
DEFAULT_OPTIONS_TIMEOUT = 5.0
# A checkout not finished this long after it was created is abandoned by the sweep.
DEFAULT_ABANDON_AFTER = timedelta(days=1)
_CARD_MASK = Scrubber(())
# No control characters, and no lone surrogates (no UTF-8 text, so no database, holds one).
_OWNER = re.compile(r"[^\x00-\x1f\x7f\ud800-\udfff]{1,255}")

Tender = tuple[Payment, PaymentTransaction | None]


class Coordination:
    """The checkout's step generators, over payment services (sync or async)."""

    payments: Orchestration
    records: CheckoutStore

    def _setup(
        self,
        payments: Orchestration,
        *,
        capture: CaptureMode | str,
        return_base_url: str | None,
        options_timeout: float,
        order_id: Callable[[Checkout], str] | None,
    ) -> None:
        if not isinstance(payments, Orchestration):
            raise InvalidRequest("a checkout service needs payment services to work with")
        if not (isinstance(options_timeout, int | float) and options_timeout > 0):
            raise InvalidRequest("options_timeout must be a positive number of seconds")
        self.payments = payments
        self.records = CheckoutStore(payments.store, payments.ledger.outbox)
        self.capture = _member(CaptureMode, capture, "capture")
        self.return_base_url = None if return_base_url is None else return_base_url.rstrip("/")
        self.options_timeout = float(options_timeout)
        self._order_id = order_id or (lambda checkout: new_id("ord"))

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.payments.clock

    # -- checkouts -----------------------------------------------------------------------

    def _create(self, cart: Cart, owner: str, idempotency_key: str | None) -> Steps[Checkout]:
        if not isinstance(cart, Cart):
            raise InvalidRequest(f"cart must be a Cart, not {type(cart).__name__}")
        _check_customer(owner)
        cart = _masked(cart)
        if idempotency_key is not None:
            check_id(idempotency_key, "idempotency_key")
        now = self.clock()
        checkout = Checkout(
            id=new_id("chk"),
            owner=owner,
            status=CheckoutStatus.OPEN,
            cart=cart,
            capture=self.capture,
            created_at=now,
            updated_at=now,
        )
        created: Checkout = yield DbStep(
            lambda: self.records.create(
                checkout,
                idempotency_key=idempotency_key,
                fingerprint=checkout_fingerprint(checkout),
            )
        )
        return created

    def _get(self, checkout_id: str) -> Steps[Checkout]:
        check_id(checkout_id, "checkout_id")
        checkout: Checkout = yield DbStep(lambda: self.records.get(checkout_id))
        return checkout

    def _payment_options(self, cart: Cart, owner: str | None) -> Steps[PaymentOptions]:
        if not isinstance(cart, Cart):
            raise InvalidRequest(f"cart must be a Cart, not {type(cart).__name__}")
        if owner is not None:
            _check_customer(owner)
        amount = cart.total
        names = [
            name
            for name, gateway in self.payments.gateways.items()
            if _can_take(gateway, amount)
            and gateway.capabilities.supports(Operation.PAYMENT_METHODS)
        ]
        runs = tuple(
            RunStep(name, partial(_methods_of, amount, cart.country), Operation.PAYMENT_METHODS)
            for name in names
        )
        answers: tuple[Any, ...] = yield GatherStep(runs, self.options_timeout)
        methods: list[PaymentMethodOption] = []
        unavailable: dict[str, str] = {}
        for name, answer in zip(names, answers, strict=True):
            if isinstance(answer, Exception):
                unavailable[name] = one_line(answer)
                continue
            methods.extend(
                evolve(option, gateway=name) for option in answer.result if _fits(option, amount)
            )
        saved: tuple[StoredMethod, ...] = ()
        if owner is not None:
            stored: tuple[StoredMethod, ...] = yield DbStep(lambda: self.records.methods_of(owner))
            saved = tuple(
                method
                for method in stored
                if method.gateway in self.payments.gateways
                and _can_take(self.payments.gateways[method.gateway], amount)
            )
        return PaymentOptions(methods=tuple(methods), saved=saved, unavailable=unavailable)

    # -- payments of a checkout -----------------------------------------------------------

    def _add_payment(
        self,
        checkout_id: str,
        amount: Money,
        *,
        gateway: str | None,
        payment_method: PaymentMethod | None,
        saved_method: str | None,
        customer: Customer | None,
        description: str | None,
        idempotency_key: str | None,
    ) -> Steps[Payment]:
        checkout = yield from self._get(checkout_id)
        key = None if idempotency_key is None else f"{checkout_id}:{idempotency_key}"
        if key is not None:
            check_id(idempotency_key, "idempotency_key")
            added: Payment | None = yield DbStep(partial(self.payments.ledger.payment_by_key, key))
            if added is not None and added.id in checkout.payment_ids:
                return added  # added before with this key: the same payment
        if not isinstance(amount, Money):
            raise InvalidAmount(f"amount must be Money, not {type(amount).__name__}")
        if amount.currency != checkout.cart.currency:
            raise CurrencyMismatch(
                f"checkout {checkout_id} is paid in {checkout.cart.currency}, not {amount.currency}"
            )
        if checkout.status is not CheckoutStatus.OPEN:
            raise StateError(
                f"cannot add a payment to checkout {checkout_id}: it is {checkout.status}"
            )
        tenders: list[Tender] = yield DbStep(partial(self._tenders, checkout))
        remaining = checkout.total - _sum(tenders, checkout)
        if amount > remaining:
            raise InvalidAmount(
                f"{amount} is more than what remains to pay of checkout {checkout_id} ({remaining})"
            )
        if saved_method is not None:
            check_id(saved_method, "saved_method")
            if payment_method is not None:
                raise InvalidRequest("give a payment_method or a saved_method, not both")
            stored: StoredMethod = yield DbStep(
                lambda: self.records.method(checkout.owner, saved_method)
            )
            if gateway is not None and gateway != stored.gateway:
                raise InvalidRequest(
                    f"saved method {saved_method} is kept by {stored.gateway!r}, not {gateway!r}"
                )
            gateway = stored.gateway
            payment_method = stored.method.as_payment_method()
            customer = evolve(
                customer or Customer(reference=checkout.owner),
                gateway_customer_id=stored.method.customer_reference,
            )
        name = self.payments._choose_gateway(
            gateway, amount, payment_method, customer, checkout_id, None
        )
        if payment_method is None:
            _page_of(self.payments.gateways[name])  # paid on its page: it must have one
        payment: Payment = yield from self.payments._create_payment(
            amount=amount,
            gateway=name,
            payment_method=payment_method,
            customer=customer,
            owner=checkout_id,
            description=description,
            return_url=self._url("return", name, checkout_id),
            notification_url=self._url("webhooks", name, None),
            metadata={"checkout": checkout_id},
            idempotency_key=key,
        )
        yield DbStep(
            lambda: self.records.link(checkout_id, payment.id, payment.amount, self.clock())
        )
        return payment

    def _remove_payment(self, checkout_id: str, payment_id: str) -> Steps[Checkout]:
        checkout = yield from self._get(checkout_id)
        check_id(payment_id, "payment_id")
        if payment_id not in checkout.payment_ids:
            raise NotFound("payment of the checkout", payment_id)
        if checkout.status is not CheckoutStatus.OPEN:
            raise StateError(
                f"cannot remove a payment from checkout {checkout_id}: it is {checkout.status}"
            )
        # Taken out first, under the checkout's lock and as the payment stands then: a
        # submit or a page opened meanwhile cannot count it any more.
        payment: Payment = yield DbStep(
            lambda: self.records.unlink(checkout_id, payment_id, self.clock(), removable=REMOVABLE)
        )
        if payment.status in PAID:
            # Released under a key of its own; if that fails, completing the checkout
            # (or the sweep) releases it, as a payment of the checkout no longer in it.
            yield from self._release_one(checkout, payment, "remove")
        updated: Checkout = yield DbStep(lambda: self.records.get(checkout_id))
        return updated

    def _start_payment(
        self, checkout_id: str, payment_id: str, kind: CheckoutKind | str
    ) -> Steps[NextAction]:
        page = _member(CheckoutKind, kind, "kind")
        checkout = yield from self._get(checkout_id)
        check_id(payment_id, "payment_id")
        if payment_id not in checkout.payment_ids:
            raise NotFound("payment of the checkout", payment_id)
        if checkout.status.is_final:
            raise StateError(f"checkout {checkout_id} is {checkout.status}")
        payment: Payment = yield DbStep(lambda: self.payments.ledger.payment(payment_id))
        transaction = yield from self._pay(checkout, payment, page)
        if transaction.status is TransactionStatus.REQUIRES_ACTION and transaction.next_action:
            return transaction.next_action
        why = transaction.message or transaction.decline_reason or transaction.failure
        raise StateError(
            f"payment {payment_id} needs no customer action: it is {transaction.status}"
            + (f" ({why})" if why else "")
        )

    # -- submit and complete --------------------------------------------------------------

    def _submit(self, checkout_id: str) -> Steps[Submission]:
        check_id(checkout_id, "checkout_id")
        checkout: Checkout = yield DbStep(lambda: self.records.submit(checkout_id, self.clock()))
        if checkout.status is CheckoutStatus.SUBMITTED:
            for payment_id in checkout.payment_ids:
                payment: Payment = yield DbStep(partial(self.payments.ledger.payment, payment_id))
                transaction = yield from self._pay(checkout, payment, None)
                if transaction.status in (TransactionStatus.DECLINED, TransactionStatus.FAILED):
                    break  # nothing more is sent: the checkout fails
        finished = yield from self._complete(checkout_id, confirm=False)
        tenders: list[Tender] = yield DbStep(partial(self._tenders, finished))
        actions = {
            payment.id: transaction.next_action
            for payment, transaction in tenders
            if transaction is not None
            and transaction.status is TransactionStatus.REQUIRES_ACTION
            and transaction.next_action is not None
        }
        return Submission(
            checkout=finished,
            payments=tuple(payment for payment, _ in tenders),
            next_actions=actions,
        )

    def _complete(self, checkout_id: str, *, confirm: bool) -> Steps[Checkout]:
        checkout = yield from self._get(checkout_id)
        if checkout.status is CheckoutStatus.COMPLETED:
            return checkout
        tenders: list[Tender] = yield DbStep(partial(self._tenders, checkout))
        if confirm:
            for _, transaction in tenders:
                if transaction is not None and transaction.status in UNSETTLED:
                    # When the provider cannot say, the checkout waits.
                    with suppress(PaycoreError):
                        yield from self.payments._fetch_status(transaction.id)
            tenders = yield DbStep(partial(self._tenders, checkout))
        detached: list[Payment] = yield DbStep(partial(self._detached, checkout))
        for payment in detached:
            yield from self._release_one(checkout, payment, "remove")
        if checkout.status is CheckoutStatus.FAILED:
            yield from self._release(checkout, tenders)
            return checkout
        refused = _refused(tenders)
        if refused is None and checkout.status is CheckoutStatus.SUBMITTED:
            # A submit that stopped halfway (its process died) is carried on: the rest
            # of the payments, under the same keys.
            unsent = [payment for payment, made in tenders if made is None]
            for payment in unsent:
                yield from self._pay(checkout, payment, None)
            if unsent:
                tenders = yield DbStep(partial(self._tenders, checkout))
                refused = _refused(tenders)
        if refused is not None and checkout.status is CheckoutStatus.SUBMITTED:
            finished: Finished = yield DbStep(
                lambda: self.records.finish(checkout_id, self.clock(), failure=refused)
            )
            yield from self._announce(finished)
            if finished.checkout.status is CheckoutStatus.FAILED:
                yield from self._release(finished.checkout, tenders)
            return finished.checkout
        if refused is None and _all_paid(tenders, checkout):
            order_id = self._order_id(checkout)
            check_owner(order_id)
            saved = list(self._to_keep(checkout, tenders))
            finished = yield DbStep(
                lambda: self.records.finish(
                    checkout_id, self.clock(), order_id=order_id, saved=saved
                )
            )
            yield from self._announce(finished)
            return finished.checkout
        return checkout

    def _announce(self, finished: Finished) -> Steps[None]:
        """Deliver "checkout finished" when this call finished it (after commit)."""
        entry = finished.outbox
        if entry is not None:
            yield DbStep(
                lambda: self.payments.ledger.outbox.deliver_checkout(finished.checkout, entry)
            )

    def _sweep(
        self, older_than: timedelta, abandon_after: timedelta | None, limit: int
    ) -> Steps[list[Checkout]]:
        """Complete what waits past ``older_than``; cancel as abandoned what has not
        finished ``abandon_after`` its creation (releasing what it holds)."""
        if not isinstance(older_than, timedelta) or older_than < timedelta(0):
            raise InvalidRequest("older_than must be a non-negative timedelta")
        now = self.clock()
        swept: list[Checkout] = []
        if abandon_after is not None:
            stale: list[str] = yield DbStep(
                lambda: self.records.stale(created_before=now - abandon_after, limit=limit)
            )
            for checkout_id in stale:
                checkout = yield from self._complete(checkout_id, confirm=True)
                if not checkout.status.is_final:
                    checkout = yield from self._cancel(checkout_id, "abandoned")
                swept.append(checkout)
        waiting: list[str] = yield DbStep(
            lambda: self.records.unfinished(updated_before=now - older_than, limit=limit)
        )
        for checkout_id in waiting:
            checkout = yield from self._complete(checkout_id, confirm=True)
            if not checkout.status.is_final:
                # Looked at: the sweep takes the longest unseen first, so a checkout that
                # cannot finish yet never holds up the others.
                yield DbStep(partial(self.records.touch, checkout_id, self.clock()))
            swept.append(checkout)
        return swept

    def _cancel(self, checkout_id: str, reason: str = "canceled") -> Steps[Checkout]:
        """Fail the checkout (``reason``) unless it completed, and release what it holds."""
        checkout = yield from self._get(checkout_id)
        if checkout.status is not CheckoutStatus.FAILED:
            failure = CheckoutFailure(payment_id=None, reason=reason)
            finished: Finished = yield DbStep(
                lambda: self.records.finish(checkout_id, self.clock(), failure=failure)
            )
            yield from self._announce(finished)
            checkout = finished.checkout
        if checkout.status is CheckoutStatus.COMPLETED:
            raise StateError(
                f"checkout {checkout_id} is completed: cancel its order "
                f"{checkout.order_id} instead (OrderPayments.cancel)"
            )
        tenders: list[Tender] = yield DbStep(partial(self._tenders, checkout))
        yield from self._release(checkout, tenders)
        detached: list[Payment] = yield DbStep(partial(self._detached, checkout))
        for payment in detached:
            yield from self._release_one(checkout, payment, "remove")
        return checkout

    # -- stored methods -------------------------------------------------------------------

    def _save_method(
        self,
        owner: str,
        gateway: str,
        payment_method: PaymentMethod,
        customer: Customer | None,
        idempotency_key: str,
    ) -> Steps[StoredMethod]:
        _check_customer(owner)
        self._vault(gateway)
        check_id(idempotency_key, "idempotency_key")
        request = SaveMethodRequest(
            # The caller's key, for this customer: two customers' "save-1" are two saves.
            idempotency_key=f"save:{fingerprint(owner)[:16]}:{idempotency_key}"[:255],
            payment_method=payment_method,
            customer=customer or Customer(reference=owner),
        )
        recorded = yield RunStep(gateway, partial(_save, request), Operation.SAVE_METHOD)
        saved: SavedMethod = evolve(recorded.result, gateway=gateway)
        method = StoredMethod(id=new_id("spm"), owner=owner, method=saved, created_at=self.clock())
        kept: StoredMethod = yield DbStep(lambda: self.records.store_method(method))
        return kept

    def _saved_methods(self, owner: str) -> Steps[tuple[StoredMethod, ...]]:
        _check_customer(owner)
        methods: tuple[StoredMethod, ...] = yield DbStep(lambda: self.records.methods_of(owner))
        return methods

    def _delete_method(self, owner: str, method_id: str) -> Steps[None]:
        _check_customer(owner)
        check_id(method_id, "method_id")
        stored: StoredMethod = yield DbStep(lambda: self.records.method(owner, method_id))
        self._vault(stored.gateway)
        # Forgotten at the gateway first: a method paycore no longer lists must not stay
        # chargeable there.
        yield RunStep(stored.gateway, partial(_delete, stored.method), Operation.DELETE_METHOD)
        yield DbStep(lambda: self.records.forget_method(method_id))

    # -- the parts --------------------------------------------------------------------------

    def _pay(
        self, checkout: Checkout, payment: Payment, page: CheckoutKind | None
    ) -> Steps[PaymentTransaction]:
        """The payment's one authorize or sale: the one made before, or a new one."""
        transactions: tuple[PaymentTransaction, ...] = yield DbStep(
            partial(self.payments.ledger.transactions, payment.id)
        )
        made = _pay_transaction(transactions)
        if made is not None and made.status is not TransactionStatus.FAILED:
            return made
        gateway = self.payments.gateways[payment.gateway]
        kind = (
            TransactionType.AUTHORIZE
            if checkout.capture is CaptureMode.AUTHORIZE
            and gateway.capabilities.supports(Operation.AUTHORIZE)
            else TransactionType.SALE
        )
        if page is None and payment.payment_method is None:
            # Nothing to charge without the customer: their page is how it is paid.
            page = _page_of(gateway)
        if made is not None:
            # It failed with nothing sent (the gateway was down): sent again, the same
            # way, under its key. Asked another way (another page), it stays failed.
            kind = made.type
        try:
            transaction: PaymentTransaction = yield from self.payments._mutate(
                payment.id, kind, None, idempotency_key=f"{checkout.id}:pay", checkout=page
            )
        except IdempotencyConflict:
            if made is not None:
                return made
            raise
        except PaymentBusy:
            raise
        except PaycoreError:
            # Refused before sending (the gateway cannot take it so): recorded failed.
            transactions = yield DbStep(partial(self.payments.ledger.transactions, payment.id))
            made = _pay_transaction(transactions)
            if made is None:
                raise
            return made
        return transaction

    def _release(self, checkout: Checkout, tenders: Iterable[Tender]) -> Steps[None]:
        """Give back what the failed checkout's payments hold (void, or refund a sale)."""
        for payment, _ in tenders:
            if payment.status in PAID or payment.status is PaymentStatus.PARTIALLY_REFUNDED:
                yield from self._release_one(checkout, payment, "release")

    def _release_one(
        self, checkout: Checkout, payment: Payment, why: str
    ) -> Steps[PaymentTransaction | None]:
        capabilities = self.payments.gateways[payment.gateway].capabilities
        key = f"{checkout.id}:{why}"
        try:
            if payment.capturable.is_positive() and payment.captured.is_zero():
                if capabilities.supports(Operation.VOID):
                    released: PaymentTransaction = yield from self.payments._mutate(
                        payment.id, TransactionType.VOID, None, idempotency_key=key
                    )
                    return released
                return None
            if payment.refundable.is_positive() and capabilities.supports(Operation.REFUND):
                released = yield from self.payments._mutate(
                    payment.id, TransactionType.REFUND, payment.refundable, idempotency_key=key
                )
                return released
        except (PaymentBusy, StateError, UnsupportedOperation):
            # Another mutation is in flight, or the state moved on: the next completion
            # (a webhook, the return, a sweep) tries again with the same key.
            return None
        return None

    def _detached(self, checkout: Checkout) -> list[Payment]:
        """Payments made for the checkout and taken out of it that still hold money."""
        return [
            payment
            for payment in self.payments.ledger.payments_of(checkout.id)
            if payment.id not in checkout.payment_ids and payment.status in PAID
        ]

    def _tenders(self, checkout: Checkout) -> list[Tender]:
        """The checkout's payments, each with its authorize or sale (database reads)."""
        ledger = self.payments.ledger
        tenders: list[Tender] = []
        for payment_id in checkout.payment_ids:
            payment = ledger.payment(payment_id)
            tenders.append((payment, _pay_transaction(ledger.transactions(payment_id))))
        return tenders

    def _to_keep(self, checkout: Checkout, tenders: Iterable[Tender]) -> Iterable[StoredMethod]:
        """The methods the customer asked to save while paying, as the gateway kept them."""
        now = self.clock()
        for payment, transaction in tenders:
            method = payment.payment_method
            if method is None or not method.save or transaction is None:
                continue
            if transaction.saved_method is not None:
                saved = evolve(transaction.saved_method, gateway=payment.gateway)
                yield StoredMethod(
                    id=new_id("spm"), owner=checkout.owner, method=saved, created_at=now
                )

    def _url(self, route: str, gateway: str, checkout_id: str | None) -> str | None:
        if self.return_base_url is None:
            return None
        url = f"{self.return_base_url}/{route}/{gateway}"
        return url if checkout_id is None else f"{url}?checkout={checkout_id}"

    def _vault(self, gateway: str) -> Gateway:
        configured = self.payments.gateways.get(gateway) if isinstance(gateway, str) else None
        if configured is None:
            raise InvalidRequest(f"no gateway {str(gateway)[:64]!r} is configured")
        if not configured.capabilities.vault:
            raise UnsupportedOperation(gateway, "save_method")
        return configured


# -- helpers ---------------------------------------------------------------------------------


def _masked(cart: Cart) -> Cart:
    """The cart with any card number in its items' text masked: it is stored."""
    items = [
        evolve(item, sku=_CARD_MASK.text(item.sku), name=_CARD_MASK.text(item.name))
        for item in cart.items
    ]
    return evolve(cart, items=items)


def _check_customer(owner: Any) -> None:
    if not isinstance(owner, str) or not _OWNER.fullmatch(owner):
        raise InvalidRequest("owner must be the customer's id: 1 to 255 printable characters")


def _methods_of(
    amount: Money, country: str | None, gateway: Gateway
) -> Exchange[tuple[PaymentMethodOption, ...]]:
    return gateway.payment_methods(amount, country=country)


def _save(request: SaveMethodRequest, gateway: Gateway) -> Exchange[SavedMethod]:
    return gateway.save_method(request)


def _delete(method: SavedMethod, gateway: Gateway) -> Exchange[None]:
    return gateway.delete_method(method)


def _can_take(gateway: Gateway, amount: Money) -> bool:
    capabilities = gateway.capabilities
    return capabilities.supports_currency(amount.currency.code) and (
        capabilities.supports(Operation.AUTHORIZE) or capabilities.supports(Operation.SALE)
    )


def _fits(option: PaymentMethodOption, amount: Money) -> bool:
    low, high = option.min_amount, option.max_amount
    if low is not None and low.currency == amount.currency and amount < low:
        return False
    return not (high is not None and high.currency == amount.currency and amount > high)


def _page_of(gateway: Gateway) -> CheckoutKind:
    if gateway.capabilities.supports_checkout(CheckoutKind.HOSTED_PAGE):
        return CheckoutKind.HOSTED_PAGE
    raise InvalidRequest(
        f"gateway {gateway.name!r} has no hosted page: give the payment a payment_method"
    )


def _pay_transaction(transactions: Iterable[PaymentTransaction]) -> PaymentTransaction | None:
    made = [t for t in transactions if t.type in PAY_TYPES]
    return made[-1] if made else None


def _sum(tenders: Iterable[Tender], checkout: Checkout) -> Money:
    total = Money.zero(checkout.cart.currency)
    for payment, _ in tenders:
        total = total + payment.amount
    return total


def _refused(tenders: Iterable[Tender]) -> CheckoutFailure | None:
    """The first payment that can no longer go through, and why."""
    for payment, transaction in tenders:
        if transaction is not None and transaction.status in (
            TransactionStatus.DECLINED,
            TransactionStatus.FAILED,
        ):
            reason = transaction.decline_reason or transaction.failure or transaction.status
            return CheckoutFailure(
                payment_id=payment.id, reason=str(reason), message=transaction.message
            )
        if payment.status in GONE and transaction is not None:
            return CheckoutFailure(payment_id=payment.id, reason=str(payment.status))
        if payment.status in PAID and payment.authorized < payment.amount:
            return CheckoutFailure(
                payment_id=payment.id,
                reason="partially_approved",
                message=f"the gateway approved {payment.authorized} of {payment.amount}",
            )
    return None


def _all_paid(tenders: list[Tender], checkout: Checkout) -> bool:
    return (
        bool(tenders)
        and all(fully_paid(payment) for payment, _ in tenders)
        and _sum(tenders, checkout) == checkout.total
    )
