"""The WooshPay sandbox's vault: payment methods and the customers they are saved for.

A payment method keeps what its card's number told (brand, last four digits, the test
outcome), never the number. Ready-made ids (``pm_card_visa`` …) are copied into a new
``pm_…`` wherever they are used; a method detached from its customer cannot be used
with a customer again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from attrs import Factory, evolve, frozen

from paycore.sandbox.base import SandboxError
from paycore.sandbox.state import locked
from paycore_wooshpay.sandbox_cards import READY_MADE, Card, card_from_number
from paycore_wooshpay.sandbox_events import StateBase, found
from paycore_wooshpay.sandbox_objects import Customer, PaymentMethod

__all__ = ["NewMethod", "VaultState"]

Answer = tuple[int, dict[str, Any]]


@frozen(kw_only=True)
class NewMethod:
    """A payment method to create: a card (already classified) or another type."""

    type: str
    card: Card | None = None
    billing_details: dict[str, Any] = Factory(dict)
    metadata: dict[str, str] = Factory(dict)


class VaultState(StateBase):
    """Payment methods and customers; `PaymentsState` builds on it."""

    def __init__(self, **base: Any) -> None:
        super().__init__(**base)
        self.methods: dict[str, PaymentMethod] = {}
        self.customers: dict[str, Customer] = {}

    @locked
    def create_method(self, method: NewMethod) -> dict[str, Any]:
        pm = self._new_method(method)
        self.methods[pm.id] = pm
        return pm.as_json()

    @locked
    def method(self, pm_id: str) -> dict[str, Any]:
        pm = self._method(pm_id)
        self.methods.setdefault(pm.id, pm)
        return pm.as_json()

    @locked
    def create_customer(
        self,
        *,
        email: str | None,
        name: str | None,
        description: str | None,
        metadata: dict[str, str],
    ) -> dict[str, Any]:
        customer = self._new_customer(email=email, name=name, description=description)
        customer.metadata = metadata
        return customer.as_json()

    @locked
    def customer(self, customer_id: str) -> dict[str, Any]:
        return self._customer(customer_id).as_json()

    @locked
    def customer_methods(self, customer_id: str, method_type: str | None) -> list[dict[str, Any]]:
        customer = self._customer(customer_id)
        return [
            pm.as_json()
            for pm in reversed(self.methods.values())
            if pm.customer == customer.id and method_type in (None, pm.type)
        ]

    @locked
    def attach(self, pm_id: str, customer_id: str) -> Answer:
        """Attach a method (a ready-made id: a new copy of it) to a customer."""
        pm = self._method(pm_id)
        customer = self._customer(customer_id, param="customer")
        if pm.detached or pm.customer not in (None, customer.id):
            raise _method_state(
                "The PaymentMethod was detached, or belongs to another customer; "
                "create a new one to attach it"
            )
        pm.customer = customer.id
        self.methods.setdefault(pm.id, pm)
        return 200, pm.as_json()

    @locked
    def detach(self, pm_id: str) -> Answer:
        pm = self._method(pm_id)
        if pm.customer is None:
            raise _method_state("The PaymentMethod is not attached to a customer.")
        pm.customer, pm.detached = None, True
        return 200, pm.as_json()

    def _new_method(self, method: NewMethod) -> PaymentMethod:
        return PaymentMethod(
            id=self.ids.new("pm"),
            type=method.type,
            created=self.ms(),
            card=evolve(method.card) if method.card is not None else None,
            billing_details=method.billing_details,
            metadata=method.metadata,
        )

    def _method(self, pm_id: str, param: str | None = None) -> PaymentMethod:
        """A stored method, or a new copy of a ready-made one (stored once used)."""
        if pm_id in READY_MADE:
            year = datetime.fromtimestamp(self.clock(), UTC).year
            card = card_from_number(READY_MADE[pm_id], 12, year + 3)
            return PaymentMethod(id=self.ids.new("pm"), type="card", created=self.ms(), card=card)
        return found(self.methods, pm_id, "PaymentMethod", param)

    def _new_customer(self, **fields: Any) -> Customer:
        customer = Customer(id=self.ids.new("cus"), created=self.ms(), **fields)
        self.customers[customer.id] = customer
        return customer

    def _customer(self, customer_id: str, param: str | None = None) -> Customer:
        return found(self.customers, customer_id, "customer", param)

    def _check_usable(self, pm: PaymentMethod, customer: str | None) -> None:
        if pm.detached and customer is not None:
            raise _method_state("A detached PaymentMethod cannot be used with a customer again.")
        if pm.customer is not None and pm.customer != customer:
            raise _method_state(
                "The PaymentMethod is attached to a customer: pass that customer with it."
            )


def _method_state(message: str) -> SandboxError:
    return SandboxError(400, "payment_method_unexpected_state", message, param="payment_method")
