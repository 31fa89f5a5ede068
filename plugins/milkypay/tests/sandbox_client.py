"""What the MilkyPay sandbox tests share: a client speaking to a served sandbox as the
merchant's server does (HTTP Basic, JSON:API bodies with exact decimals) and as the
customer's browser does (no key, HTML forms, redirects followed by hand), and an
independent check of a callback's signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import httpx
from paycore_milkypay.sandbox import (
    DEFAULT_API_KEY,
    DEFAULT_COMMERCE_ACCOUNT_ID,
    DEFAULT_PUBLIC_KEY,
    MilkyPaySandbox,
)

from paycore.gateways.json_codec import decode_json, encode_json
from paycore.sandbox import ReceivedWebhook, WebhookReceiver
from paycore.sandbox.server import SandboxServer

SUCCESS_URL = "https://shop.test/paid"
FAIL_URL = "https://shop.test/failed"
RETURN_URLS = {"success": SUCCESS_URL, "fail": FAIL_URL, "pending": SUCCESS_URL}


def basic(account: str, key: str) -> str:
    return "Basic " + base64.b64encode(f"{account}:{key}".encode()).decode()


AUTH = basic(DEFAULT_COMMERCE_ACCOUNT_ID, DEFAULT_API_KEY)


def by_test_service(rate: int | str, currency: str = "USD") -> dict[str, Any]:
    """The attributes paying with the test service at ``rate`` percent."""
    return {
        "service": f"test_{currency.lower()}",
        "service_fields": {"test_details_success_rate": str(rate)},
    }


def body_of(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    """The answer's JSON (decimals exact), once its status is ``status``."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = decode_json(response.content)
    return body


def errors_of(response: httpx.Response) -> tuple[int, list[str]]:
    """The HTTP status and the error codes of an error answer, checked for its shape."""
    body = decode_json(response.content)
    codes = [error["code"] for error in body["errors"]]
    assert body["error_codes"] == codes
    assert body["request_id"] == response.headers["x-request-id"]
    assert all(error["status"] == str(response.status_code) for error in body["errors"])
    return response.status_code, codes


def signature_of(body: bytes, secret: str) -> str:
    """``base64(sha1(secret + body + secret))``, computed here, not by the sandbox."""
    digest = hashlib.sha1(secret.encode() + body + secret.encode()).digest()  # noqa: S324
    return base64.b64encode(digest).decode()


def callback(delivery: ReceivedWebhook, secret: str) -> dict[str, Any]:
    """A delivery's body, once its ``X-Signature`` is checked against ``secret``."""
    assert delivery.headers["content-type"] == "application/json"
    expected = signature_of(delivery.body, secret)
    assert hmac.compare_digest(delivery.headers["x-signature"], expected)
    body: dict[str, Any] = decode_json(delivery.body)
    return body


class Merchant:
    """Calls to one served sandbox, authenticated with its default keys unless told."""

    def __init__(self, http: httpx.Client, url: str, sandbox: MilkyPaySandbox) -> None:
        self.http, self.url, self.sandbox = http, url, sandbox
        self._references = itertools.count(1)

    def reference(self) -> str:
        return f"ref_{next(self._references)}"

    def post(
        self, path: str, body: Mapping[str, Any] | None = None, *, auth: str | None = AUTH
    ) -> httpx.Response:
        headers = {"Content-Type": "application/json", "Accept": "application/vnd.api+json"}
        if auth is not None:
            headers["Authorization"] = auth
        return self.http.post(self.url + path, content=encode_json(body or {}), headers=headers)

    def get(
        self, path: str, params: Mapping[str, Any] | None = None, *, auth: str | None = AUTH
    ) -> httpx.Response:
        headers = {"Authorization": auth} if auth is not None else {}
        return self.http.get(self.url + path, params=params, headers=headers)

    # -- the Private API -------------------------------------------------------------------

    def create(self, **attributes: Any) -> httpx.Response:
        """Create an invoice: by default 10.00 USD, charged, on the hosted page."""
        defaults = {
            "reference_id": self.reference(),
            "currency": "USD",
            "amount": Decimal("10.00"),
            "test_mode": True,
        }
        data = {"type": "payment-invoices", "attributes": {**defaults, **attributes}}
        return self.post("/api/payment-invoices", {"data": data})

    def invoice(self, **attributes: Any) -> dict[str, Any]:
        """A new invoice's document, created 201."""
        document: dict[str, Any] = body_of(self.create(**attributes), 201)["data"]
        return document

    def paid(self, amount: Decimal = Decimal("100.00"), **attributes: Any) -> dict[str, Any]:
        invoice = self.invoice(amount=amount, **{**by_test_service(100), **attributes})
        assert invoice["attributes"]["status"] == "processed"
        return invoice

    def held(self, amount: Decimal = Decimal("100.00"), **attributes: Any) -> dict[str, Any]:
        attributes = {"flow": "delayed_charge", **by_test_service(100), **attributes}
        invoice = self.invoice(amount=amount, **attributes)
        assert invoice["attributes"]["status"] == "processing"
        assert invoice["attributes"]["reserved_amount"] == amount
        return invoice

    def read(self, cpi: str) -> dict[str, Any]:
        """The invoice's attributes now."""
        attributes: dict[str, Any] = body_of(self.get(f"/api/payment-invoices/{cpi}"))["data"][
            "attributes"
        ]
        return attributes

    def process(
        self, cpi: str, action: str, amount: Any = None, reference_id: str | None = None
    ) -> httpx.Response:
        attributes: dict[str, Any] = {
            "action": action,
            "reference_id": reference_id or self.reference(),
        }
        if amount is not None:
            attributes["amount"] = amount
        body = {"data": {"type": "payment-invoices", "attributes": attributes}}
        return self.post(f"/api/payment-invoices/{cpi}/process", body)

    def refund(
        self, cpi: str, amount: Any = None, reference_id: str | None = None, **more: Any
    ) -> httpx.Response:
        attributes = {"invoiceId": cpi, "reference_id": reference_id or self.reference(), **more}
        if amount is not None:
            attributes["amount"] = amount
        return self.post(
            f"/api/payment-invoices/{cpi}/refund",
            {"data": {"type": "refund", "attributes": attributes}},
        )

    def state(self) -> dict[str, Any]:
        body: dict[str, Any] = decode_json(self.http.get(self.url + "/_sandbox/state").content)
        return body

    # -- the customer's browser ------------------------------------------------------------

    def browse(self, url: str, form: Mapping[str, str] | None = None) -> httpx.Response:
        """GET ``url`` (a path or a full URL), or POST ``form`` to it, without a key."""
        full = url if url.startswith("http") else self.url + url
        if form is None:
            return self.http.get(full)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return self.http.post(full, content=urlencode(form), headers=headers)

    def link(self, **params: str) -> str:
        """A payment link's URL: the public key, 10.50 USD, and ``params``."""
        query = {"public_key": DEFAULT_PUBLIC_KEY, "amount": "10.50", "currency": "USD", **params}
        return f"{self.url}/hpp/?{urlencode(query)}"


def serve(
    serve_sandbox: Callable[[MilkyPaySandbox], SandboxServer],
    http: httpx.Client,
    sandbox_type: type[MilkyPaySandbox] = MilkyPaySandbox,
    **options: Any,
) -> Merchant:
    """A seeded sandbox built with ``options``, served, and a `Merchant` for it."""
    sandbox = sandbox_type(**{"seed": 0, **options})
    return Merchant(http, serve_sandbox(sandbox).url, sandbox)


def callbacks(receiver: WebhookReceiver, count: int, secret: str) -> list[dict[str, Any]]:
    """The first ``count`` deliveries to ``receiver``, each signature checked."""
    deliveries = receiver.wait_for(count)
    assert len(deliveries) >= count, f"{len(deliveries)} of {count} callbacks arrived"
    return [callback(delivery, secret) for delivery in deliveries[:count]]
