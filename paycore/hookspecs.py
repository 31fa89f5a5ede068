"""Hook specifications: how code outside paycore takes part in what it does (DESIGN §9).

paycore uses pluggy_ with the project name ``"paycore"``. Each function below is the
*specification* of one hook: it states when paycore calls it, with which arguments,
and what it does with the answer. The bodies are empty on purpose.

.. _pluggy: https://pluggy.readthedocs.io/

Writing an implementation
=========================

Decorate a function with `hookimpl`, give it the name of the hook, and accept only the
arguments you need (pluggy passes a subset of the specification's arguments by name)::

    # my_shop/paycore_hooks.py
    from paycore.hookspecs import hookimpl

    @hookimpl
    def paycore_payment_status_changed(payment, previous_status):
        if payment.status == "captured":
            notify_warehouse(payment.order_reference)

Then declare the module in your distribution's entry points, in the ``paycore.hooks``
group; `paycore.plugins.hook_manager` registers every module declared there::

    [project.entry-points."paycore.hooks"]
    my_shop = "my_shop.paycore_hooks"

The entry-point target may be a module or any object whose attributes are
implementations. A target that fails to import, an implementation whose parameters are
not among the specification's, or a ``paycore_*`` function that matches no
specification (a typo in its name) is reported as a `paycore.errors.PluginError` when
the hooks are loaded, never silently skipped.

How paycore calls hooks
=======================

- **With keywords only.** paycore calls ``hook.paycore_x(name=value, ...)`` and never
  passes arguments by position, so new arguments may be added to a specification
  without breaking existing implementations.
- **After commit.** The notification hooks (`paycore_transaction_recorded`,
  `paycore_payment_status_changed`, `paycore_checkout_finished`,
  `paycore_webhook_received`) are called only after the database transaction that
  recorded the change has committed. What they receive
  is durable: a reader in another process already sees it. Nothing an implementation
  does can roll it back, and an implementation must not assume it runs inside a
  database transaction.
- **At least once**, for `paycore_transaction_recorded`,
  `paycore_payment_status_changed` and `paycore_checkout_finished`: the notification
  is committed in the ledger's outbox together with the change. If the process stops
  between the commit and the call, reconciliation delivers it later; rarely, an
  implementation may see one notification twice, so make it idempotent (key it by
  transaction id and status, or by checkout id).
- `paycore_gateway_exchange` is called by the gateway driver, which knows nothing of
  the database: it runs when the exchange with the provider ends, *before* the outcome
  is recorded.
- `paycore_select_gateway` is called before anything is recorded, and
  `paycore_answer_payment_check` records nothing at all; they are the only hooks whose
  answer changes what paycore does.
- **Synchronously, on the caller's thread or event loop.** Hooks run inside the
  request, job or webhook that triggered them, including from the asynchronous driver.
  Keep implementations quick and non-blocking; hand slow work to a queue.
- **From many threads at once.** Batch jobs and web servers call hooks concurrently;
  implementations must be thread-safe.

Arguments are frozen values (attrs classes, enums, strings, tuples). They contain no
card numbers, security codes or credentials: exchanges are scrubbed before they reach a
hook, and payments hold only tokens.

When an implementation raises
=============================

Implementations should not raise: catch and log your own failures. pluggy stops a
call at the first exception. For the notification hooks and the exchange hook, paycore
catches that exception and logs it (logger ``paycore.hooks``), and the operation goes
on with its result unchanged; implementations that had not yet run do not run for that
event. An exception from `paycore_select_gateway` or `paycore_answer_payment_check`
propagates to the caller; nothing has been recorded at that point.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from paycore.checkout.model import Checkout
    from paycore.gateways.scrub import Transcript
    from paycore.transactions.model import GatewayEvent, PaymentCheck, PaymentStatus
    from paycore.transactions.records import Payment, PaymentTransaction

__all__ = [
    "PROJECT_NAME",
    "hookimpl",
    "hookspec",
    "paycore_answer_payment_check",
    "paycore_checkout_finished",
    "paycore_gateway_exchange",
    "paycore_payment_status_changed",
    "paycore_select_gateway",
    "paycore_transaction_recorded",
    "paycore_webhook_received",
]

PROJECT_NAME = "paycore"
"""The pluggy project name: markers and the plugin manager must all use it."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
"""Marks a function of this module as a hook specification."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marks a function of a plugin as the implementation of the hook of the same name."""


@hookspec
def paycore_gateway_exchange(gateway: str, operation: str, transcript: Transcript) -> None:
    """An exchange with a payment provider ended; here is what went over the wire.

    Called by the gateway driver once per operation it runs (one call for an
    ``authorize``, however many requests and retries it took), whether the exchange
    completed, failed, or was interrupted (a cancelled task: ``outcome`` is then
    ``"interrupted (CancelledError)"``). Use it for audit trails, metrics and debugging; the driver
    also logs the transcript's summary to the ``paycore.gateways`` logger.

    This hook runs before the outcome is recorded in the store (the driver does not
    know the store), so do not look the transaction up from here.

    :param gateway: the name of the gateway plugin that ran the exchange
        (``"wooshpay"``), equal to its entry-point name.
    :param operation: the operation that was run, one of the values of
        `paycore.gateways.base.Operation` (``"authorize"``, ``"capture"``,
        ``"handle_webhook"`` …).
    :param transcript: a `paycore.gateways.scrub.Transcript`: the gateway and
        operation again, ``records`` (one `ExchangeRecord` per attempt of each request:
        method, URL, headers, bodies, status code, elapsed time, wire error) and
        ``outcome`` (``"completed"``, or the name of the error the driver raised, such as
        ``"OutcomeUnknown"``). Everything in it is already scrubbed: card numbers are
        cut to their last four digits, and security codes, credentials, signatures and
        the gateway's configured secrets are replaced by ``[REDACTED]``. It is safe to
        log or store as it is; do not try to recover what was removed.
    :return: nothing; the return value is ignored.
    """


@hookspec
def paycore_transaction_recorded(payment: Payment, transaction: PaymentTransaction) -> None:
    """A transaction's outcome was recorded; the change is committed.

    Called after commit each time a payment transaction's recorded status changes once
    it has been sent: when the gateway's answer is recorded (``succeeded``,
    ``declined``, ``processing``, ``requires_action``, ``failed``, or ``unknown`` when
    the answer never came), and later when a webhook or reconciliation settles a
    ``processing`` or ``unknown`` transaction. It is not called for the write-ahead
    ``pending`` record inserted before the gateway is called, nor when an idempotent
    replay returns a transaction recorded earlier.

    For one change, this hook is called before `paycore_payment_status_changed`.
    Both are delivered at least once: the notification is committed in the outbox
    with the change, so when a process stops between the commit and the hooks,
    reconciliation delivers it later (and may, rarely, deliver it twice).

    :param payment: the `paycore.transactions.records.Payment` the transaction belongs
        to, as committed with it: status, amount, gateway name and reference, and the
        totals authorized, captured, refunded and capturable, already updated.
    :param transaction: the `paycore.transactions.records.PaymentTransaction` as
        committed: type (``authorize``, ``sale``, ``capture``, ``void``, ``refund``),
        status, amount, idempotency key, gateway transaction id, decline reason and
        code, and the parent transaction for captures, voids and refunds.
    :return: nothing; the return value is ignored.
    """


@hookspec
def paycore_payment_status_changed(
    payment: Payment, previous_status: PaymentStatus, transaction: PaymentTransaction | None
) -> None:
    """A payment moved to a new status; the change is committed.

    Called after commit whenever a payment's status differs from what it was before
    the database transaction: ``authorized → partially_captured``,
    ``requires_action → failed`` and so on (see `paycore.transactions.model.PaymentStatus`).
    A payment never moves backwards, so a late or duplicate event that changes nothing
    calls nothing. Totals may change without a status change (a second partial capture
    keeps ``partially_captured``): watch `paycore_transaction_recorded` for those.

    This is the hook for business reactions: release an order when its payment is
    ``authorized``, ship when ``captured``, alert when ``failed``.

    :param payment: the payment record as committed, ``payment.status`` being the new
        status; its totals reflect the change.
    :param previous_status: the `PaymentStatus` the payment had before this change.
    :param transaction: the payment-transaction record whose outcome caused the change,
        or ``None`` when no transaction did (an unpaid checkout payment ``expired``).
    :return: nothing; the return value is ignored.
    """


@hookspec
def paycore_checkout_finished(checkout: Checkout) -> None:
    """A checkout finished: it is an order now, or it failed; the change is committed.

    Called after commit once a checkout (`paycore.checkout`) reaches ``completed``
    (every payment went through: fulfil the order ``checkout.order_id``) or ``failed``
    (``checkout.failure`` names the payment that was declined or failed, and why; the
    others are being released). Whichever of the customer's return, a webhook or
    `CheckoutService.submit` finished it, the hook is called for that one change, even
    when several finished it at once. Delivered at least once, like
    `paycore_payment_status_changed`: key your reaction by ``checkout.id``.

    :param checkout: the `paycore.checkout.model.Checkout` as committed: ``status``,
        ``owner``, ``cart``, ``payment_ids``, and ``order_id`` or ``failure``.
    :return: nothing; the return value is ignored.
    """


@hookspec
def paycore_webhook_received(gateway: str, events: Sequence[GatewayEvent]) -> None:
    """A provider's webhook or callback was verified and its events stored.

    Called after commit, once per delivery, after the delivery's signature was checked
    on its raw bytes, its events were normalised by the gateway plugin and stored
    (deduplicated by the provider's event id). Deliveries that fail verification never
    reach this hook. When every event of a delivery had been received before (providers
    retry), the hook is not called.

    Changes the events cause to payments are reported separately, through
    `paycore_transaction_recorded` and `paycore_payment_status_changed`; this hook
    reports the arrival, for audit and monitoring.

    :param gateway: the name of the gateway the delivery was addressed to, as it
        appears in the webhook URL (``/webhooks/{gateway}``).
    :param events: the newly stored events, in the order the delivery listed them: a
        non-empty sequence of `paycore.transactions.model.GatewayEvent` (event id, the
        provider's event type, when it occurred, the transaction type and outcome it
        reports, references and amount). Raw payloads are not included.
    :return: nothing; the return value is ignored.
    """


@hookspec(firstresult=True)
def paycore_select_gateway(request: Any, candidates: Sequence[str]) -> str | None:
    """Choose which gateway takes a new payment; the first answer that is not None wins.

    Called before a payment is created, when paycore must pick a gateway for it and
    at least one configured gateway can take it. Implementations are asked in turn
    (the most recently registered first) until one returns a name; if all return
    ``None``, paycore takes the first candidate. Use it to route by currency, amount,
    country, cost or provider health.

    Nothing has been recorded yet: an exception raised here propagates to the caller
    and no payment is created.

    :param request: what is to be paid, described with the field names of
        `paycore.transactions.model.PaymentRequest`: at least ``amount`` (a
        `paycore.money.Money`), and ``payment_method``, ``customer``,
        ``order_reference`` and ``metadata`` (any of which may be ``None`` or empty when
        not known yet). Treat it as read-only.
    :param candidates: the names of the configured gateways able to take the request
        (they offer the operation, the currency and the payment method), in the order
        they are configured; never empty.
    :return: one of ``candidates`` to choose that gateway, or ``None`` to leave the
        choice to the next implementation. A name that is not among ``candidates`` is
        refused with `paycore.errors.PluginError`.
    """


@hookspec(firstresult=True)
def paycore_answer_payment_check(
    gateway: str,
    check: PaymentCheck,
    payment: Payment | None,
    transaction: PaymentTransaction | None,
    expected: bool,
) -> bool | None:
    """Decide whether to accept a payment a provider asks about before taking it.

    Called when a provider's two-step protocol (XPAY's ``check``) asks the merchant,
    before the customer's money is taken, whether the payment may go ahead, through
    `PaymentTransactionServices.answer_check`. Implementations are asked in turn (the
    most recently registered first) until one returns ``True`` (accept) or ``False``
    (reject); if all return ``None``, paycore answers ``expected``. Use it to refuse
    a payment whose order was cancelled meanwhile, or whose stock ran out.

    Nothing is written, before or after: an exception raised here propagates to the
    webhook endpoint, which answers with a server error (the provider then treats the
    check as unanswered and fails the payment).

    :param gateway: the configured gateway name the check came through.
    :param check: the question, a `paycore.transactions.model.PaymentCheck`: the
        ``transaction_id`` and ``payment_id`` the provider names and the ``amount`` it is
        about to take. Untrusted input: the provider's claim, not the ledger's.
    :param payment: the payment of that transaction as recorded, or ``None`` when the
        ledger has no such transaction for this gateway.
    :param transaction: the transaction as recorded, or ``None`` (as for ``payment``).
    :param expected: paycore's own answer: ``True`` when the transaction exists, still
        waits for the customer, is for that amount and belongs to that payment.
    :return: ``True`` to accept, ``False`` to reject, ``None`` to leave it to the next
        implementation (and finally to ``expected``).
    """
