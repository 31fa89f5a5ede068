"""The customer's browser: a sandbox page's form filled in and submitted over HTTP."""

from __future__ import annotations

from urllib.parse import parse_qsl

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from paycore.sandbox.browser import PageError, submit_form
from paycore.sandbox.pages import form_page, message_page


async def checkout(request: Request) -> Response:
    return form_page(
        "Pay",
        ["Pay 10.00 USD"],
        action="/pay/submit",
        field="action",
        buttons=[("pay", "Pay"), ("cancel", "Cancel")],
        inputs=[("card_number", "Card number")],
    )


SELECTS = """<form method="post" action="/pay/submit">
  <select name="service"><option value="card">Card</option><option value="bank">Bank</option>
  </select>
  <select name="currency"><option>USD<option selected> EUR </option></select>
  <select name="country"><option value="">Choose</option><option value="UA">Ukraine</option>
  </select>
  <button type="submit" name="action" value="pay">Pay</button>
</form>"""


async def selects(request: Request) -> Response:
    return HTMLResponse(SELECTS)


async def submitted(request: Request) -> Response:
    """What the browser sent, blank fields included."""
    sent = parse_qsl((await request.body()).decode(), keep_blank_values=True)
    return JSONResponse(dict(sent))


async def no_form(request: Request) -> Response:
    return message_page("Done", ["Nothing to do here."])


@pytest.fixture
def site(paycore_sandbox_server) -> str:
    app = Starlette(
        routes=[
            Route("/pay", checkout),
            Route("/choose", selects),
            Route("/pay/submit", submitted, methods=["POST"]),
            Route("/done", no_form),
        ]
    )
    return str(paycore_sandbox_server(app).url)


def test_the_form_is_posted_with_the_fields_filled_in_and_the_button_clicked(
    site: str, http: httpx.Client
) -> None:
    answer = submit_form(http, f"{site}/pay", "pay", {"card_number": "4242"})

    assert answer.json() == {"card_number": "4242", "action": "pay"}


def test_a_select_sends_its_selected_option_or_else_its_first_like_a_browser(
    site: str, http: httpx.Client
) -> None:
    answer = submit_form(http, f"{site}/choose", "pay")
    chosen = submit_form(http, f"{site}/choose", "pay", {"service": "bank", "country": "UA"})

    # The first option; the selected one (its text, no value given); an empty first one.
    assert answer.json() == {"service": "card", "currency": "EUR", "country": "", "action": "pay"}
    assert chosen.json() == {"service": "bank", "currency": "EUR", "country": "UA", "action": "pay"}


@pytest.mark.parametrize(
    ("path", "button", "fields", "problem"),
    [
        ("/done", "pay", {}, "has 0 forms, not one"),
        ("/pay", "refund", {}, "no submit button whose value is 'refund'"),
        ("/pay", "pay", {"cvc": "123"}, "no field named cvc"),
        ("/missing", "pay", {}, "answered 404"),
    ],
)
def test_a_page_a_customer_could_not_use_is_a_page_error_saying_why(
    site: str, http: httpx.Client, path: str, button: str, fields: dict[str, str], problem: str
) -> None:
    with pytest.raises(PageError, match=problem):
        submit_form(http, f"{site}{path}", button, fields)
