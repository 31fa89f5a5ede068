"""What the XPAY sandbox tests share: a partner speaking to a served sandbox as the
partner's server does, and as the customer's browser does.

The partner seals each request's ``Data`` for XPAY's public key and signs it with its
own private key, both taken from the sandbox's ``gateway_config``, and opens the
answers the same way (`paycore_xpay.envelope`), without the gateway plugin: the
sandbox is tested on its own. RSA keys are generated once per test session.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from attrs import frozen
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from paycore_xpay.envelope import seal, unseal
from paycore_xpay.keys import generate_private_key, private_key_from_pem, private_pem
from paycore_xpay.keys import public_key_from_pem as public_key
from paycore_xpay.sandbox import XpaySandbox

from paycore.gateways.json_codec import decode_json, encode_json
from paycore.sandbox.server import SandboxServer

SUCCESS_URL = "https://shop.test/paid"
FAIL_URL = "https://shop.test/failed"
DATE_TIME = "2026-01-01 00:00:00"
PAYING_CARD = "4242424242424242"
CHECKOUT, STATUS, REFUND = 10005, 20003, 30203


@functools.cache
def sandbox_keys() -> dict[str, str]:
    """XPAY's and the partner's private keys, as PEM: made once, shared by every test."""
    return {
        "xpay_private_key": private_pem(generate_private_key()),
        "partner_private_key": private_pem(generate_private_key()),
    }


@functools.cache
def _private_key(pem: str) -> RSAPrivateKey:
    return private_key_from_pem(pem)  # some 50 ms: the key is checked


@frozen
class Answer:
    """An answer of the endpoint: its HTTP status, ``Code``, ``Message`` and ``Data``
    (opened and verified when ``Code`` is "200", else as sent)."""

    status: int
    code: str
    message: str
    data: Any
    body: Mapping[str, Any]

    @property
    def ok(self) -> dict[str, Any]:
        """The ``Data`` of a success, asserted to be one."""
        assert (self.status, self.code) == (200, "200"), (self.status, self.body)
        assert isinstance(self.data, dict)
        return self.data


class Partner:
    """Calls to one served sandbox with the config its ``gateway_config`` gives."""

    def __init__(self, http: httpx.Client, url: str, sandbox: XpaySandbox) -> None:
        self.http, self.url, self.sandbox = http, url, sandbox
        config = sandbox.gateway_config(url)
        self.endpoint: str = config["base_url"]
        self.token: str = config["partner_token"]
        self.terminal_id: str = config["terminal_id"]
        self.key = _private_key(config["partner_private_key"])
        self.xpay_key = public_key(config["xpay_public_key"])
        self._ids = itertools.count(1)

    def transaction(
        self, transaction_id: str | None = None, date_time: str = DATE_TIME
    ) -> dict[str, str]:
        """A ``Transaction`` block: a new TransactionID unless one is given."""
        return {
            "TransactionID": transaction_id or f"txn_{next(self._ids)}",
            "TerminalID": self.terminal_id,
            "DateTime": date_time,
        }

    # -- the wire ----------------------------------------------------------------------------

    def envelope(
        self, operation_type: Any, data: Any, *, token: str | None = None, **partner: Any
    ) -> dict[str, Any]:
        """A request envelope: ``data`` sealed for XPAY and signed by the partner."""
        sealed = seal(data, recipient=self.xpay_key, signer=self.key)
        header = {
            "PartnerToken": self.token if token is None else token,
            "OperationType": operation_type,
            "Locale": "uk",
            **partner,
        }
        return {"Partner": header, **sealed.as_fields()}

    def post(self, body: Any) -> httpx.Response:
        content = body if isinstance(body, bytes) else encode_json(body)
        return self.http.post(
            self.endpoint, content=content, headers={"Content-Type": "application/json"}
        )

    def send(self, body: Any) -> Answer:
        return self.read(self.post(body))

    def call(self, operation_type: Any, data: Any, **options: Any) -> Answer:
        return self.send(self.envelope(operation_type, data, **options))

    def read(self, response: httpx.Response) -> Answer:
        """The answer, opened when it is a success; its HTTP status checked against its
        ``Code`` and an error's shape checked."""
        body = decode_json(response.content)
        code, message = body["Code"], body["Message"]
        assert response.status_code == int(code), (response.status_code, code)
        assert response.headers["content-type"] == "application/json"
        if code == "200":
            assert message == "OK"
            data = unseal(body, recipient=self.key, sender=self.xpay_key)
        else:
            assert (body["Data"], body["KeyAES"], body["Sign"]) == (None, "", "")
            data = None
        return Answer(response.status_code, code, message, data, body)

    # -- the operations ------------------------------------------------------------------

    def checkout_data(self, **fields: Any) -> dict[str, Any]:
        """[10005] ``Data``: 100.00 UAH, an order, both return URLs and ``fields``."""
        number = next(self._ids)
        data = {
            "PaymentSum": 10_000,
            "Order": f"order_{number}",
            "Purpose": f"Payment order_{number}",
            "Callback": {"PaySuccess": {"URL": SUCCESS_URL}, "PayFail": {"URL": FAIL_URL}},
            "Transaction": self.transaction(),
            **fields,
        }
        return {name: value for name, value in data.items() if value is not None}

    def checkout(self, **fields: Any) -> Answer:
        return self.call(CHECKOUT, self.checkout_data(**fields))

    def link(self, **fields: Any) -> dict[str, Any]:
        """A new checkout link's ``Data`` (OperationID, URI …)."""
        return self.checkout(**fields).ok

    def status(self, **query: Any) -> Answer:
        return self.call(STATUS, query)

    def operation(self, operation_id: int) -> dict[str, Any]:
        """What [20003] says of ``operation_id`` now."""
        return self.status(OperationID=operation_id).ok

    def refund(
        self, txn_id: str, amount: int | None = None, transaction_id: str | None = None
    ) -> Answer:
        data: dict[str, Any] = {"Transaction": self.transaction(transaction_id), "TxnID": txn_id}
        if amount is not None:
            data["Sum"] = amount
        return self.call(REFUND, data)

    def paid(self, **fields: Any) -> dict[str, Any]:
        """A payment made on its page with a paying card: its [20003] ``Data``."""
        link = self.link(**fields)
        answer = self.pay(link["URI"])
        assert answer.status_code == 303, answer.text
        paid = self.operation(link["OperationID"])
        assert paid["OperationStatus"] == "10"
        return paid

    def state(self) -> dict[str, Any]:
        """The sandbox's state, over HTTP."""
        body: dict[str, Any] = decode_json(self.http.get(self.url + "/_sandbox/state").content)
        return body

    # -- the customer's browser ----------------------------------------------------------

    def browse(self, url: str, form: Mapping[str, str] | None = None) -> httpx.Response:
        """GET the page at ``url``, or POST ``form`` to it."""
        if form is None:
            return self.http.get(url)
        return self.http.post(url, data=dict(form))

    def pay(self, url: str, card: str = PAYING_CARD) -> httpx.Response:
        return self.browse(url, {"action": "pay", "card_number": card})


def redirect_of(response: httpx.Response) -> tuple[str, dict[str, str]]:
    """Where a 303 sends the customer: the URL without its query, and the query."""
    assert response.status_code == 303, response.text
    parts = urlsplit(response.headers["location"])
    return parts._replace(query="").geturl(), dict(parse_qsl(parts.query))


def serve(
    serve_sandbox: Callable[[XpaySandbox], SandboxServer], http: httpx.Client, **options: Any
) -> Partner:
    """A seeded sandbox with the session's keys and ``options``, served, and its partner."""
    sandbox = XpaySandbox(**{"seed": 0, **sandbox_keys(), **options})
    return Partner(http, serve_sandbox(sandbox).url, sandbox)
