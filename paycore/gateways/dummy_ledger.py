"""The dummy sandbox's state: payments, their operations, and every rule on amounts.

Every change of state happens here, under the lock, and emits its webhook event.
A payment keeps integer totals (``amount_capturable``, ``amount_captured``,
``amount_refunded``) and the list of its operations: the first is the
``authorize`` or ``sale`` that created it, then ``capture``, ``void`` and ``refund``,
each with the ``reference`` the client sent (paycore's transaction id), so a client
can find out later whether an operation it is unsure of happened.

Gift cards are stored value on the same ledger. A card's ``funds`` are what it holds;
what its open authorizations reserve (``amount_capturable`` of its payments not yet
expired) is *held*, derived rather than stored, so a void, a final capture or an
authorization's expiry releases it without a step that could be missed. A capture or
a sale takes from the funds, a refund gives back to them. A card's currency is fixed
by the first payment approved on it (or when it is issued, if given then).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from attrs import Factory, asdict, define

from paycore.sandbox.base import SandboxError
from paycore.sandbox.state import SandboxState

__all__ = ["AUTHORIZATION_WINDOW", "GiftCard", "Ledger", "Operation", "Payment"]

AUTHORIZATION_WINDOW = 7 * 24 * 3600  # seconds an authorization may be captured or voided

Answer = tuple[int, dict[str, Any]]

_EVENT_TYPES = {
    "authorize": "payment.authorized",
    "sale": "payment.captured",
    "capture": "payment.captured",
    "void": "payment.voided",
    "refund": "payment.refunded",
}
_ID_PREFIXES = {
    "authorize": "auth",
    "sale": "sale",
    "capture": "cap",
    "void": "void",
    "refund": "re",
}


@define(kw_only=True)
class Operation:
    id: str
    type: str  # authorize, sale, capture, void, refund
    amount: int
    currency: str
    status: str  # succeeded, declined, requires_action, processing (new: being created)
    reference: str | None
    created: int
    decline_code: str | None = None

    def as_json(self, payment_id: str) -> dict[str, Any]:
        return {"object": "operation", "payment_id": payment_id, **asdict(self)}


@define(kw_only=True)
class Payment:
    id: str
    amount: int
    currency: str
    capture: bool
    method: str
    reference: str | None
    return_url: str | None
    action_url: str
    created: int
    status: str  # new, requires_action, processing, then as `_status` derives, or declined
    amount_capturable: int = 0
    amount_captured: int = 0
    amount_refunded: int = 0
    decline_code: str | None = None
    capture_before: int | None = None  # when the authorization expires
    gift_card: str | None = None  # the number of the gift card it was paid with
    operations: list[Operation] = Factory(list)

    def holds_at(self, now: int) -> int:
        """What this payment's authorization still reserves at ``now``."""
        expired = self.capture_before is not None and now > self.capture_before
        return 0 if expired else self.amount_capturable

    def as_json(self) -> dict[str, Any]:
        next_action = (
            {"type": "redirect", "url": self.action_url + self.id}
            if self.status == "requires_action"
            else None
        )
        return {
            "id": self.id,
            "object": "payment",
            "status": self.status,
            "amount": self.amount,
            "currency": self.currency,
            "capture": self.capture,
            "payment_method": {"type": self.method},
            "reference": self.reference,
            "amount_capturable": self.amount_capturable,
            "amount_captured": self.amount_captured,
            "amount_refunded": self.amount_refunded,
            "decline_code": self.decline_code,
            "capture_before": self.capture_before,
            "next_action": next_action,
            "return_url": self.return_url,
            "created": self.created,
            "operations": [op.as_json(self.id) for op in self.operations],
        }


@define(kw_only=True)
class GiftCard:
    token: str
    funds: int  # minor units on the card, what open authorizations hold included
    currency: str | None  # None until the first approved payment fixes it


class Ledger(SandboxState):
    """All payments of one sandbox; each method is one state transition."""

    def __init__(
        self,
        *,
        emit: Callable[[Mapping[str, Any]], None],
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(seed=seed, clock=clock)
        self._emit = emit
        self._payments: dict[str, Payment] = {}
        self._gift_cards: dict[str, GiftCard] = {}

    # -- reads ---------------------------------------------------------------------------

    def payment(self, payment_id: str) -> Payment | None:
        with self.lock:
            return self._payments.get(payment_id)

    def get(self, payment_id: str) -> dict[str, Any]:
        with self.lock:
            return self._payment(payment_id).as_json()

    def find(self, *, reference: str | None = None) -> list[dict[str, Any]]:
        """Payments created with ``reference`` (all when None), newest first."""
        with self.lock:
            found = [p for p in self._payments.values() if reference in (None, p.reference)]
            return [p.as_json() for p in reversed(found)]

    def gift_card(self, token: str) -> dict[str, Any] | None:
        """The gift card ``token``: its ``balance`` (what may be spent) and ``held``."""
        with self.lock:
            card = self._gift_cards.get(token)
            return None if card is None else self._gift_card_json(card)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "payments": [p.as_json() for p in self._payments.values()],
                "gift_cards": {t: self._gift_card_json(c) for t, c in self._gift_cards.items()},
            }

    # -- transitions ---------------------------------------------------------------------

    def issue_gift_card(
        self, *, balance: int, currency: str | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """A new gift card holding ``balance`` minor units; its number is made if not given."""
        with self.lock:
            token = token or self.ids.new("gc")
            if token in self._gift_cards:
                raise SandboxError(
                    409, "gift_card_exists", "a gift card with this number exists", param="token"
                )
            card = GiftCard(token=token, funds=balance, currency=currency)
            self._gift_cards[token] = card
            return self._gift_card_json(card)

    def create(
        self,
        *,
        amount: int,
        currency: str,
        capture: bool,
        method: str,
        outcome: str | None,
        reference: str | None,
        return_url: str | None,
        action_url: str,
        gift_card: str | None = None,
    ) -> Answer:
        """A new payment; ``outcome`` is what its method does.

        None approves; ``requires_action`` (3-D Secure) and ``processing`` (a bank
        transfer) wait for the customer or the bank; anything else is the code of a
        decline, answered 402. Paid with the ``gift_card`` of that number, the card's
        balance decides instead, under the lock.
        """
        with self.lock:
            if gift_card is not None:
                outcome = self._gift_card_decline(gift_card, amount, currency)
            waiting = outcome in ("requires_action", "processing")
            payment = Payment(
                id=self.ids.new("pay"),
                amount=amount,
                currency=currency,
                capture=capture,
                method=method,
                reference=reference,
                return_url=return_url,
                action_url=action_url,
                created=self.now(),
                status=outcome if waiting and outcome else "new",
                gift_card=gift_card if gift_card in self._gift_cards else None,
            )
            self._payments[payment.id] = payment
            kind = "sale" if capture else "authorize"
            operation = self._add_operation(payment, kind, amount, reference, payment.status)
            if not waiting:
                self._conclude(payment, operation, decline_code=outcome)
            if payment.status == "declined":
                what = "gift card" if payment.method == "gift_card" else "card"
                raise SandboxError(
                    402,
                    payment.decline_code or "card_declined",
                    f"the {what} was declined ({payment.decline_code})",
                    kind="card_error",
                    payment_id=payment.id,
                )
            return 201, payment.as_json()

    def complete_action(self, payment_id: str, *, approved: bool) -> Payment:
        """The customer passed (or failed) 3-D Secure."""
        with self.lock:
            payment = self._payment(payment_id)
            if payment.status != "requires_action":
                raise SandboxError(409, "invalid_state", f"the payment is {payment.status}")
            decline_code = None if approved else "authentication_failed"
            self._conclude(payment, payment.operations[0], decline_code=decline_code)
            return payment

    def settle(self, payment_id: str, *, succeeded: bool) -> dict[str, Any]:
        """The bank transfer arrived (or never will)."""
        with self.lock:
            payment = self._payment(payment_id)
            if payment.status != "processing":
                raise SandboxError(409, "invalid_state", f"the payment is {payment.status}")
            decline_code = None if succeeded else "transfer_failed"
            self._conclude(payment, payment.operations[0], decline_code=decline_code)
            return payment.as_json()

    def capture(
        self, payment_id: str, amount: int, currency: str, final: bool, reference: str | None
    ) -> Answer:
        with self.lock:
            payment = self._payment(payment_id)
            _check_currency(payment, currency)
            if not payment.amount_capturable:
                raise _state_error(payment, "captured")
            self._check_not_expired(payment)
            if amount > payment.amount_capturable:
                raise _too_large("capture", amount, payment.amount_capturable)
            payment.amount_captured += amount
            payment.amount_capturable = 0 if final else payment.amount_capturable - amount
            self._move_funds(payment, -amount)
            return self._succeeded(payment, "capture", amount, reference)

    def void(self, payment_id: str, reference: str | None) -> Answer:
        with self.lock:
            payment = self._payment(payment_id)
            if not payment.amount_capturable:
                raise _state_error(payment, "voided")
            self._check_not_expired(payment)
            released, payment.amount_capturable = payment.amount_capturable, 0
            return self._succeeded(payment, "void", released, reference)

    def refund(self, payment_id: str, amount: int, currency: str, reference: str | None) -> Answer:
        with self.lock:
            payment = self._payment(payment_id)
            _check_currency(payment, currency)
            refundable = payment.amount_captured - payment.amount_refunded
            if payment.amount_captured == 0:
                raise _state_error(payment, "refunded")
            if amount > refundable:
                raise _too_large("refund", amount, refundable)
            payment.amount_refunded += amount
            self._move_funds(payment, amount)
            return self._succeeded(payment, "refund", amount, reference)

    # -- internals -----------------------------------------------------------------------

    def _payment(self, payment_id: str) -> Payment:
        payment = self._payments.get(payment_id)
        if payment is None:
            raise SandboxError(
                404, "resource_missing", f"no payment {payment_id[:64]!r}", param="id"
            )
        return payment

    def _check_not_expired(self, payment: Payment) -> None:
        if payment.capture_before is not None and self.now() > payment.capture_before:
            raise SandboxError(
                409,
                "authorization_expired",
                f"the authorization expired at {payment.capture_before}; nothing is held any more",
            )

    def _add_operation(
        self, payment: Payment, kind: str, amount: int, reference: str | None, status: str
    ) -> Operation:
        operation = Operation(
            id=self.ids.new(_ID_PREFIXES[kind]),
            type=kind,
            amount=amount,
            currency=payment.currency,
            status=status,
            reference=reference,
            created=self.now(),
        )
        payment.operations.append(operation)
        return operation

    def _conclude(
        self, payment: Payment, operation: Operation, *, decline_code: str | None
    ) -> None:
        """The payment's first operation reached its outcome."""
        if decline_code is not None:
            payment.status = operation.status = "declined"
            payment.decline_code = operation.decline_code = decline_code
            self._announce("payment.declined", payment, operation)
            return
        operation.status = "succeeded"
        if payment.gift_card is not None:
            card = self._gift_cards[payment.gift_card]
            card.currency = card.currency or payment.currency
        if payment.capture:
            payment.amount_captured = payment.amount
            self._move_funds(payment, -payment.amount)
        else:
            payment.amount_capturable = payment.amount
            payment.capture_before = self.now() + AUTHORIZATION_WINDOW
        payment.status = _status(payment)
        self._announce(_EVENT_TYPES[operation.type], payment, operation)

    def _succeeded(self, payment: Payment, kind: str, amount: int, reference: str | None) -> Answer:
        operation = self._add_operation(payment, kind, amount, reference, "succeeded")
        payment.status = _status(payment)
        self._announce(_EVENT_TYPES[kind], payment, operation)
        return 201, operation.as_json(payment.id)

    def _gift_card_decline(self, token: str, amount: int, currency: str) -> str | None:
        """Why the gift card ``token`` cannot pay ``amount``, or None when it can."""
        card = self._gift_cards.get(token)
        if card is None:
            return "incorrect_number"
        if card.currency not in (None, currency):
            return "currency_not_supported"
        if amount > card.funds - self._held(card):
            return "insufficient_funds"
        return None

    def _held(self, card: GiftCard) -> int:
        now = self.now()
        paid_with = (p for p in self._payments.values() if p.gift_card == card.token)
        return sum(payment.holds_at(now) for payment in paid_with)

    def _move_funds(self, payment: Payment, amount: int) -> None:
        """Add ``amount`` (negative: take it) to the gift card ``payment`` was paid with."""
        if payment.gift_card is not None:
            self._gift_cards[payment.gift_card].funds += amount

    def _gift_card_json(self, card: GiftCard) -> dict[str, Any]:
        held = self._held(card)
        return {
            "object": "gift_card",
            "token": card.token,
            "currency": card.currency,
            "balance": card.funds - held,
            "held": held,
        }

    def _announce(self, event_type: str, payment: Payment, operation: Operation) -> None:
        summary = payment.as_json()
        del summary["operations"], summary["next_action"]
        self._emit(
            {
                "id": self.ids.new("evt"),
                "object": "event",
                "type": event_type,
                "created": self.now(),
                "data": {"payment": summary, "operation": operation.as_json(payment.id)},
            }
        )


def _status(payment: Payment) -> str:
    """The status an approved payment's totals imply."""
    if payment.amount_refunded:
        fully = payment.amount_refunded == payment.amount_captured
        return "refunded" if fully and not payment.amount_capturable else "partially_refunded"
    if payment.amount_captured:
        return "partially_captured" if payment.amount_capturable else "captured"
    return "authorized" if payment.amount_capturable else "voided"


def _check_currency(payment: Payment, currency: str) -> None:
    if currency != payment.currency:
        raise SandboxError(
            400,
            "currency_mismatch",
            f"the payment is in {payment.currency}, not {currency}",
            param="currency",
        )


def _state_error(payment: Payment, wanted: str) -> SandboxError:
    return SandboxError(
        409, "invalid_state", f"a payment that is {payment.status} cannot be {wanted}"
    )


def _too_large(operation: str, amount: int, available: int) -> SandboxError:
    return SandboxError(
        400,
        "amount_too_large",
        f"cannot {operation} {amount}: only {available} remains",
        param="amount",
    )
