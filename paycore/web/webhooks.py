"""``POST|GET /webhooks/{gateway}``: a provider's webhooks and callbacks, applied once.

A delivery is read as raw bytes (never more than ``[web] max_body_bytes``: a larger
one is refused from its ``Content-Length`` before it is read, or while it streams),
verified and normalised by the gateway's ``handle_webhook``, and each of its events
applied by `AsyncPaymentTransactionServices.apply_event` (which drops an event id
stored before, in the same commit). A checkout whose payment an event touched is
then completed. Only once all of that is committed does the provider get the reply
its plugin asked for: anything that failed before is a 5xx, and the provider sends
the delivery again.

=======================================================  ======  ==================
what happened                                            status  logged reason
=======================================================  ======  ==================
applied (or a duplicate, a late event, an unmatched      plugin  ``applied`` …
one: retrying would change nothing)                      reply
a question (``check``) answered by the ledger            plugin  ``check_accepted``
                                                         reply   ``check_rejected``
no such gateway, or it takes no webhooks                 404     ``unknown_gateway``
body over the limit                                      413     ``too_large``
a ``Content-Length`` that is no number                   400     ``bad_length``
verification failed: forged or missing signature,        400     ``bad_signature``
replayed timestamp, another account's callback
unreadable payload, validly signed; a query string      400     ``malformed``
naming a parameter twice (which would count?)
the plugin had to ask the provider and could not         503     ``gateway_error``
our own failure: the store, completing a checkout, a     500     ``failed``
plugin or paycore bug (logged with its traceback)
=======================================================  ======  ==================

A signature failure is 400, not 401: the provider holds no credentials it could
change, and a retry of the same delivery can never pass. Error bodies are a few
fixed words; nothing of the delivery is echoed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response

from paycore.errors import (
    GatewayError,
    GatewayProtocolError,
    InvalidRequest,
    PaycoreError,
    WebhookSignatureError,
)
from paycore.gateways.base import Operation
from paycore.transactions.model import GatewayEvent, WebhookHandling, WebhookReply, WebhookRequest
from paycore.web.request_log import RequestLog, request_log

if TYPE_CHECKING:
    from paycore.checkout import AsyncCheckoutService
    from paycore.transactions.async_services import AsyncPaymentTransactionServices

__all__ = ["WebhookEndpoint", "refusal"]

log = logging.getLogger("paycore.hooks")
log_web = logging.getLogger("paycore.web")

# What each refusal says: a few fixed words, never anything of the request.
_REFUSALS = {
    "unknown_gateway": (404, "unknown gateway"),
    "too_large": (413, "payload too large"),
    "bad_length": (400, "invalid content length"),
    "bad_signature": (400, "signature verification failed"),
    "malformed": (400, "malformed payload"),
    "disconnected": (400, "incomplete request"),
    "ambiguous_length": (400, "invalid content length"),
    "slow_body": (408, "incomplete request"),
    "gateway_error": (503, "temporarily unavailable, retry later"),
    "failed": (500, "internal error"),
}
# The reason a delivery's log line gives, from what its events did: the first found.
_DISPOSITIONS = ("applied", "ignored", "duplicate", "mismatch", "unmatched")
# Refusals after which the connection's framing cannot be trusted: it is closed.
_CLOSING = frozenset({"ambiguous_length", "slow_body"})
# Seconds a delivery's body may take to arrive; a stalled one holds nothing longer.
BODY_TIMEOUT = 15.0
# Seconds the reply waits for the checkouts a delivery completes; past that they go on
# after the reply (the events are committed: the provider must not wait, or retry).
COMPLETION_BUDGET = 5.0


class _TooLarge(Exception):
    pass


class _BadLength(Exception):
    pass


def refusal(entry: RequestLog, reason: str) -> Response:
    """The short answer for ``reason`` (a key of the table above), noted in the log."""
    status_code, text = _REFUSALS[reason]
    entry.reason = reason
    headers = {"Connection": "close"} if reason in _CLOSING else None
    return PlainTextResponse(text + "\n", status_code=status_code, headers=headers)


class WebhookEndpoint:
    """Receives deliveries for the gateways of ``services``; see the module docstring."""

    def __init__(
        self,
        services: AsyncPaymentTransactionServices,
        checkout: AsyncCheckoutService,
        *,
        max_body_bytes: int,
    ) -> None:
        self.services = services
        self.checkout = checkout
        self.max_body_bytes = max_body_bytes
        self._late: set[asyncio.Future[None]] = set()

    async def receive(self, request: Request) -> Response:
        entry = request_log(request)
        name = request.path_params["gateway"]
        driver = self.services.drivers.get(name)
        if driver is None or not driver.gateway.capabilities.supports(Operation.HANDLE_WEBHOOK):
            return refusal(entry, "unknown_gateway")
        entry.gateway = name
        if "transfer-encoding" in request.headers and "content-length" in request.headers:
            # Framed two ways (RFC 9112 §6.1): answer, and close the connection.
            return refusal(entry, "ambiguous_length")
        try:
            async with asyncio.timeout(BODY_TIMEOUT):
                body = await _read_body(request, self.max_body_bytes)
        except TimeoutError:
            return refusal(entry, "slow_body")
        except _TooLarge:
            return refusal(entry, "too_large")
        except _BadLength:
            return refusal(entry, "bad_length")
        except ClientDisconnect:
            return refusal(entry, "disconnected")
        query = request.query_params
        if len(query) != len(query.multi_items()):
            # Read as a dict, one of the values would be dropped unseen (XPAY's callbacks
            # are their query): refused, as a JSON body naming a key twice is.
            return refusal(entry, "malformed")
        delivery = WebhookRequest(
            method=request.method,
            headers=dict(request.headers),
            body=body,
            query=dict(query),
            received_at=datetime.now(UTC),
        )
        try:
            handling: WebhookHandling = await driver.run(
                driver.gateway.handle_webhook(delivery), operation="handle_webhook"
            )
        except WebhookSignatureError:
            return refusal(entry, "bad_signature")
        except GatewayProtocolError as error:
            if _plugin_failed(error):
                entry.exc_info = error
                return refusal(entry, "failed")
            if _about_the_delivery(error):
                return refusal(entry, "malformed")
            entry.error = type(error).__name__
            return refusal(entry, "gateway_error")
        except GatewayError as error:
            # The plugin asked the provider (to confirm a callback) and could not.
            entry.error = type(error).__name__
            return refusal(entry, "gateway_error")
        except InvalidRequest:
            # The payload read, but holds what paycore cannot take (a bad amount …).
            return refusal(entry, "malformed")
        except Exception as error:
            entry.exc_info = error
            return refusal(entry, "failed")
        try:
            reply = await self._apply(name, handling, entry)
        except Exception as error:
            entry.exc_info = error
            return refusal(entry, "failed")
        return Response(
            reply.body,
            status_code=reply.status_code,
            media_type=reply.media_type,
            headers=dict(reply.headers),
        )

    async def _apply(self, name: str, handling: WebhookHandling, entry: RequestLog) -> WebhookReply:
        """Apply the delivery's events, complete their checkouts, and choose the reply."""
        touched: list[str] = []
        new: list[GatewayEvent] = []
        # A provider that resends its whole history with each callback (MilkyPay's
        # invoice, every refund in it) would otherwise cost a write per event ever sent:
        # what was stored before is found in one read, and only the rest is applied.
        events = handling.events
        stored = await self._stored_events(name, events) if len(events) > 1 else {}
        for event in events:
            if event.event_id in stored:
                entry.count("duplicate")
                payment_id = stored[event.event_id]
                if payment_id is not None:
                    touched.append(payment_id)
                continue
            result = await self.services.apply_event(name, event)
            entry.count(result.disposition)
            if result.disposition != "duplicate":
                new.append(event)
            if result.payment is not None and result.payment.owner is not None:
                # A checkout's payments are made with it as their owner: one with none
                # belongs to no checkout, and needs no lookup.
                touched.append(result.payment.id)
            elif result.payment is None and result.disposition == "duplicate":
                # Stored before: its checkout may not have completed then (a crash, an
                # error answered 500), and this retry is the provider's way to finish.
                again = await self._stored_events(name, [event])
                touched.extend(payment for payment in again.values() if payment is not None)
        await self._complete_checkouts(touched, entry)
        if new:
            await self._received(name, new)
        if handling.check is not None:
            reply = await self.services.answer_check(name, handling.check)
            entry.reason = "check_accepted" if reply is handling.check.accept else "check_rejected"
            return reply
        entry.reason = next((d for d in _DISPOSITIONS if d in entry.events), "no_event")
        # A verified event no payment of the ledger matches, or one about other money.
        entry.notable = "unmatched" in entry.events or "mismatch" in entry.events
        return handling.reply

    async def _received(self, name: str, events: list[GatewayEvent]) -> None:
        """``paycore_webhook_received`` for the events stored now (after their commits),
        in a worker thread: a slow implementation must not hold up the event loop."""
        hooks = self.services.hooks
        if hooks is None or not hooks.paycore_webhook_received.get_hookimpls():
            return  # no implementation: no worker thread to start
        try:
            await asyncio.to_thread(
                hooks.paycore_webhook_received, gateway=name, events=tuple(events)
            )
        except Exception:
            log.exception("hook paycore_webhook_received failed; the delivery stands")

    async def _stored_events(
        self, name: str, events: Sequence[GatewayEvent]
    ) -> dict[str, str | None]:
        """Which of ``events`` were stored before, each with the payment it named where
        that payment has an owner (one with none belongs to no checkout)."""

        def read() -> dict[str, str | None]:
            with self.services.store.reading() as session:
                return session.stored_events(name, (event.event_id for event in events))

        return await asyncio.to_thread(read)

    async def _complete_checkouts(self, payment_ids: Iterable[str], entry: RequestLog) -> None:
        """Complete the checkouts of ``payment_ids``, waiting at most `COMPLETION_BUDGET`.

        A completion may release other payments (a void at another, slow provider):
        past the budget it goes on after the reply. An error within the budget is ours
        (answered 500, so the provider's retry completes it); one after it is logged,
        and reconciliation's sweep finishes the checkout.
        """
        work = asyncio.ensure_future(self._complete_all(list(dict.fromkeys(payment_ids))))
        try:
            await asyncio.wait_for(asyncio.shield(work), COMPLETION_BUDGET)
        except TimeoutError:
            entry.late = True  # the checkout's completion goes on after the reply
            self._late.add(work)
            work.add_done_callback(self._finished_late)

    async def _complete_all(self, payment_ids: list[str]) -> None:
        for payment_id in payment_ids:
            checkout_id = await self.checkout.checkout_of_payment(payment_id)
            if checkout_id is not None:
                await self.checkout.complete(checkout_id)

    def _finished_late(self, work: asyncio.Future[None]) -> None:
        self._late.discard(work)
        if not work.cancelled() and work.exception() is not None:
            log_web.error(
                "completing a checkout after the reply failed; reconciliation finishes it",
                exc_info=work.exception(),
            )


def _plugin_failed(error: GatewayProtocolError) -> bool:
    """Whether the plugin broke (the driver wraps what is not a paycore error): a bug to
    fix, not a delivery to refuse; the provider's retry may meet the fixed plugin."""
    cause = error.__cause__
    return isinstance(cause, Exception) and not isinstance(cause, PaycoreError)


def _about_the_delivery(error: GatewayProtocolError) -> bool:
    """Whether the plugin failed on the delivery itself, before asking the provider.

    After a request to the provider, an unreadable answer is the provider's fault (or
    the network's), and the delivery may pass when retried.
    """
    transcript = error.transcript
    return transcript is None or not transcript.records


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused past ``limit`` bytes: by its declared length, else as it streams."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise _BadLength
        if int(declared) > limit:
            raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)
