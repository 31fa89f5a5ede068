"""The WooshPay sandbox's payments: payment intents and refunds, on the vault. Every
change of the sandbox's state happens in these state classes, under the lock, and emits
its events; `WooshPayState` (checkout sessions, payment links) builds on this one.

A payment intent moves ``requires_payment_method`` → ``requires_confirmation`` →
``requires_action`` → ``requires_capture`` → ``succeeded``, or ``canceled``; a decline
sends it back to ``requires_payment_method`` with ``last_payment_error``, answered 402.
An authorization not captured within `AUTHORIZATION_WINDOW` is canceled
(``cancellation_reason: "automatic"``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from attrs import Factory, evolve, frozen

from paycore.sandbox.base import SandboxError
from paycore.sandbox.state import locked
from paycore_wooshpay.sandbox_cards import CHALLENGE, DECLINES, Decline
from paycore_wooshpay.sandbox_events import found
from paycore_wooshpay.sandbox_objects import PaymentIntent, PaymentMethod, Refund
from paycore_wooshpay.sandbox_params import invalid
from paycore_wooshpay.sandbox_vault import Answer, NewMethod, VaultState

__all__ = ["AUTHORIZATION_WINDOW", "Answer", "IntentSpec", "NewMethod", "PaymentsState"]

AUTHORIZATION_WINDOW = 7 * 24 * 3600  # seconds an authorization is held

CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
CANCELABLE = (*CONFIRMABLE, "requires_capture")

AUTHENTICATION_FAILED = Decline(
    "payment_intent_authentication_failure",
    None,
    "The customer did not complete the authentication; try again or use another method.",
)


@frozen(kw_only=True)
class IntentSpec:
    """What creating a payment intent asks for, checked (see the sandbox's routes)."""

    amount: int
    currency: str
    capture_method: str = "automatic"
    confirm: bool = False
    payment_method: str | None = None
    new_method: NewMethod | None = None
    payment_method_types: list[str] | None = None
    customer: str | None = None
    off_session: bool = False
    setup_future_usage: str | None = None
    return_url: str | None = None
    description: str | None = None
    merchant_order_id: str | None = None
    metadata: dict[str, str] = Factory(dict)
    three_d_secure: str | None = None
    shipping: dict[str, Any] | None = None


class PaymentsState(VaultState):
    """Payment intents and refunds (and the vault) of one sandbox."""

    def __init__(self, *, refunds_pending: bool = False, **base: Any) -> None:
        super().__init__(**base)
        self.refunds_pending = refunds_pending
        self.intents: dict[str, PaymentIntent] = {}
        self.refunds: dict[str, Refund] = {}

    @locked
    def snapshot(self) -> dict[str, Any]:
        return {
            "payment_intents": [pi.as_json() for pi in self.intents.values()],
            "refunds": [refund.as_json() for refund in self.refunds.values()],
            "customers": [customer.as_json() for customer in self.customers.values()],
            "payment_methods": [pm.as_json() for pm in self.methods.values()],
            "webhook_endpoints": [endpoint.as_json() for endpoint in self.endpoints.values()],
        }

    # -- payment intents ---------------------------------------------------------------

    @locked
    def create_intent(self, spec: IntentSpec, base_url: str) -> Answer:
        customer = self._customer(spec.customer, "customer").id if spec.customer else None
        pm: PaymentMethod | None = None
        if spec.new_method is not None:
            pm = self._new_method(spec.new_method)
        elif spec.payment_method is not None:
            pm = self._method(spec.payment_method, "payment_method")
            self._check_usable(pm, customer)
        types = spec.payment_method_types or [pm.type if pm is not None else "card"]
        if pm is not None and pm.type not in types:
            raise invalid(
                "payment_method_unactivated",
                "payment_method_types",
                f"The payment method type {pm.type!r} is not in payment_method_types.",
            )
        if spec.confirm and pm is None:
            raise invalid(
                "parameter_missing",
                "payment_method",
                "Confirming needs payment_method or payment_method_data.",
            )
        options = {"card": {"request_three_d_secure": spec.three_d_secure or "auto"}}
        pi = self._new_intent(
            amount=spec.amount,
            currency=spec.currency,
            capture_method=spec.capture_method,
            customer=customer,
            description=spec.description,
            merchant_order_id=spec.merchant_order_id,
            metadata=spec.metadata,
            payment_method_types=types,
            payment_method_options=options if "card" in types else {},
            return_url=spec.return_url,
            shipping=spec.shipping,
            setup_future_usage=spec.setup_future_usage,
        )
        if pm is not None:
            self.methods.setdefault(pm.id, pm)
            pi.payment_method, pi.status = pm.id, "requires_confirmation"
        self._announce("payment_intent.created", pi.as_json())
        if spec.confirm and pm is not None:
            return self._confirm(pi, pm, off_session=spec.off_session, base_url=base_url)
        return 200, pi.as_json()

    @locked
    def intent(self, pi_id: str) -> dict[str, Any]:
        return self._intent(pi_id).as_json()

    @locked
    def intent_list(
        self, customer: str | None, created: Callable[[int], bool]
    ) -> list[dict[str, Any]]:
        return [
            pi.as_json()
            for pi in reversed(self.intents.values())
            if customer in (None, pi.customer) and created(pi.created)
        ]

    @locked
    def intent_search(self, clauses: list[tuple[str, str]]) -> list[dict[str, Any]]:
        def matches(pi: PaymentIntent, field: str, value: str) -> bool:
            if field.startswith("metadata."):
                return pi.metadata.get(field.removeprefix("metadata.")) == value
            return bool(getattr(pi, field) == value)

        return [
            pi.as_json()
            for pi in reversed(self.intents.values())
            if all(matches(pi, field, value) for field, value in clauses)
        ]

    @locked
    def confirm(
        self,
        pi_id: str,
        *,
        payment_method: str | None,
        return_url: str | None,
        off_session: bool,
        base_url: str,
    ) -> Answer:
        pi = self._intent(pi_id)
        if pi.status not in CONFIRMABLE:
            raise _unexpected(pi, "confirm")
        if payment_method is not None:
            pm = self._method(payment_method, "payment_method")
            self._check_usable(pm, pi.customer)
        elif pi.payment_method is not None:
            pm = self.methods[pi.payment_method]
        else:
            raise invalid(
                "parameter_missing", "payment_method", "The PaymentIntent has no payment method."
            )
        pi.return_url = return_url or pi.return_url
        return self._confirm(pi, pm, off_session=off_session, base_url=base_url)

    @locked
    def complete_action(self, pi_id: str, *, approved: bool) -> PaymentIntent:
        """The customer passed (or failed) 3-D Secure or the wallet; a copy of the intent."""
        pi = self._intent(pi_id)
        if pi.status != "requires_action" or pi.payment_method is None:
            raise SandboxError(
                409, "payment_intent_unexpected_state", f"The payment is {pi.status}."
            )
        pm = self.methods[pi.payment_method]
        try:
            if not approved:
                raise self._fail(pi, pm, AUTHENTICATION_FAILED)
            self._conclude(pi, pm)
        except SandboxError as error:
            if error.status_code != 402:
                raise
        return evolve(pi)

    @locked
    def capture(self, pi_id: str, amount: int | None) -> Answer:
        pi = self._intent(pi_id)
        if pi.status != "requires_capture":
            raise _unexpected(pi, "capture")
        amount = pi.amount_capturable if amount is None else amount
        if amount > pi.amount_capturable:
            raise invalid(
                "amount_too_large",
                "amount_to_capture",
                f"amount_to_capture {amount} exceeds the {pi.amount_capturable} authorized.",
            )
        pi.status, pi.capture_before = "succeeded", None
        pi.amount_received, pi.amount_capturable = amount, 0
        self._announce("payment_intent.succeeded", pi.as_json())
        self._captured(pi)
        return 200, pi.as_json()

    @locked
    def cancel(self, pi_id: str, reason: str | None) -> Answer:
        pi = self._intent(pi_id)
        if pi.status not in CANCELABLE:
            raise _unexpected(pi, "cancel")
        self._check_cancelable(pi)
        self._cancel(pi, reason)
        return 200, pi.as_json()

    def _new_intent(self, **fields: Any) -> PaymentIntent:
        pi_id = self.ids.numeric("pi")
        client_secret = f"{pi_id}_{self.ids.new('secret')}"
        pi = PaymentIntent(id=pi_id, client_secret=client_secret, created=self.ms(), **fields)
        self.intents[pi.id] = pi
        return pi

    def _intent(self, pi_id: str, param: str | None = None) -> PaymentIntent:
        return found(self.intents, pi_id, "PaymentIntent", param)

    def _confirm(
        self, pi: PaymentIntent, pm: PaymentMethod, *, off_session: bool, base_url: str
    ) -> Answer:
        self.methods.setdefault(pm.id, pm)
        pi.payment_method, pi.next_action, pi.last_payment_error = pm.id, None, None
        three_d_secure = pi.payment_method_options.get("card", {}).get("request_three_d_secure")
        asks = pm.outcome == CHALLENGE or (
            pm.card is not None and three_d_secure in ("any", "challenge")
        )
        if asks and off_session:
            raise self._fail(pi, pm, DECLINES["authentication_required"])
        if not asks:
            return self._conclude(pi, pm)
        pi.status = "requires_action"
        if pm.card is not None:
            redirect = {"url": f"{base_url}/3ds/{pi.id}", "return_url": pi.return_url}
            pi.next_action = {"type": "challenge_redirect", "challenge_redirect": redirect}
        else:
            redirect = {"url": f"{base_url}/wallet/{pi.id}", "return_url": pi.return_url}
            pi.next_action = {"type": "redirect_to_url", "redirect_to_url": redirect}
        self._announce("payment_intent.requires_action", pi.as_json())
        return 200, pi.as_json()

    def _conclude(self, pi: PaymentIntent, pm: PaymentMethod) -> Answer:
        """The payment goes to the bank: authorized, or declined (raised, 402)."""
        if pm.outcome in DECLINES:
            raise self._fail(pi, pm, DECLINES[pm.outcome])
        pi.next_action, pi.latest_charge = None, self.ids.new("ch")
        if pi.capture_method == "manual":
            pi.status, pi.amount_capturable = "requires_capture", pi.amount
            pi.capture_before = self.clock() + AUTHORIZATION_WINDOW
            self._due(pi.capture_before, "pi", pi.id)
        else:
            pi.status, pi.amount_received = "succeeded", pi.amount
        if pi.setup_future_usage and pi.customer and pm.customer is None and not pm.detached:
            pm.customer = pi.customer  # saved for later, as asked
        event = "succeeded" if pi.status == "succeeded" else "amount_capturable_updated"
        self._announce(f"payment_intent.{event}", pi.as_json())
        self._authorized(pi)
        return 200, pi.as_json()

    def _fail(self, pi: PaymentIntent, pm: PaymentMethod, decline: Decline) -> SandboxError:
        """The payment was declined: the intent waits for another method. The 402 to raise."""
        error = {
            "type": "card_error",
            "code": decline.code,
            "decline_code": decline.decline_code,
            "message": decline.message,
            "payment_method": pm.as_json(),
        }
        pi.status, pi.payment_method, pi.next_action = "requires_payment_method", None, None
        pi.last_payment_error = error
        self._announce("payment_intent.payment_failed", pi.as_json())
        details = {"decline_code": decline.decline_code} if decline.decline_code else {}
        return SandboxError(
            402,
            decline.code,
            decline.message,
            kind="card_error",
            **details,
            payment_method=pm.as_json(),
            payment_intent=pi.as_json(),
        )

    def _cancel(self, pi: PaymentIntent, reason: str | None) -> None:
        pi.status, pi.cancellation_reason, pi.canceled_at = "canceled", reason, self.ms()
        pi.amount_capturable, pi.next_action, pi.capture_before = 0, None, None
        self._announce("payment_intent.canceled", pi.as_json())

    def _lapse(self, kind: str, object_id: str) -> None:
        pi = self.intents.get(object_id) if kind == "pi" else None
        if pi is not None and pi.status == "requires_capture" and pi.capture_before is not None:
            self._cancel(pi, "automatic")

    # What a checkout session paid by the intent hears of (see `WooshPayState`).

    def _authorized(self, pi: PaymentIntent) -> None:
        """The intent was authorized (or paid)."""

    def _captured(self, pi: PaymentIntent) -> None:
        """The intent's authorization was captured."""

    def _check_cancelable(self, pi: PaymentIntent) -> None:
        """Raise when the intent may not be canceled through the API."""

    # -- refunds -----------------------------------------------------------------------

    @locked
    def create_refund(
        self,
        *,
        payment_intent: str,
        amount: int | None,
        reason: str | None,
        metadata: dict[str, str],
    ) -> Answer:
        pi = self._intent(payment_intent, "payment_intent")
        if pi.status != "succeeded":
            raise _unexpected(pi, "refund")
        remaining = pi.amount_received - sum(
            r.amount
            for r in self.refunds.values()
            if r.payment_intent == pi.id and r.status != "failed"
        )
        if remaining == 0:
            raise SandboxError(
                400,
                "charge_already_refunded",
                f"The PaymentIntent {pi.id} has already been refunded in full.",
                param="payment_intent",
            )
        amount = remaining if amount is None else amount
        if amount > remaining:
            raise invalid(
                "amount_too_large",
                "amount",
                f"Refund amount ({amount}) is greater than what remains to refund ({remaining}).",
            )
        refund = Refund(
            id=self.ids.new("re"),
            amount=amount,
            currency=pi.currency,
            payment_intent=pi.id,
            charge=pi.latest_charge,
            created=self.ms(),
            status="pending" if self.refunds_pending else "succeeded",
            reason=reason,
            metadata=metadata,
        )
        self.refunds[refund.id] = refund
        self._announce("charge.refund.updated", refund.as_json())
        return 200, refund.as_json()

    @locked
    def refund(self, refund_id: str) -> dict[str, Any]:
        return self._refund(refund_id).as_json()

    @locked
    def refund_list(self, payment_intent: str | None) -> list[dict[str, Any]]:
        return [
            refund.as_json()
            for refund in reversed(self.refunds.values())
            if payment_intent in (None, refund.payment_intent)
        ]

    @locked
    def settle_refund(
        self, refund_id: str, *, succeeded: bool, failure_reason: str | None
    ) -> dict[str, Any]:
        """A pending refund reached the bank (or did not)."""
        refund = self._refund(refund_id)
        if refund.status != "pending":
            raise SandboxError(
                400, "refund_unexpected_state", f"The refund is already {refund.status}."
            )
        refund.status = "succeeded" if succeeded else "failed"
        refund.failure_reason = None if succeeded else failure_reason or "unknown"
        self._announce("charge.refund.updated", refund.as_json())
        return refund.as_json()

    def _refund(self, refund_id: str) -> Refund:
        return found(self.refunds, refund_id, "refund")


def _unexpected(pi: PaymentIntent, action: str) -> SandboxError:
    return SandboxError(
        400,
        "payment_intent_unexpected_state",
        f"You cannot {action} this PaymentIntent because it has a status of {pi.status}.",
        payment_intent=pi.as_json(),
    )
