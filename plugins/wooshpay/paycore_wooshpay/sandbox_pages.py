"""The customer's pages of the WooshPay sandbox: plain HTML forms a browser (or a test
with httpx) clicks through, without authentication, as the provider's hosted pages are.

- ``GET|POST /pay/{cs_id}``: the checkout session's payment page (a card number, or a
  button per other method offered; ``action=pay`` / ``pay:<type>`` / ``cancel``);
- ``GET /link/{plink_id}``: a visit to a payment link: a new session, then its page;
- ``GET|POST /3ds/{pi_id}``, ``GET|POST /wallet/{pi_id}``: approve or decline
  (``result=approve|decline``), then back to the merchant.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from paycore.money import Money
from paycore.sandbox.base import SandboxError
from paycore.sandbox.pages import form_page, message_page, read_form
from paycore_wooshpay.sandbox_cards import card_from_number
from paycore_wooshpay.sandbox_checkout import WooshPayState
from paycore_wooshpay.sandbox_objects import CheckoutSession, PaymentIntent
from paycore_wooshpay.sandbox_params import request_base_url
from paycore_wooshpay.sandbox_state import NewMethod

__all__ = ["HostedPages"]

_PAID = ("requires_capture", "succeeded")
_CHALLENGES = {"3ds": "challenge_redirect", "wallet": "redirect_to_url"}


class HostedPages:
    """The pages, over the sandbox's state."""

    def __init__(self, state: WooshPayState) -> None:
        self.state = state

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/pay/{session_id}", self.show_session, methods=["GET"]),
            Route("/pay/{session_id}", self.pay_session, methods=["POST"]),
            Route("/link/{link_id}", self.visit_link, methods=["GET"]),
            *(
                Route(f"/{kind}/{{pi_id}}", handler, methods=[method], name=f"{kind}_{method}")
                for kind in _CHALLENGES
                for method, handler in (
                    ("GET", self.show_challenge),
                    ("POST", self.answer_challenge),
                )
            ),
        ]

    # -- checkout ------------------------------------------------------------------------

    async def show_session(self, request: Request) -> Response:
        try:
            session, pi = self.state.session_page(request.path_params["session_id"])
        except SandboxError:
            return message_page("Checkout", ["There is no such checkout session."], status_code=404)
        return _session_page(session, pi)

    async def pay_session(self, request: Request) -> Response:
        form = await read_form(request)
        try:
            session, pi = self.state.session_page(request.path_params["session_id"])
        except SandboxError:
            return message_page("Checkout", ["There is no such checkout session."], status_code=404)
        action = form.get("action", "")
        if session.status != "open":
            return _session_page(session, pi)
        if action == "cancel":
            if session.cancel_url:
                return RedirectResponse(session.cancel_url, status_code=303)
            return message_page("Checkout", ["You left the payment; you may close this page."])
        if action == "pay" and "card" in session.payment_method_types:
            try:
                card = card_from_number(form.get("card_number", ""), 12, self._year() + 3)
            except SandboxError as error:
                return _session_page(session, pi, notice=error.message, status_code=402)
            method = NewMethod(type="card", card=card)
        elif action.startswith("pay:") and action[4:] in session.payment_method_types:
            method = NewMethod(type=action[4:])
        else:
            return _session_page(session, pi, notice="Choose how to pay.", status_code=400)
        try:
            pi = self.state.pay_session(session.id, method, request_base_url(request))
        except SandboxError as error:
            return message_page("Checkout", [error.message], status_code=error.status_code)
        if pi.status == "requires_action" and pi.next_action is not None:
            url = pi.next_action[pi.next_action["type"]]["url"]
            return RedirectResponse(url, status_code=303)
        if pi.status in _PAID:
            return _to_success(session)
        return _session_page(session, pi, status_code=402)

    async def visit_link(self, request: Request) -> Response:
        try:
            session = self.state.link_session(
                request.path_params["link_id"], request_base_url(request)
            )
        except SandboxError as error:
            return message_page("Payment link", [error.message], status_code=error.status_code)
        return RedirectResponse(session.url, status_code=303)

    # -- 3-D Secure and wallets ------------------------------------------------------------

    async def show_challenge(self, request: Request) -> Response:
        kind, pi = self._challenged(request)
        if pi is None:
            return message_page(_title(kind), ["There is no such payment."], status_code=404)
        if pi["status"] != "requires_action":
            return message_page(_title(kind), [f"This payment is already {pi['status']}."])
        amount = Money(pi["amount"], pi["currency"])
        return form_page(
            _title(kind),
            [f"WooshPay sandbox: approve the payment {pi['id']} of {amount}?"],
            action=f"/{kind}/{pi['id']}",
            field="result",
            buttons=[("approve", "Approve"), ("decline", "Decline")],
        )

    async def answer_challenge(self, request: Request) -> Response:
        kind, found = self._challenged(request)
        result = (await read_form(request)).get("result")
        if found is None:
            return message_page(_title(kind), ["There is no such payment."], status_code=404)
        if result not in ("approve", "decline"):
            return message_page(_title(kind), ["Choose Approve or Decline."], status_code=400)
        try:
            pi = self.state.complete_action(found["id"], approved=result == "approve")
        except SandboxError as error:
            return message_page(_title(kind), [error.message], status_code=error.status_code)
        if pi.checkout_session is not None:
            session, _ = self.state.session_page(pi.checkout_session)
            if pi.status in _PAID:
                return _to_success(session)
            return RedirectResponse(session.url, status_code=303)
        if pi.return_url:
            query = urlencode(
                {
                    "payment_intent": pi.id,
                    "payment_intent_client_secret": pi.client_secret,
                    "redirect_status": "succeeded" if pi.status in _PAID else "failed",
                }
            )
            separator = "&" if "?" in pi.return_url else "?"
            return RedirectResponse(f"{pi.return_url}{separator}{query}", status_code=303)
        return message_page(_title(kind), [f"The payment is {pi.status}. You may close this page."])

    def _challenged(self, request: Request) -> tuple[str, dict[str, Any] | None]:
        """The page's kind, and its intent (None unless it waits for this kind of page)."""
        kind = request.url.path.split("/")[1]
        try:
            pi = self.state.intent(request.path_params["pi_id"])
        except SandboxError:
            return kind, None
        action = pi["next_action"]
        if action is not None and action["type"] != _CHALLENGES[kind]:
            return kind, None
        return kind, pi

    def _year(self) -> int:
        return datetime.fromtimestamp(self.state.clock(), UTC).year


def _session_page(
    session: CheckoutSession,
    pi: PaymentIntent,
    *,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    if session.status == "expired":
        return message_page("Checkout", ["This checkout session has expired."], status_code=410)
    if session.status == "complete":
        return message_page("Checkout", ["This checkout session is already paid."], status_code=409)
    lines = [f"WooshPay sandbox checkout {session.id}"]
    lines += [
        f"{item.quantity} × {item.description}: {Money(item.amount, session.currency)}"
        for item in session.line_items
    ]
    lines.append(f"Total: {Money(session.amount_total, session.currency)}")
    if notice:
        lines.append(notice)
    elif pi.last_payment_error:
        lines.append(f"Your payment was declined: {pi.last_payment_error['message']}")
    types = session.payment_method_types
    buttons = [("pay", "Pay by card")] if "card" in types else []
    buttons += [(f"pay:{t}", f"Pay with {t}") for t in types if t != "card"]
    return form_page(
        "Checkout",
        lines,
        action=f"/pay/{session.id}",
        field="action",
        buttons=[*buttons, ("cancel", "Cancel")],
        inputs=[("card_number", "Card number")] if "card" in types else [],
        status_code=status_code,
    )


def _to_success(session: CheckoutSession) -> Response:
    if session.success_url:
        url = session.success_url.replace("{CHECKOUT_SESSION_ID}", session.id)
        return RedirectResponse(url, status_code=303)
    return message_page("Checkout", ["Thank you: your payment is complete."])


def _title(kind: str) -> str:
    return "3-D Secure" if kind == "3ds" else "Wallet"
