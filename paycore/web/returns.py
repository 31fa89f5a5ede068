"""``GET /return/{gateway}?checkout=ID``: the customer back from a provider's hosted page.

The checkout is completed with ``confirm=True``: its gateways are asked about the
payments still unsettled, so the customer learns the outcome even when the
provider's webhook is late. Then a 303 redirect to the merchant's page for the
outcome, with the merchant URL's own query parameters kept and these added:

==================  =====================  ======================================
the checkout        redirected to          added
==================  =====================  ======================================
completed           ``[web] success_url``  ``checkout=…&order=…``
failed              ``[web] failure_url``  ``checkout=…``
still waiting       ``[web] pending_url``  ``checkout=…&status=…`` (``submitted`` …)
                    (else the success URL)
==================  =====================  ======================================

Without such a URL, a short page says the outcome. An unknown gateway or checkout is
a 404 page. Completing is safe to repeat (a reload, the webhook at the same moment):
a checkout finishes once.
"""

from __future__ import annotations

import re
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from paycore.checkout import CheckoutStatus
from paycore.config import WebSettings
from paycore.errors import NotFound
from paycore.web.request_log import request_log

if TYPE_CHECKING:
    from paycore.checkout import AsyncCheckoutService, Checkout
    from paycore.transactions.async_services import AsyncPaymentTransactionServices

__all__ = ["ReturnEndpoint", "outcome_url"]

# A checkout id as paycore makes them; anything else cannot name one.
_CHECKOUT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{title}</title></head>
<body>
<h1>{title}</h1>
<p>{text}</p>
</body>
</html>
"""


def _page(title: str, text: str, *, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(
        _PAGE.format(title=escape(title), text=escape(text)), status_code=status_code
    )


class ReturnEndpoint:
    """Completes a checkout when its customer comes back; see the module docstring."""

    def __init__(
        self,
        services: AsyncPaymentTransactionServices,
        checkout: AsyncCheckoutService,
        web: WebSettings,
    ) -> None:
        self.services = services
        self.checkout = checkout
        self.web = web

    async def back(self, request: Request) -> Response:
        entry = request_log(request)
        if request.path_params["gateway"] not in self.services.drivers:
            entry.reason = "unknown_gateway"
            return _page("Not found", "There is no such payment page.", status_code=404)
        entry.gateway = request.path_params["gateway"]
        checkout_id = request.query_params.get("checkout", "")
        if not _CHECKOUT_ID.fullmatch(checkout_id):
            entry.reason = "unknown_checkout"
            return _page("Not found", "There is no such checkout.", status_code=404)
        entry.checkout = checkout_id
        try:
            checkout = await self.checkout.complete(checkout_id, confirm=True)
        except NotFound:
            entry.reason = "unknown_checkout"
            return _page("Not found", "There is no such checkout.", status_code=404)
        except Exception as error:
            entry.reason = "failed"
            entry.exc_info = error
            return _page(
                "Please try again",
                "We could not confirm your payment just now. Reload this page in a moment.",
                status_code=500,
            )
        entry.reason = _word(checkout)
        url = outcome_url(self.web, checkout)
        if url is None:
            return _page(*_outcome_text(checkout))
        return RedirectResponse(url, status_code=303)


def outcome_url(web: WebSettings, checkout: Checkout) -> str | None:
    """The merchant's page for ``checkout``'s outcome, with what it needs to know added."""
    if checkout.status is CheckoutStatus.COMPLETED:
        added = {"checkout": checkout.id, "order": checkout.order_id or ""}
        return _with_query(web.success_url, added)
    if checkout.status is CheckoutStatus.FAILED:
        return _with_query(web.failure_url, {"checkout": checkout.id})
    return _with_query(web.waiting_url, {"checkout": checkout.id, "status": str(checkout.status)})


def _with_query(url: str | None, added: dict[str, str]) -> str | None:
    """``url`` with ``added`` to its query; its own parameters are kept, ours win."""
    if url is None:
        return None
    parts = urlsplit(url)
    kept = parse_qsl(parts.query, keep_blank_values=True)
    query = [(key, value) for key, value in kept if key not in added]
    query.extend(added.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _word(checkout: Checkout) -> str:
    if checkout.status in (CheckoutStatus.COMPLETED, CheckoutStatus.FAILED):
        return str(checkout.status)
    return "pending"


def _outcome_text(checkout: Checkout) -> tuple[str, str]:
    if checkout.status is CheckoutStatus.COMPLETED:
        return "Thank you", f"Your payment went through. Your order is {checkout.order_id}."
    if checkout.status is CheckoutStatus.FAILED:
        return "Payment failed", "Your payment did not go through."
    return "Payment pending", "We are waiting for your payment to be confirmed."
