"""The customer's browser: a sandbox page's form filled in and submitted over HTTP."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from paycore.sandbox.browser import PageError, submit_form
from paycore.sandbox.pages import form_page, message_page, read_form


async def checkout(request: Request) -> Response:
    return form_page(
        "Pay",
        ["Pay 10.00 USD"],
        action="/pay/submit",
        field="action",
        buttons=[("pay", "Pay"), ("cancel", "Cancel")],
        inputs=[("card_number", "Card number")],
    )


async def submitted(request: Request) -> Response:
    return JSONResponse(await read_form(request))


async def no_form(request: Request) -> Response:
    return message_page("Done", ["Nothing to do here."])


@pytest.fixture
def site(paycore_sandbox_server) -> str:
    app = Starlette(
        routes=[
            Route("/pay", checkout),
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
