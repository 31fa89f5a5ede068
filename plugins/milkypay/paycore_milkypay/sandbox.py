"""The MilkyPay sandbox: the Corefy platform (MilkyPay, Paytone and other white labels)
on loopback, speaking the wire protocol the gateway speaks (providers.md §1 for facts).

Auth: the Private API (``/api/…``) takes HTTP Basic ``<commerce_account_id>:<api_key>``;
the Public API (``/public-api/…``) the ``public_key`` in the JSON body; a wrong one is
401. Bodies are JSON:API documents (``{"data": {"type", "attributes"}}``; the Public
API's are flat), read with exact decimals: amounts are JSON numbers of major units
(``100.55``, ``1000`` JPY, ``1.005`` KWD), written back exactly. Times are unix
seconds. Every answer carries ``X-Request-Id``; an error is
``{"errors": [{"status", "code", "title", "detail", "source"}], "request_id",
"error_type", "error_codes"}``, a 422 listing every problem found. Routes::

    POST /public-api/payment-prerequest          the services for a currency and amount
    POST /public-api/payment-invoices            GET /public-api/payment-invoices/{id}
    POST /api/payment-invoices                   GET /api/payment-invoices/{id}
    GET  /api/payment-invoices?filter[reference_id]=…&filter[status]=…&page[number]=…&page[size]=…
    POST /api/payment-invoices/{id}/process      {"action": "capture"|"void", "amount"?, …}
    POST /api/payment-invoices/{id}/terminate    POST /api/payment-invoices/{id}/refund
    GET|POST /hpp/?cpi=…   GET /hpp/?public_key=…&amount=…&currency=…   GET|POST /hpp/3ds/{id}
    GET  /widget/payment-widget.js
    POST /_sandbox/invoices/{id}/expire          POST /_sandbox/invoices/{id}/chargeback {"amount"?}
    POST /_sandbox/refunds/{id}/settle           {"outcome": "processed"|"process_failed"}

Callbacks go to the invoice's ``callback_url``, else the sandbox's ``webhook_url``, on
every change after creation: ``{"data": <invoice>, "included": [<refunds>]}``, signed
``X-Signature: base64(sha1(secret + body + secret))`` with the first webhook secret
(the gateway's ``secret_key``), retried at ``60 * k * (k + 1) / 2`` seconds (k = 0…99).

[PROPOSAL] where the platform's documentation is silent: the ``/process`` path and body
(capture, void) and ``/terminate``; the 7-day reserve; resolutions (``declined``,
``insufficient_funds``, ``expired_card``, ``authentication_failed``,
``fraud_suspected``, ``voided``, ``terminated``, ``expired``); refunds in ``included``;
the error body and codes; the service catalogue, test cards and 3-D Secure page
(`paycore_milkypay.sandbox_services`); the widget script; the ``source`` values
(``api``, ``public_api``, ``hpp``); one namespace for every ``reference_id``; and the
Public API refusing ``callback_url``. Not simulated: ``/public-api/payment-invoices/
process`` (the auto-submitting form), customers and payment requests in ``included``,
a lapse of the reserve (a capture after ``reserve_expires`` is refused; a void is not).
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import hashlib
import hmac
import threading
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Unpack

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paycore.sandbox.base import DEFAULT_WEBHOOK_TARGET, Sandbox, SandboxError, SandboxOptions
from paycore.sandbox.responses import ExactJSONResponse
from paycore.sandbox.state import IdGenerator
from paycore_milkypay.sandbox_api import ApiRoutes
from paycore_milkypay.sandbox_pages import HostedPages
from paycore_milkypay.sandbox_requests import Problems, Reader, read_json_body
from paycore_milkypay.sandbox_state import INVOICE_LIFETIME, MilkyPayState

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_COMMERCE_ACCOUNT_ID",
    "DEFAULT_PUBLIC_KEY",
    "REQUEST_ID_HEADER",
    "RETRY_SCHEDULE",
    "SIGNATURE_HEADER",
    "MilkyPaySandbox",
    "PaytoneSandbox",
]

# Published test values: the sandbox listens on loopback and guards nothing real.
DEFAULT_PUBLIC_KEY = "pk_test_milkypay"
DEFAULT_COMMERCE_ACCOUNT_ID = "coma_sandbox"
DEFAULT_API_KEY = "sandbox_api_key"
SIGNATURE_HEADER = "X-Signature"
REQUEST_ID_HEADER = "X-Request-Id"
# "1 min, then +2, +3, +4 … minutes, up to 100 attempts".
RETRY_SCHEDULE: tuple[float, ...] = tuple(60.0 * k * (k + 1) / 2 for k in range(100))

_ERROR_TYPES = {
    400: "bad_request",
    401: "authentication",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    422: "validation",
    429: "rate_limit",
}
_TITLES = {422: "Validation error", 401: "Unauthorized", 403: "Forbidden", 404: "Not found"}
# The request being answered, for its error body (set by `_RequestIds`).
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "milkypay_sandbox_request_id", default=None
)


class MilkyPaySandbox(Sandbox):
    """The Corefy platform on loopback; the MilkyPay gateway talks to it (``base_url``).

    ``refunds_pending`` leaves new refunds ``processing`` until
    ``POST /_sandbox/refunds/{id}/settle``; ``public_creation=False`` forbids invoices
    through the Public API and payment links (403); ``invoice_lifetime`` is how long an
    unpaid invoice lives (seconds); ``seed`` makes ids and the test service's draws
    repeat from run to run.
    """

    name: ClassVar[str] = "milkypay"
    display_name: ClassVar[str] = "MilkyPay"
    default_public_key: ClassVar[str] = DEFAULT_PUBLIC_KEY
    default_commerce_account_id: ClassVar[str] = DEFAULT_COMMERCE_ACCOUNT_ID
    # "The merchant must answer HTTP 200; any other code is a failure" (providers.md §1).
    webhook_accepted_statuses: ClassVar[frozenset[int] | None] = frozenset({200})

    def __init__(
        self,
        *,
        public_key: str | None = None,
        commerce_account_id: str | None = None,
        api_key: str = DEFAULT_API_KEY,
        seed: int | None = None,
        refunds_pending: bool = False,
        public_creation: bool = True,
        invoice_lifetime: int = INVOICE_LIFETIME,
        **options: Unpack[SandboxOptions],
    ) -> None:
        options.setdefault("webhook_schedule", RETRY_SCHEDULE)
        super().__init__(**options)
        self.public_key = public_key or self.default_public_key
        self.commerce_account_id = commerce_account_id or self.default_commerce_account_id
        self._api_key = api_key
        self.public_creation = public_creation
        self.state = MilkyPayState(
            emit=self._callback,
            connect=self._connect,
            seed=seed,
            clock=self.clock,
            refunds_pending=refunds_pending,
            invoice_lifetime=invoice_lifetime,
        )
        self._request_ids = IdGenerator(None if seed is None else seed + 1)
        self._callback_urls: set[str] = set()
        self._callback_lock = threading.Lock()

    def gateway_config(self, base_url: str) -> dict[str, Any]:
        return {
            "base_url": base_url,
            "public_key": self.public_key,
            "commerce_account_id": self.commerce_account_id,
            "api_key": self._api_key,
            "secret_key": self.webhook_secrets[0],
            "test_mode": True,
        }

    def sign_webhook(self, body: bytes) -> Mapping[str, str]:
        secret = self.webhook_secrets[0].encode()
        digest = hashlib.sha1(secret + body + secret).digest()  # noqa: S324 - the platform's
        return {SIGNATURE_HEADER: base64.b64encode(digest).decode("ascii")}

    def snapshot(self) -> dict[str, Any]:
        return self.state.snapshot()

    def webhook_targets(self, event: Mapping[str, Any]) -> Iterable[str]:
        url = event["data"]["attributes"].get("callback_url")
        return (_callback_target(url),) if url else (DEFAULT_WEBHOOK_TARGET,)

    def middleware(self) -> list[Middleware]:
        return [Middleware(_RequestIds, ids=self._request_ids)]

    def error_body(self, error: SandboxError) -> dict[str, Any]:
        problems = error.details.get("problems") or [
            {"code": error.code, "detail": error.message, "pointer": error.details.get("pointer")}
        ]
        errors = []
        for problem in problems:
            entry = {
                "status": str(error.status_code),
                "code": problem["code"],
                "title": _TITLES.get(error.status_code, "Error"),
                "detail": problem["detail"],
            }
            pointer = problem["pointer"]
            if pointer:
                entry["source"] = {"pointer" if pointer.startswith("/") else "parameter": pointer}
            errors.append(entry)
        return {
            "errors": errors,
            "request_id": _request_id.get(),
            "error_type": _ERROR_TYPES.get(error.status_code, "server_error"),
            "error_codes": [entry["code"] for entry in errors],
        }

    def routes(self) -> list[BaseRoute]:
        return [*ApiRoutes(self).routes(), *HostedPages(self).routes()]

    def control_routes(self) -> list[BaseRoute]:
        return [
            Route("/_sandbox/invoices/{id}/expire", self.expire_invoice, methods=["POST"]),
            Route("/_sandbox/invoices/{id}/chargeback", self.charge_back, methods=["POST"]),
            Route("/_sandbox/refunds/{id}/settle", self.settle_refund, methods=["POST"]),
        ]

    # -- control routes ------------------------------------------------------------------

    async def expire_invoice(self, request: Request) -> Response:
        return ExactJSONResponse(self.state.expire(request.path_params["id"]))

    async def charge_back(self, request: Request) -> Response:
        cpi = request.path_params["id"]
        reader = Reader(await read_json_body(request), Problems(), "")
        reader.only("amount")
        amount = reader.amount("amount", self.state.invoice(cpi).currency, required=False)
        reader.problems.check()
        return ExactJSONResponse(self.state.chargeback(cpi, amount))

    async def settle_refund(self, request: Request) -> Response:
        reader = Reader(await read_json_body(request), Problems(), "")
        reader.only("outcome")
        outcome = reader.string("outcome", required=True, choices=("processed", "process_failed"))
        reader.problems.check()
        return ExactJSONResponse(
            self.state.settle(request.path_params["id"], processed=outcome == "processed")
        )

    # -- what every route shares ---------------------------------------------------------

    def authenticate(self, request: Request) -> None:
        """HTTP Basic with the commerce account id and the API key, else 401."""
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        account, key = "", ""
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            account, _, key = decoded.partition(":")
        # Both are compared whatever the first gives: the time taken tells nothing.
        matched = hmac.compare_digest(account.encode(), self.commerce_account_id.encode())
        matched &= hmac.compare_digest(key.encode(), self._api_key.encode())
        if not matched:
            raise SandboxError(
                401,
                "invalid_credentials",
                "send Authorization: Basic base64(<commerce_account_id>:<api_key>)",
            )

    def public_key_matches(self, key: object) -> bool:
        return isinstance(key, str) and hmac.compare_digest(key.encode(), self.public_key.encode())

    def check_public_key(self, key: object) -> None:
        """The body's ``public_key`` must be the account's, else 401."""
        if not self.public_key_matches(key):
            raise SandboxError(401, "invalid_public_key", "public_key is missing or unknown")

    def check_public_creation(self) -> None:
        if not self.public_creation:
            raise SandboxError(
                403,
                "public_creation_forbidden",
                "this account forbids creating payment invoices through the Public API",
            )

    # -- callbacks -----------------------------------------------------------------------

    def _callback(self, body: dict[str, Any], event_id: str) -> None:
        self.emit(body, event_id=event_id)

    def _connect(self, url: str) -> None:
        """Deliver to ``url`` too (once: a second add would drop its pending deliveries)."""
        with self._callback_lock:
            if url in self._callback_urls:
                return
            self._callback_urls.add(url)
        self.add_webhook_target(_callback_target(url), url, sign=self.sign_webhook)


class PaytoneSandbox(MilkyPaySandbox):
    """Paytone, a white label of the same platform: its own name and test keys."""

    name: ClassVar[str] = "paytone"
    display_name: ClassVar[str] = "Paytone"
    default_public_key: ClassVar[str] = "pk_test_paytone"
    default_commerce_account_id: ClassVar[str] = "coma_paytone"


def _callback_target(url: str) -> str:
    return f"callback_url:{url}"


class _RequestIds:
    """Stamps every answer with ``X-Request-Id: req_…`` (and error bodies with the id)."""

    def __init__(self, app: ASGIApp, ids: IdGenerator) -> None:
        self.app, self.ids = app, ids

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self.ids.new("req")
        token = _request_id.set(request_id)

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, stamped)
        finally:
            _request_id.reset(token)
