"""`LedgerMachine`: random operations on payments at several gateways, against one ledger.

A Hypothesis state machine creates payments on the gateways of a `LedgerWorld`
(interleaved, as a shop's payments are) and authorizes, sells, captures, voids and
refunds them through `PaymentTransactionServices`; repeats earlier calls with their
idempotency keys; pays, as the customer, on the page of a provider that takes its
payments there; asks about unsettled transactions and reconciles. Meanwhile the
sandboxes answer 500, stall past the read timeout or cut the connection, a second
process finds the provider unreachable, and webhooks arrive twice or out of order at
paycore's web app, which applies them to the same ledger.

After every step (`paycore.testing.ledger_checks`) the ledger is consistent with itself and
never ahead of any provider; after reconciliation it equals every provider's truth.
What each gateway's sandbox approves, declines and reports comes from the gateway's
contract class (`paycore.testing.GatewayContract`): nothing here knows a provider.

    world = ...  # paycore.testing.ledger_world.serve_world([TestShopContract()], store, http)
    run_ledger_machine(world, steps=1_000)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from paycore.errors import InvalidAmount, PaymentBusy, StateError, UnsupportedOperation
from paycore.gateways.base import Operation
from paycore.money import Money
from paycore.testing.ledger_checks import Call, LedgerChecks, expected_decline
from paycore.testing.ledger_world import NO_FAULTS, GatewayUnderTest, LedgerClock, LedgerWorld
from paycore.transactions.model import PaymentMethod, PaymentStatus, TransactionStatus
from paycore.transactions.records import IN_FLIGHT, PaymentTransaction
from paycore.transactions.services import PaymentTransactionServices

if TYPE_CHECKING:
    from paycore.transactions.records import Payment

__all__ = ["LedgerMachine", "run_ledger_machine"]

S = TransactionStatus

STEPS_PER_EXAMPLE = 50
PAYMENTS = 6  # at most, per example: the steps act on few payments, and go further
EXAMPLES_PER_RUN = 10

# What breaks a call: nothing (listed four times, so most calls go through), one-shot
# faults of the sandbox in order, or the provider unreachable from the process making
# the call. Simplest first, which is where shrinking heads.
UNAVAILABLE = ("unavailable",)
WRITE_FAULTS = (
    (),
    (),
    (),
    (),
    ("error",),
    ("drop",),
    ("timeout",),
    ("error", "error"),
    ("drop", "drop"),
    ("drop", "error"),
    ("timeout", "drop"),
    UNAVAILABLE,
)
READ_FAULTS = ((), ("error",), ("drop",), ("timeout",), ("error", "error"))
# What happens to the webhooks the call makes the provider send: delivered twice, held
# back until the next one went out, both, or delivered late.
WEBHOOK_FAULTS = (
    (),
    (),
    ("duplicate",),
    ("reorder",),
    ("duplicate", "reorder"),
    ("reorder", "reorder", "duplicate"),
    ("late",),
)
# What breaks a mutation on its way: its requests, and the webhooks it makes.
Wire = tuple[tuple[str, ...], tuple[str, ...]]
WIRES = st.tuples(st.sampled_from(WRITE_FAULTS), st.sampled_from(WEBHOOK_FAULTS))
# How a payment is paid: mostly by a method the provider approves.
METHODS = ("approved",) * 4 + ("declined", "insufficient_funds")
# What a refused call may raise: the state forbids it, or the amount, or another
# mutation of the payment is in flight, or the gateway does not declare it.
REFUSALS = (PaymentBusy, StateError, InvalidAmount, UnsupportedOperation)


class LedgerMachine(LedgerChecks, RuleBasedStateMachine):
    """The ledger, driven at random over faulty wires, never disagrees with a provider."""

    world: ClassVar[LedgerWorld]

    payments = Bundle("payments")
    calls = Bundle("calls")

    def __init__(self) -> None:
        super().__init__()
        world = self.world
        self.clock = LedgerClock()
        self.services = PaymentTransactionServices(
            world.store,
            {name: gateway.online for name, gateway in world.gateways.items()},
            hooks=None,
            clock=self.clock,
        )
        self.offline = PaymentTransactionServices(
            world.store,
            {name: gateway.offline for name, gateway in world.gateways.items()},
            hooks=None,
            clock=self.clock,
        )
        for gateway in world.gateways.values():
            gateway.sandbox.set_faults(NO_FAULTS)
        self.names = list(world.gateways)  # in the world's order: shrinking heads first
        self.payment_ids: list[str] = []
        self.gateway_of: dict[str, GatewayUnderTest] = {}
        self.methods: dict[str, str] = {}  # payment id -> "approved", "declined" …
        self.returned: dict[str, str] = {}  # transaction id -> payment id, as handed out
        self.paid_on_page: set[str] = set()  # transactions the customer acted on
        self.unresolved: list[str] = []
        # False from the start of a step until the invariants passed after it.
        self.settled = True

    # -- rules ---------------------------------------------------------------------------

    @precondition(lambda self: len(self.payment_ids) < PAYMENTS)
    @rule(
        target=payments,
        gateway=st.integers(0, 63),
        tenths=st.integers(5, 20),
        method=st.sampled_from(METHODS),
    )
    def create_payment(self, gateway: int, tenths: int, method: str) -> str:
        self.begin_step()
        chosen = self.world.gateways[self.names[gateway % len(self.names)]]
        contract = chosen.contract
        payment = self.services.create_payment(
            Money(contract.amount * tenths // 10, contract.currency),
            gateway=chosen.name,
            payment_method=self.method_of(chosen, method),
            return_url=contract.return_url,
        )
        assert payment.status is PaymentStatus.NEW
        self.payment_ids.append(payment.id)
        self.gateway_of[payment.id] = chosen
        self.methods[payment.id] = method
        return payment.id

    @rule(target=calls, payment=payments, wire=WIRES)
    def authorize(self, payment: str, wire: Wire) -> Call:
        return self.mutate(Call("authorize", payment, self.new_key()), wire)

    @rule(target=calls, payment=payments, wire=WIRES)
    def sale(self, payment: str, wire: Wire) -> Call:
        return self.mutate(Call("sale", payment, self.new_key()), wire)

    @rule(
        target=calls,
        payment=payments,
        how=st.sampled_from(("full", "partial", "final")),
        tenths=st.integers(1, 12),
        wire=WIRES,
    )
    def capture(self, payment: str, how: str, tenths: int, wire: Wire) -> Call:
        amount = None if how == "full" else self.share(payment, "capturable", tenths)
        call = Call("capture", payment, self.new_key(), amount, final=how == "final")
        return self.mutate(call, wire)

    @rule(target=calls, payment=payments, wire=WIRES)
    def void(self, payment: str, wire: Wire) -> Call:
        return self.mutate(Call("void", payment, self.new_key()), wire)

    @rule(
        target=calls,
        payment=payments,
        how=st.sampled_from(("full", "partial")),
        tenths=st.integers(1, 12),
        wire=WIRES,
    )
    def refund(self, payment: str, how: str, tenths: int, wire: Wire) -> Call:
        amount = None if how == "full" else self.share(payment, "refundable", tenths)
        return self.mutate(Call("refund", payment, self.new_key(), amount), wire)

    @rule(call=calls, wire=WIRES)
    def repeat(self, call: Call, wire: Wire) -> None:
        """The same call again with its key: a replay, never a second operation."""
        self.mutate(call, wire)

    # The next two rules are always enabled, and do nothing when there is nothing to
    # do: what there is depends on the webhooks, which come when they come, and
    # Hypothesis must draw the same rules when it runs a sequence again.

    @rule(pick=st.integers(0, 100), webhooks=st.sampled_from(WEBHOOK_FAULTS))
    def pay_on_page(self, pick: int, webhooks: tuple[str, ...]) -> None:
        """The customer pays (or fails to) on the page of a provider that takes its
        payments there; its webhook, or a question, settles the transaction later."""
        self.begin_step()
        pages = self.pages_to_pay()
        if not pages:
            return
        transaction = pages[pick % len(pages)]
        gateway = self.gateway_of[transaction.payment_id]
        method = self.method_of(gateway, self.methods[transaction.payment_id])
        assert transaction.next_action is not None
        self.paid_on_page.add(transaction.id)
        with gateway.faults((), webhooks):
            gateway.contract.pay_on_page(self.world.browser, transaction.next_action, method)

    @rule(pick=st.integers(0, 100), faults=st.sampled_from(READ_FAULTS))
    def fetch_status(self, pick: int, faults: tuple[str, ...]) -> None:
        self.begin_step()
        if not self.unresolved:
            return
        transaction_id = self.unresolved[pick % len(self.unresolved)]
        gateway = self.gateway_of[self.returned[transaction_id]]
        before = self.services.get_transaction(transaction_id)
        with gateway.faults(faults, ()):
            answer = self.services.fetch_status(transaction_id)
        assert answer.id == transaction_id
        self.check_answer(before, answer)

    @rule()
    def reconcile(self) -> None:
        """What the reconciliation job does: ask about everything unsettled, late enough."""
        self.begin_step()
        self.resolve_everything()

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def ledger_agrees_with_itself_and_the_providers(self) -> None:
        self.check()
        self.settled = True

    def teardown(self) -> None:
        try:
            if self.settled:
                # The last step passed: reconcile, and then the ledger is every provider's.
                self.resolve_everything()
                self.check(reconciled=True)
        finally:
            for gateway in self.world.gateways.values():
                gateway.sandbox.set_faults(NO_FAULTS)
            # Drop delivered outbox entries now, not from a timer after the store closed.
            self.services.ledger.outbox.close()
            self.offline.ledger.outbox.close()

    # -- one mutation, and what must hold of its outcome -----------------------------

    def begin_step(self) -> None:
        self.settled = False
        self.world.steps += 1

    def new_key(self) -> str:
        return self.world.new_key()

    def method_of(self, gateway: GatewayUnderTest, kind: str) -> PaymentMethod:
        contract = gateway.contract
        method: PaymentMethod | None = getattr(contract, kind)
        return method if method is not None else contract.declined

    def share(self, payment_id: str, room: str, tenths: int) -> Money:
        """``tenths``/10 of what the payment has ``room`` for (``capturable``,
        ``refundable``), or of its amount when it has none: at least one minor unit,
        more than there is past 10."""
        payment = self.services.get_payment(payment_id)
        base: Money = getattr(payment, room)
        if not base.is_positive():
            base = payment.amount
        return Money(max(1, base.minor_units * tenths // 10), base.currency)

    def mutate(self, call: Call, wire: Wire) -> Call:
        self.begin_step()
        faults, webhooks = wire
        gateway = self.gateway_of[call.payment_id]
        payment, recorded = self.read(call.payment_id)
        previous = next((t for t in recorded if t.idempotency_key == call.key), None)
        busy = any(t.status in IN_FLIGHT for t in recorded)
        # Nothing a webhook could settle: the payment cannot change but by this call.
        still = not any(self.is_open(t) for t in recorded)
        requests = len(gateway.sandbox.requests_received)
        services = self.offline if faults == UNAVAILABLE else self.services
        with gateway.faults(() if faults == UNAVAILABLE else faults, webhooks):
            try:
                outcome: PaymentTransaction | Exception = invoke(services, call)
            except REFUSALS as refused:
                outcome = refused
        # Only our calls reach a provider whose webhooks are believed as they come.
        sent = None if gateway.shares_its_wire else gateway.sandbox.requests_received[requests:]

        if isinstance(outcome, Exception):
            self.check_refusal(call, outcome, payment, recorded, previous, busy, still, sent)
            return call

        transaction = outcome
        self.returned[transaction.id] = call.payment_id
        assert (transaction.payment_id, transaction.idempotency_key) == (call.payment_id, call.key)
        assert transaction.type.value == call.operation
        if previous is None:
            if busy:
                # Only if a webhook settled what was in flight before the call was made.
                now = {t.id: t for t in self.services.list_transactions(call.payment_id)}
                in_flight = [now[t.id] for t in recorded if now[t.id].status in IN_FLIGHT]
                assert not in_flight, f"{call} was sent while {in_flight} was in flight"
            if still:
                assert not over_the_limit(payment, call), f"{call} went through on {payment}"
        else:
            assert transaction.id == previous.id
        if previous is not None and previous.status is not S.FAILED:
            # The same key is answered from the ledger, or by asking; an unknown capture,
            # void or refund the provider has no record of is sent again under its own id
            # (the providers here deduplicate), which the checks against each provider
            # after every step would show if it happened twice.
            if previous.status.is_final:
                assert sent in (None, ())
                assert transaction == previous
            elif previous.type.value in ("authorize", "sale"):
                assert transaction.status is not S.PENDING, f"{call} left {transaction}"
            return call
        # Sent (again): what the faults let through decides the outcome.
        expected = self.expected_status(gateway, call)
        if faults == UNAVAILABLE:
            assert (transaction.status, transaction.failure) == (S.FAILED, "GatewayUnavailable")
            assert sent in (None, ())
        elif len(faults) == 2 or (faults and sent is None):
            # Two faults make the outcome unknown, unless a webhook told it first (or
            # that the provider is at it), or they broke a question the gateway asks
            # before it sends the mutation (then nothing was sent); on a wire shared
            # with the web app's own questions, one fault may be its.
            told = (S.UNKNOWN, S.PROCESSING, expected)
            not_sent = (transaction.status, transaction.failure) == (S.FAILED, "GatewayUnavailable")
            assert transaction.status in told or not_sent, (call, faults, transaction)
        else:
            assert transaction.status is expected, (call, faults, transaction)
        if transaction.status is S.DECLINED:
            reason = expected_decline(gateway.contract, self.methods[call.payment_id])
            assert transaction.decline_reason is reason, (call, transaction)
        if transaction.succeeded and call.amount is not None:
            assert transaction.amount == call.amount
        return call

    def check_refusal(
        self,
        call: Call,
        refused: Exception,
        payment: Payment,
        recorded: tuple[PaymentTransaction, ...],
        previous: PaymentTransaction | None,
        busy: bool,
        still: bool,
        sent: tuple[tuple[str, str], ...] | None,
    ) -> None:
        """A refusal changes nothing and sends nothing."""
        after = self.services.list_transactions(call.payment_id)
        assert [t.id for t in after] == [t.id for t in recorded], (refused, after)
        if still:
            assert after == recorded, (refused, recorded, after)
            now = self.services.get_payment(call.payment_id)
            assert now == payment, (refused, payment, now)
        assert sent in (None, ()), (refused, sent)
        # A recorded request is settled by its key, never refused (unless it failed:
        # then it is sent again, and checked again first).
        assert previous is None or previous.status is S.FAILED, (previous, refused)
        if isinstance(refused, UnsupportedOperation):
            capabilities = self.gateway_of[call.payment_id].contract.capabilities()
            assert not capabilities.supports(Operation(call.operation)) or (
                call.operation == "capture" and not capabilities.partial_capture
            ), refused
        elif previous is None:
            # Webhooks settle transactions in flight, never put one there.
            assert not isinstance(refused, PaymentBusy) or busy, (refused, recorded)
            if busy and not any(t.status in IN_FLIGHT for t in after):
                return
            assert isinstance(refused, PaymentBusy) == busy, (refused, recorded)

    def expected_status(self, gateway: GatewayUnderTest, call: Call) -> TransactionStatus:
        """What the provider answers ``call``, sent once and answered."""
        if call.operation not in ("authorize", "sale"):
            return S.SUCCEEDED
        if gateway.contract.pays_on_page:
            return S.REQUIRES_ACTION
        return S.SUCCEEDED if self.methods[call.payment_id] == "approved" else S.DECLINED

    def pages_to_pay(self) -> list[PaymentTransaction]:
        """Transactions waiting for the customer on a provider's page, not yet paid."""
        waiting = []
        for payment_id in self.payment_ids:
            if not self.gateway_of[payment_id].contract.pays_on_page:
                continue
            for transaction in self.services.list_transactions(payment_id):
                if (
                    transaction.status is S.REQUIRES_ACTION
                    and transaction.next_action is not None
                    and transaction.id not in self.paid_on_page
                ):
                    waiting.append(transaction)
        return waiting


def invoke(services: PaymentTransactionServices, call: Call) -> PaymentTransaction:
    if call.operation == "capture":
        return services.capture(
            call.payment_id, call.amount, final=call.final, idempotency_key=call.key
        )
    if call.operation == "refund":
        return services.refund(call.payment_id, call.amount, idempotency_key=call.key)
    method = getattr(services, call.operation)
    result: PaymentTransaction = method(call.payment_id, idempotency_key=call.key)
    return result


def over_the_limit(payment: Payment, call: Call) -> bool:
    """Asks for more than the ledger says there is: refused before anything is sent."""
    if call.amount is None:
        return False
    if call.operation == "capture":
        return call.amount > payment.capturable
    return call.operation == "refund" and call.amount > payment.refundable


def run_ledger_machine(world: LedgerWorld, *, steps: int, **changes: Any) -> None:
    """Run `LedgerMachine` over ``world`` until at least ``steps`` steps ran in all.

    ``changes`` override the Hypothesis settings (``stateful_step_count`` …).
    """
    machine = type("LedgerMachineOverWorld", (LedgerMachine,), {"world": world})
    options: dict[str, Any] = {
        "max_examples": EXAMPLES_PER_RUN,
        "stateful_step_count": STEPS_PER_EXAMPLE,
        "deadline": None,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
        **changes,
    }
    until = world.steps + steps
    while world.steps < until:
        run_state_machine_as_test(machine, settings=settings(**options))
