"""The WooshPay sandbox's whole state: `PaymentsState` plus products, prices, checkout
sessions and payment links.

A checkout session creates its payment intent at once; the hosted page pays it. The
session is ``complete`` once the intent is authorized (``payment_status`` ``paid`` when
the money was taken, ``unpaid`` while only authorized [PROPOSAL]) and ``expired`` when
expired through the API or past ``expires_at`` (its intent is then canceled,
``abandoned``). A payment link makes a new session for each visit.
"""

from __future__ import annotations

from typing import Any

from attrs import Factory, asdict, evolve, frozen

from paycore.sandbox.base import SandboxError
from paycore.sandbox.state import locked
from paycore_wooshpay.sandbox_events import found, missing
from paycore_wooshpay.sandbox_objects import (
    CheckoutSession,
    LineItem,
    PaymentIntent,
    PaymentLink,
    Price,
    Product,
)
from paycore_wooshpay.sandbox_params import MAX_AMOUNT, invalid
from paycore_wooshpay.sandbox_state import CANCELABLE, CONFIRMABLE, NewMethod, PaymentsState

__all__ = ["IntentData", "ItemSpec", "SessionSpec", "WooshPayState"]

SESSION_LIFETIME = 24 * 3600  # seconds, the longest and the default
MIN_SESSION_LIFETIME = 30 * 60


@frozen(kw_only=True)
class ItemSpec:
    """A line item: a ``price`` id, or inline price data (currency, amount, name)."""

    quantity: int
    price: str | None = None
    currency: str | None = None
    unit_amount: int | None = None
    name: str | None = None


@frozen(kw_only=True)
class IntentData:
    """``payment_intent_data``: how the session's payment intent is made."""

    capture_method: str = "automatic"
    metadata: dict[str, str] = Factory(dict)
    setup_future_usage: str | None = None
    description: str | None = None


@frozen(kw_only=True)
class SessionSpec:
    line_items: list[ItemSpec]
    success_url: str | None
    cancel_url: str | None = None
    payment_method_types: list[str] = Factory(lambda: ["card"])
    client_reference_id: str | None = None
    customer: str | None = None
    customer_email: str | None = None
    metadata: dict[str, str] = Factory(dict)
    intent_data: IntentData = Factory(IntentData)
    expires_at: int | None = None


class WooshPayState(PaymentsState):
    """Everything one WooshPay sandbox holds; ``checkout_events`` emits session events."""

    def __init__(self, *, checkout_events: bool = False, **base: Any) -> None:
        super().__init__(**base)
        self.checkout_events = checkout_events
        self.products: dict[str, Product] = {}
        self.prices: dict[str, Price] = {}
        self.sessions: dict[str, CheckoutSession] = {}
        self.links: dict[str, PaymentLink] = {}

    @locked
    def snapshot(self) -> dict[str, Any]:
        return {
            **super().snapshot(),
            "checkout_sessions": [s.as_json() for s in self.sessions.values()],
            "products": [product.as_json() for product in self.products.values()],
            "prices": [price.as_json() for price in self.prices.values()],
            "payment_links": [link.as_json() for link in self.links.values()],
        }

    # -- products and prices -------------------------------------------------------------

    @locked
    def create_product(
        self, *, name: str, description: str | None, metadata: dict[str, str]
    ) -> dict[str, Any]:
        product = Product(
            id=self.ids.new("prod"),
            name=name,
            created=self.ms(),
            description=description,
            metadata=metadata,
        )
        self.products[product.id] = product
        return product.as_json()

    @locked
    def product(self, product_id: str) -> dict[str, Any]:
        return found(self.products, product_id, "product").as_json()

    @locked
    def create_price(self, *, product: str, unit_amount: int, currency: str) -> dict[str, Any]:
        found(self.products, product, "product", "product")
        price = Price(
            id=self.ids.new("price"),
            product=product,
            unit_amount=unit_amount,
            currency=currency,
            created=self.ms(),
        )
        self.prices[price.id] = price
        return price.as_json()

    @locked
    def price(self, price_id: str) -> dict[str, Any]:
        return found(self.prices, price_id, "price").as_json()

    # -- checkout sessions ---------------------------------------------------------------

    @locked
    def create_session(self, spec: SessionSpec, base_url: str) -> dict[str, Any]:
        return self._new_session(spec, base_url).as_json()

    @locked
    def session(self, session_id: str) -> dict[str, Any]:
        return self._session(session_id).as_json()

    @locked
    def session_list(self, payment_intent: str | None, status: str | None) -> list[dict[str, Any]]:
        return [
            session.as_json()
            for session in reversed(self.sessions.values())
            if payment_intent in (None, session.payment_intent) and status in (None, session.status)
        ]

    @locked
    def session_line_items(self, session_id: str) -> list[dict[str, Any]]:
        return [item.as_json() for item in self._session(session_id).line_items]

    @locked
    def expire_session(self, session_id: str) -> dict[str, Any]:
        session = self._session(session_id)
        if session.status != "open":
            raise SandboxError(
                400,
                "checkout_session_unexpected_state",
                f"Only an open Checkout Session can be expired; this one is {session.status}.",
            )
        self._expire(session)
        return session.as_json()

    @locked
    def session_page(self, session_id: str) -> tuple[CheckoutSession, PaymentIntent]:
        """Copies of a session and its intent, for the hosted page to show."""
        session = self._session(session_id)
        return evolve(session), evolve(self.intents[session.payment_intent])

    @locked
    def pay_session(self, session_id: str, method: NewMethod, base_url: str) -> PaymentIntent:
        """The customer pays on the hosted page; a copy of the intent (maybe declined)."""
        session = self._session(session_id)
        if session.status != "open":
            status = 410 if session.status == "expired" else 409
            raise SandboxError(status, "checkout_session_unexpected_state", session.status)
        pi = self.intents[session.payment_intent]
        if method.type not in pi.payment_method_types or pi.status not in CONFIRMABLE:
            raise SandboxError(400, "payment_method_unactivated", "This method is not offered.")
        try:
            self._confirm(pi, self._new_method(method), off_session=False, base_url=base_url)
        except SandboxError as error:
            if error.status_code != 402:
                raise
        return evolve(pi)

    def _new_session(
        self, spec: SessionSpec, base_url: str, payment_link: str | None = None
    ) -> CheckoutSession:
        items = self._line_items(spec.line_items)
        now = self.now()
        expires_at = spec.expires_at or now + SESSION_LIFETIME
        if not now + MIN_SESSION_LIFETIME <= expires_at <= now + SESSION_LIFETIME:
            raise invalid(
                "parameter_invalid_integer",
                "expires_at",
                "expires_at must be 30 minutes to 24 hours from now (Unix seconds).",
            )
        customer = self._customer(spec.customer, "customer").id if spec.customer else None
        data = spec.intent_data
        if customer is None and data.setup_future_usage:
            # The method is saved for a customer: one is made for the buyer.
            customer = self._new_customer(email=spec.customer_email).id
        pi = self._new_intent(
            amount=sum(item.amount for item in items),
            currency=items[0].price.currency,
            capture_method=data.capture_method,
            customer=customer,
            description=data.description,
            metadata=data.metadata,
            payment_method_types=spec.payment_method_types,
            setup_future_usage=data.setup_future_usage,
        )
        session_id = self.ids.new("cs_test")
        session = CheckoutSession(
            id=session_id,
            url=f"{base_url}/pay/{session_id}",
            created=self.ms(),
            expires_at=expires_at,
            payment_intent=pi.id,
            line_items=items,
            currency=pi.currency,
            success_url=spec.success_url,
            cancel_url=spec.cancel_url,
            client_reference_id=spec.client_reference_id,
            customer=customer,
            customer_email=spec.customer_email,
            metadata=spec.metadata,
            payment_method_types=spec.payment_method_types,
            payment_link=payment_link,
        )
        pi.checkout_session = session.id
        self.sessions[session.id] = session
        self._due(expires_at, "cs", session.id)
        self._announce("payment_intent.created", pi.as_json())
        return session

    def _line_items(self, specs: list[ItemSpec]) -> list[LineItem]:
        items = []
        for index, spec in enumerate(specs):
            if spec.price is not None:
                price = self.prices.get(spec.price)
                if price is None or not price.active:
                    raise missing("price", spec.price, f"line_items[{index}][price]")
                name = self.products[price.product].name
            else:
                assert spec.currency and spec.unit_amount and spec.name  # checked by the route
                price = Price(
                    id=self.ids.new("price"),
                    product=self.ids.new("prod"),
                    unit_amount=spec.unit_amount,
                    currency=spec.currency,
                    created=self.ms(),
                    active=False,  # made for this item only
                )
                name = spec.name
            items.append(
                LineItem(
                    id=self.ids.new("li"), price=price, description=name, quantity=spec.quantity
                )
            )
        if len({item.price.currency for item in items}) > 1:
            raise invalid(
                "parameter_invalid_string", "line_items", "All line items must share one currency."
            )
        if sum(item.amount for item in items) > MAX_AMOUNT:
            raise invalid(
                "amount_too_large", "line_items", f"The total must be at most {MAX_AMOUNT}."
            )
        return items

    def _session(self, session_id: str) -> CheckoutSession:
        return found(self.sessions, session_id, "checkout session")

    def _expire(self, session: CheckoutSession) -> None:
        session.status = "expired"
        pi = self.intents[session.payment_intent]
        if pi.status in CANCELABLE:
            self._cancel(pi, "abandoned")
        if self.checkout_events:
            self._announce("checkout.session.expired", session.as_json())

    def _lapse(self, kind: str, object_id: str) -> None:
        session = self.sessions.get(object_id) if kind == "cs" else None
        if session is not None and session.status == "open":
            self._expire(session)
        super()._lapse(kind, object_id)

    def _authorized(self, pi: PaymentIntent) -> None:
        session = self.sessions.get(pi.checkout_session or "")
        if session is None or session.status != "open":
            return
        session.status = "complete"
        session.payment_status = "paid" if pi.status == "succeeded" else "unpaid"
        if self.checkout_events:
            self._announce("checkout.session.completed", session.as_json())

    def _captured(self, pi: PaymentIntent) -> None:
        session = self.sessions.get(pi.checkout_session or "")
        if session is not None:
            session.payment_status = "paid"

    def _check_cancelable(self, pi: PaymentIntent) -> None:
        session = self.sessions.get(pi.checkout_session or "")
        if session is not None and session.status == "open":
            raise SandboxError(
                400,
                "payment_intent_unexpected_state",
                "This PaymentIntent belongs to an open Checkout Session: expire the session.",
                payment_intent=pi.as_json(),
            )

    # -- payment links ---------------------------------------------------------------------

    @locked
    def create_link(
        self,
        *,
        line_items: list[ItemSpec],
        metadata: dict[str, str],
        intent_data: IntentData,
        redirect_url: str | None,
        payment_method_types: list[str],
        base_url: str,
    ) -> dict[str, Any]:
        items = self._line_items(line_items)
        link_id = self.ids.new("plink")
        after: dict[str, Any] = (
            {"type": "redirect", "redirect": {"url": redirect_url}}
            if redirect_url
            else {"type": "hosted_confirmation"}
        )
        link = PaymentLink(
            id=link_id,
            url=f"{base_url}/link/{link_id}",
            created=self.ms(),
            line_items=items,
            metadata=metadata,
            payment_intent_data=asdict(intent_data),
            after_completion=after,
            payment_method_types=payment_method_types,
        )
        self.links[link.id] = link
        return link.as_json()

    @locked
    def link(self, link_id: str) -> dict[str, Any]:
        return self._link(link_id).as_json()

    @locked
    def update_link(
        self, link_id: str, *, active: bool | None, metadata: dict[str, str]
    ) -> dict[str, Any]:
        link = self._link(link_id)
        link.active = link.active if active is None else active
        link.metadata = {**link.metadata, **metadata}
        return link.as_json()

    @locked
    def link_session(self, link_id: str, base_url: str) -> CheckoutSession:
        """A visit to the link: a new session for it (a copy)."""
        link = self._link(link_id)
        if not link.active:
            raise SandboxError(
                410, "payment_link_inactive", "This payment link is no longer active."
            )
        redirect = link.after_completion.get("redirect", {}).get("url")
        spec = SessionSpec(
            line_items=[
                ItemSpec(price=item.price.id, quantity=item.quantity) for item in link.line_items
            ],
            success_url=redirect,
            payment_method_types=link.payment_method_types,
            metadata=link.metadata,
            intent_data=IntentData(**link.payment_intent_data),
        )
        return evolve(self._new_session(spec, base_url, payment_link=link.id))

    def _link(self, link_id: str) -> PaymentLink:
        return found(self.links, link_id, "payment link")
