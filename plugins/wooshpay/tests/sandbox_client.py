"""What the WooshPay sandbox tests share: a client speaking to a served sandbox as the
merchant's server does (the secret key, JSON or forms) and as the customer's browser
does (no key, HTML forms, redirects followed by hand)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import httpx
from paycore_wooshpay.sandbox import DEFAULT_SECRET_KEY, SIGNATURE_HEADER, WooshPaySandbox

from paycore.gateways.webhooks import verify_signature
from paycore.sandbox import WebhookReceiver
from paycore.sandbox.server import SandboxServer

AUTHORIZE = {
    "amount": 1000,
    "currency": "USD",
    "confirm": True,
    "capture_method": "manual",
    "payment_method": "pm_card_visa",
}

SESSION = {
    "mode": "payment",
    "success_url": "https://shop.test/done?session={CHECKOUT_SESSION_ID}",
    "cancel_url": "https://shop.test/cart",
    "line_items": [
        {
            "price_data": {
                "currency": "USD",
                "unit_amount": 2000,
                "product_data": {"name": "apple"},
            },
            "quantity": 2,
        }
    ],
    "payment_intent_data": {"metadata": {"paycore_transaction_id": "txn_cs"}},
}


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def error_of(response: httpx.Response) -> tuple[int, str]:
    """The HTTP status and the error code of an error answer."""
    return response.status_code, response.json()["error"]["code"]


class Merchant:
    """Calls to one served sandbox, authenticated with its secret key unless told."""

    def __init__(self, http: httpx.Client, url: str, sandbox: WooshPaySandbox) -> None:
        self.http, self.url, self.sandbox = http, url, sandbox

    def post(
        self,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        form: str | None = None,
        auth: str | None = basic(DEFAULT_SECRET_KEY),
    ) -> httpx.Response:
        """POST ``body`` as JSON, or ``form`` (an encoded form) as it is."""
        headers = {"Idempotency-Key": key} if key else {}
        if auth is not None:
            headers["Authorization"] = auth
        if form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            return self.http.post(self.url + path, content=form, headers=headers)
        return self.http.post(self.url + path, json=body or {}, headers=headers)

    def get(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        auth: str | None = basic(DEFAULT_SECRET_KEY),
    ) -> httpx.Response:
        headers = {"Authorization": auth} if auth is not None else {}
        return self.http.get(self.url + path, params=params, headers=headers)

    def delete(self, path: str) -> httpx.Response:
        return self.http.delete(
            self.url + path, headers={"Authorization": basic(DEFAULT_SECRET_KEY)}
        )

    def ok(self, response: httpx.Response) -> dict[str, Any]:
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def intent(self, key: str | None = None, **changes: Any) -> httpx.Response:
        """Create a payment intent: by default an authorization of 10.00 USD, Visa."""
        return self.post("/v1/payment_intents", {**AUTHORIZE, **changes}, key=key)

    def authorized(self, amount: int = 1000, **changes: Any) -> dict[str, Any]:
        pi = self.ok(self.intent(amount=amount, **changes))
        assert pi["status"] == "requires_capture"
        return pi

    def paid(self, amount: int = 1000, **changes: Any) -> dict[str, Any]:
        pi = self.ok(self.intent(amount=amount, capture_method="automatic", **changes))
        assert pi["status"] == "succeeded"
        return pi

    def pi(self, pi_id: str) -> dict[str, Any]:
        return self.ok(self.get(f"/v1/payment_intents/{pi_id}"))

    def refund(self, pi_id: str, amount: str | int | None = None, **more: Any) -> httpx.Response:
        body = {"payment_intent": pi_id, **more}
        if amount is not None:
            body["amount"] = amount
        return self.post("/v1/refunds", body)

    def session(self, **changes: Any) -> dict[str, Any]:
        return self.ok(self.post("/v1/checkout/sessions", {**SESSION, **changes}))

    def state(self) -> dict[str, Any]:
        body: dict[str, Any] = self.http.get(self.url + "/_sandbox/state").json()
        return body

    # -- the customer's browser ------------------------------------------------------------

    def browse(self, url: str, form: Mapping[str, str] | None = None) -> httpx.Response:
        """GET ``url`` (a path or a full URL), or POST ``form`` to it, without a key."""
        full = url if url.startswith("http") else self.url + url
        if form is None:
            return self.http.get(full)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return self.http.post(full, content=urlencode(form), headers=headers)

    def challenge(self, pi: Mapping[str, Any], result: str) -> httpx.Response:
        """Answer a payment intent's 3-D Secure (or wallet) page like a customer."""
        url = pi["next_action"][pi["next_action"]["type"]]["url"]
        page = self.browse(url)
        assert page.status_code == 200 and 'value="approve"' in page.text, page.text
        return self.browse(url, {"result": result})


def serve(
    serve_sandbox: Callable[[WooshPaySandbox], SandboxServer],
    http: httpx.Client,
    **options: Any,
) -> Merchant:
    """A seeded `WooshPaySandbox` built with ``options``, served, and a `Merchant` for it."""
    sandbox = WooshPaySandbox(seed=0, **options)
    return Merchant(http, serve_sandbox(sandbox).url, sandbox)


def events_received(
    receiver: WebhookReceiver, secrets: str | tuple[str, ...], count: int, now: Callable[[], float]
) -> list[dict[str, Any]]:
    """The first ``count`` deliveries to ``receiver``, each verified against ``secrets``."""
    deliveries = receiver.wait_for(count)
    assert len(deliveries) >= count, f"{len(deliveries)} of {count} deliveries arrived"
    events = []
    for delivery in deliveries[:count]:
        verify_signature(
            delivery.headers[SIGNATURE_HEADER.lower()],
            delivery.body,
            secrets,
            gateway="wooshpay",
            now=now,
        )
        events.append(json.loads(delivery.body))
    return events
