"""The customer's side of the XPAY sandbox: the hosted checkout page a [10005] link opens.

``GET /checkout/{uuid}``: the amount in UAH, the purpose, a ``card_number`` input and
the buttons ``action=pay|fail``; the form posts back to the same URL. On ``pay`` the
test card decides (`paycore_xpay.sandbox_cards`; a number that is not one shows the
form again, 400), on ``fail`` the payment is ``declined``. With ``two_step`` the
partner's ``check`` is asked first (`paycore_xpay.sandbox_callbacks.ask_partner`):
refused, the payment fails ``rejected_by_partner``; unanswered, ``check_failed``.
Then the customer is sent (303) to ``Callback.PaySuccess.URL`` or
``Callback.PayFail.URL`` with ``?state=10|21&xrayOperationID=<OperationID>`` [DOC];
without one, a page says how it ended.

A page past its lifetime answers 410, and its payment fails ``page_expired``; a page
already paid or failed says so; one being paid answers 409. The card number is read,
classified and dropped: it is never shown again, kept or logged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from paycore.money import Money
from paycore.sandbox.base import SandboxError
from paycore.sandbox.pages import form_page, message_page, read_form
from paycore_xpay.sandbox_callbacks import CheckAnswer
from paycore_xpay.sandbox_cards import PAID, InvalidCard, card_outcome
from paycore_xpay.sandbox_operations import DONE, FAILED, Payment
from paycore_xpay.sandbox_state import CHECK_REASONS, PAGE_EXPIRED

if TYPE_CHECKING:
    from paycore_xpay.sandbox import XpaySandbox

__all__ = ["PAGE_PATH", "HostedPage"]

PAGE_PATH = "/checkout/{uuid}"
FAIL_REASON = "declined"  # the customer pressed Fail


class HostedPage:
    """The page's handlers, over one sandbox (its state and two-step setting)."""

    def __init__(self, sandbox: XpaySandbox) -> None:
        self.sandbox = sandbox
        self.state = sandbox.state
        self.title = f"{sandbox.display_name} checkout"

    def routes(self) -> list[BaseRoute]:
        return [
            Route(PAGE_PATH, self.show, methods=["GET"]),
            Route(PAGE_PATH, self.submit, methods=["POST"]),
        ]

    async def show(self, request: Request) -> Response:
        payment = self.state.page(request.path_params["uuid"])
        return self._missing() if payment is None else self._page(payment)

    async def submit(self, request: Request) -> Response:
        form = await read_form(request)
        page_id = request.path_params["uuid"]
        payment = self.state.page(page_id)
        if payment is None:
            return self._missing()
        if not payment.payable:
            return self._page(payment, status_code=409)
        action = form.get("action")
        if action == "fail":
            outcome = FAIL_REASON
        elif action == "pay":
            try:
                outcome = card_outcome(form.get("card_number", ""))
            except InvalidCard as invalid:
                return self._page(payment, notice=str(invalid), status_code=400)
        else:
            return self._page(payment, notice="Choose Pay or Fail.", status_code=400)
        try:
            started = self.state.start(page_id, two_step=self.sandbox.two_step and action == "pay")
        except SandboxError:
            payment = self.state.page(page_id)
            return self._missing() if payment is None else self._page(payment, status_code=409)
        reason = None if outcome == PAID else outcome
        if started.check is not None:
            answer = await self.sandbox.ask_partner(started.payment, started.check)
            self.state.checked(started.check, answer)
            if answer is not CheckAnswer.ACCEPTED:
                reason = CHECK_REASONS[answer]
        return self._back(self.state.finish(started.payment.operation_id, reason))

    # -- shared ----------------------------------------------------------------------------

    def _missing(self) -> Response:
        return message_page(self.title, ["There is no such payment page."], status_code=404)

    def _page(
        self, payment: Payment, *, notice: str | None = None, status_code: int = 200
    ) -> Response:
        if payment.status == FAILED and payment.reason == PAGE_EXPIRED:
            return message_page(
                self.title,
                ["This payment page has expired.", "Ask the shop for a new one."],
                status_code=410,
            )
        if payment.in_progress:
            return message_page(self.title, ["This payment is being taken."], status_code=409)
        if payment.status == DONE:
            return message_page(self.title, ["This payment is paid."], status_code=status_code)
        if payment.status == FAILED:
            return message_page(self.title, ["This payment failed."], status_code=status_code)
        lines = [
            f"{self.sandbox.display_name} sandbox checkout {payment.operation_id}",
            f"Amount: {Money(payment.sum, 'UAH')}",
        ]
        if payment.purpose:
            lines.append(payment.purpose)
        if notice:
            lines.append(notice)
        return form_page(
            self.title,
            lines,
            action=f"/checkout/{payment.uuid}",
            field="action",
            buttons=[("pay", "Pay"), ("fail", "Fail")],
            inputs=[("card_number", "Card number")],
            status_code=status_code,
        )

    def _back(self, payment: Payment) -> Response:
        """To the partner's success or fail URL, with the outcome; a page without one."""
        paid = payment.status == DONE
        url = payment.success_url if paid else payment.fail_url
        if url:
            outcome = urlencode({"state": payment.status, "xrayOperationID": payment.operation_id})
            return RedirectResponse(f"{url}{'&' if '?' in url else '?'}{outcome}", status_code=303)
        said = "Thank you: the payment is done." if paid else "The payment failed."
        return message_page(self.title, [said, "You may close this page."])
