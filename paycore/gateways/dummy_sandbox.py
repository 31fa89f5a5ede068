"""The dummy provider's sandbox: a small REST payments API, faithful to its own rules.

Routes (Bearer API key on ``/v1``; ``Idempotency-Key`` honoured on every POST)::

    GET  /v1/payment_methods?currency=USD&amount=1000
    POST /v1/payments                  {amount, currency, capture, payment_method, reference}
    GET  /v1/payments?reference=…      GET /v1/payments/{id}
    POST /v1/payments/{id}/captures    {amount, currency, final, reference}
    POST /v1/payments/{id}/void        {reference}
    POST /v1/payments/{id}/refunds     {amount, currency, reference}
    GET|POST /3ds/{id}                 the customer's 3-D Secure page (a plain form)
    POST /_sandbox/payments/{id}/settle {"outcome": "succeeded" | "failed"}  (bank transfers)
    POST /_sandbox/gift_cards          {balance, currency?, token?}  (issues a gift card)

Amounts are integers of minor units. Test tokens (sandbox only, never real cards):
``tok_visa`` approves, ``tok_declined`` (card_declined), ``tok_insufficient_funds``,
``tok_expired_card`` decline, ``tok_3ds`` requires the 3-D Secure page. A
``bank_transfer`` (sale only, EUR/GBP/USD, at least 10.00) stays ``processing`` until
settled. A ``gift_card`` pays from a stored balance (``token`` is the card's number, ``gc_…``):
``gc_test_5000`` and ``gc_test_100000`` hold that many minor units, ``gc_test_empty`` nothing;
each card's currency is fixed by its first approved payment. An authorization holds the amount
until captured, voided or expired; more than the balance declines ``insufficient_funds`` and an
unknown number ``incorrect_number``, as card declines do (402). No 3-D Secure for gift cards.
``GET /_sandbox/state`` shows every card's ``balance`` (what may be spent) and ``held``.
Webhooks are signed ``Dummy-Signature: t=…,v1=…`` (see `paycore.gateways.webhooks`).
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Unpack
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from paycore.errors import InvalidRequest
from paycore.gateways.dummy import SIGNATURE_HEADER
from paycore.gateways.dummy_ledger import Ledger, Payment
from paycore.gateways.webhooks import sign
from paycore.money import MAX_MINOR_UNITS, Currency, Money
from paycore.sandbox.base import Sandbox, SandboxError, SandboxOptions
from paycore.sandbox.idempotency import IdempotencyStore, fingerprint
from paycore.sandbox.pages import form_page, message_page, read_form

__all__ = ["DEFAULT_API_KEY", "PAYMENT_METHODS", "TEST_GIFT_CARDS", "TEST_TOKENS", "DummySandbox"]

# A published test key: the sandbox listens on loopback and guards nothing real.
DEFAULT_API_KEY = "sk_test_dummy"

# token -> what happens: None approves, "requires_action" asks for 3-D Secure,
# any other value is the decline code.
TEST_TOKENS: Mapping[str, str | None] = {
    "tok_visa": None,
    "tok_declined": "card_declined",
    "tok_insufficient_funds": "insufficient_funds",
    "tok_expired_card": "expired_card",
    "tok_3ds": "requires_action",
}

# The gift cards every sandbox starts with: number -> balance in minor units (no currency
# until the first payment approved on it).
TEST_GIFT_CARDS: Mapping[str, int] = {
    "gc_test_5000": 5_000,
    "gc_test_100000": 100_000,
    "gc_test_empty": 0,
}

# type -> (display name, currencies or None for all, minimum in major units or None)
PAYMENT_METHODS: Mapping[str, tuple[str, frozenset[str] | None, int | None]] = {
    "card": ("Card", None, None),
    "bank_transfer": ("Bank transfer", frozenset({"EUR", "GBP", "USD"}), 10),
    "gift_card": ("Gift card", None, None),
}

_GIFT_CARD_NUMBER = re.compile(r"gc_[A-Za-z0-9_]{1,64}")

_MAX_KEY_LENGTH = 255


class DummySandbox(Sandbox):
    """The dummy provider on loopback; `DummyGateway` talks to it."""

    name: ClassVar[str] = "dummy"

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        seed: int | None = None,
        **options: Unpack[SandboxOptions],
    ) -> None:
        """``seed`` makes the ids repeat from run to run (recorded exchanges)."""
        super().__init__(**options)
        self._api_key = api_key
        self.ledger = Ledger(emit=self.emit, seed=seed, clock=self.clock)
        self.idempotency = IdempotencyStore(clock=self.clock)
        for token, balance in TEST_GIFT_CARDS.items():
            self.ledger.issue_gift_card(token=token, balance=balance)

    def gateway_config(self, base_url: str) -> dict[str, Any]:
        return {
            "base_url": base_url,
            "api_key": self._api_key,
            "webhook_secret": self.webhook_secrets[0],
        }

    def sign_webhook(self, body: bytes) -> Mapping[str, str]:
        return {SIGNATURE_HEADER: sign(body, self.webhook_secrets, timestamp=int(self.clock()))}

    def snapshot(self) -> dict[str, Any]:
        return self.ledger.snapshot()

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/payment_methods", self.list_payment_methods, methods=["GET"]),
            Route("/v1/payments", self.create_payment, methods=["POST"]),
            Route("/v1/payments", self.list_payments, methods=["GET"]),
            Route("/v1/payments/{payment_id}", self.get_payment, methods=["GET"]),
            Route("/v1/payments/{payment_id}/captures", self.capture, methods=["POST"]),
            Route("/v1/payments/{payment_id}/void", self.void, methods=["POST"]),
            Route("/v1/payments/{payment_id}/refunds", self.refund, methods=["POST"]),
            Route("/3ds/{payment_id}", self.show_3ds, methods=["GET"]),
            Route("/3ds/{payment_id}", self.submit_3ds, methods=["POST"]),
        ]

    def control_routes(self) -> list[BaseRoute]:
        return [
            Route("/_sandbox/payments/{payment_id}/settle", self.settle, methods=["POST"]),
            Route("/_sandbox/gift_cards", self.issue_gift_card, methods=["POST"]),
        ]

    # -- /v1 -----------------------------------------------------------------------------

    async def list_payment_methods(self, request: Request) -> Response:
        self._authenticate(request)
        currency = _currency(request.query_params.get("currency"))
        amount_text = request.query_params.get("amount")
        amount = None
        if amount_text is not None:
            if not (amount_text.isascii() and amount_text.isdigit() and len(amount_text) < 20):
                raise _invalid("amount", "amount must be an integer of minor units")
            amount = _amount(int(amount_text))
        methods = []
        for method, (display_name, currencies, minimum) in PAYMENT_METHODS.items():
            min_amount = None if minimum is None else minimum * 10**currency.exponent
            if currencies is not None and currency.code not in currencies:
                continue
            if amount is not None and min_amount is not None and amount < min_amount:
                continue
            methods.append({"type": method, "display_name": display_name, "min_amount": min_amount})
        return JSONResponse({"object": "list", "currency": currency.code, "data": methods})

    async def create_payment(self, request: Request) -> Response:
        self._authenticate(request)
        body = await _json_object(
            request, ("amount", "currency", "capture", "payment_method", "reference", "return_url")
        )
        amount = _amount(body.get("amount"))
        currency = _currency(body.get("currency"))
        capture = body.get("capture", True)
        if not isinstance(capture, bool):
            raise _invalid("capture", "capture must be true or false")
        method, outcome, gift_card = _method_and_outcome(
            body.get("payment_method"), amount, currency, capture
        )
        reference = _optional_str(body, "reference")
        return_url = _optional_str(body, "return_url", limit=2048)
        action_url = str(request.base_url).rstrip("/") + "/3ds/"
        return self._idempotent(
            request,
            body,
            lambda: self.ledger.create(
                amount=amount,
                currency=currency.code,
                capture=capture,
                method=method,
                outcome=outcome,
                reference=reference,
                return_url=return_url,
                action_url=action_url,
                gift_card=gift_card,
            ),
        )

    async def list_payments(self, request: Request) -> Response:
        self._authenticate(request)
        reference = request.query_params.get("reference")
        payments = self.ledger.find(reference=reference)
        return JSONResponse({"object": "list", "data": payments})

    async def get_payment(self, request: Request) -> Response:
        self._authenticate(request)
        return JSONResponse(self.ledger.get(request.path_params["payment_id"]))

    async def capture(self, request: Request) -> Response:
        self._authenticate(request)
        body = await _json_object(request, ("amount", "currency", "final", "reference"))
        amount = _amount(body.get("amount"))
        currency = _currency(body.get("currency")).code
        final = body.get("final", False)
        if not isinstance(final, bool):
            raise _invalid("final", "final must be true or false")
        reference = _optional_str(body, "reference")
        payment_id = request.path_params["payment_id"]
        return self._idempotent(
            request,
            body,
            lambda: self.ledger.capture(payment_id, amount, currency, final, reference),
        )

    async def void(self, request: Request) -> Response:
        self._authenticate(request)
        body = await _json_object(request, ("reference",))
        reference = _optional_str(body, "reference")
        payment_id = request.path_params["payment_id"]
        return self._idempotent(request, body, lambda: self.ledger.void(payment_id, reference))

    async def refund(self, request: Request) -> Response:
        self._authenticate(request)
        body = await _json_object(request, ("amount", "currency", "reference"))
        amount = _amount(body.get("amount"))
        currency = _currency(body.get("currency")).code
        reference = _optional_str(body, "reference")
        payment_id = request.path_params["payment_id"]
        return self._idempotent(
            request, body, lambda: self.ledger.refund(payment_id, amount, currency, reference)
        )

    # -- the customer's pages ------------------------------------------------------------

    async def show_3ds(self, request: Request) -> Response:
        payment = self.ledger.payment(request.path_params["payment_id"])
        if payment is None:
            return message_page("Unknown payment", ["There is no such payment."], status_code=404)
        if payment.status != "requires_action":
            return message_page("3-D Secure", [f"This payment is already {payment.status}."])
        amount = Money(payment.amount, payment.currency)
        return form_page(
            "3-D Secure",
            [f"Dummy sandbox: confirm the payment {payment.id} of {amount}."],
            action=f"/3ds/{payment.id}",
            field="result",
            buttons=[("approve", "Approve"), ("decline", "Decline")],
        )

    async def submit_3ds(self, request: Request) -> Response:
        payment_id = request.path_params["payment_id"]
        result = (await read_form(request)).get("result")
        if result not in ("approve", "decline"):
            return message_page("3-D Secure", ["Choose Approve or Decline."], status_code=400)
        try:
            payment = self.ledger.complete_action(payment_id, approved=result == "approve")
        except SandboxError as error:
            return message_page("3-D Secure", [error.message], status_code=error.status_code)
        return _back_to_merchant(payment)

    # -- sandbox control -----------------------------------------------------------------

    async def settle(self, request: Request) -> Response:
        outcome = (await _json_object(request, ("outcome",))).get("outcome")
        if outcome not in ("succeeded", "failed"):
            raise _invalid("outcome", 'outcome must be "succeeded" or "failed"')
        payment_id = request.path_params["payment_id"]
        return JSONResponse(self.ledger.settle(payment_id, succeeded=outcome == "succeeded"))

    async def issue_gift_card(self, request: Request) -> Response:
        body = await _json_object(request, ("balance", "currency", "token"))
        balance = body.get("balance")
        if type(balance) is not int or not 0 <= balance <= MAX_MINOR_UNITS:
            raise _invalid("balance", "balance must be an integer of minor units, 0 or more")
        currency = body.get("currency")
        code = None if currency is None else _currency(currency).code
        token = body.get("token")
        if token is not None and not _is_gift_card_number(token):
            raise _invalid("token", "token must be gc_ and 1 to 64 letters, digits or _")
        card = self.ledger.issue_gift_card(balance=balance, currency=code, token=token)
        return JSONResponse(card, status_code=201)

    # -- shared --------------------------------------------------------------------------

    def _authenticate(self, request: Request) -> None:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            key.encode(), self._api_key.encode()
        ):
            raise SandboxError(
                401,
                "invalid_api_key",
                "missing or invalid API key: send Authorization: Bearer <api key>",
                kind="authentication_error",
            )

    def _idempotent(
        self, request: Request, body: Any, carry_out: Callable[[], tuple[int, Any]]
    ) -> Response:
        """Carry out a validated mutation once per ``Idempotency-Key``; replay answers."""
        key = request.headers.get("idempotency-key")
        if key is not None and not 0 < len(key) <= _MAX_KEY_LENGTH:
            raise _invalid("Idempotency-Key", f"must be 1 to {_MAX_KEY_LENGTH} characters")
        return self.answer_once(
            self.idempotency,
            scope=self._api_key,
            key=key,
            fingerprint=fingerprint(request.method, request.url.path, body),
            lock=self.ledger.lock,
            carry_out=carry_out,
            conflict=SandboxError(
                409,
                "idempotency_error",
                "this Idempotency-Key was used with a different request; "
                "use a new key for a new request",
                kind="idempotency_error",
            ),
        )


def _back_to_merchant(payment: Payment) -> Response:
    if payment.return_url:
        separator = "&" if "?" in payment.return_url else "?"
        query = urlencode({"payment_id": payment.id})
        return RedirectResponse(f"{payment.return_url}{separator}{query}", status_code=303)
    return message_page(
        "3-D Secure", [f"The payment is {payment.status}. You may close this page."]
    )


def _method_and_outcome(
    method: Any, amount: int, currency: Currency, capture: bool
) -> tuple[str, str | None, str | None]:
    """The method's type, what paying with it does, and the gift card's number if one.

    See `Ledger.create`: a gift card's outcome is its balance's to decide.
    """
    if not isinstance(method, dict) or method.get("type") not in PAYMENT_METHODS:
        raise _invalid(
            "payment_method", f"payment_method.type must be one of {', '.join(PAYMENT_METHODS)}"
        )
    token = method.get("token")
    if method["type"] == "bank_transfer":
        _check_bank_transfer(amount, currency, capture)
        return "bank_transfer", "processing", None
    if method["type"] == "gift_card":
        # A well-formed number the sandbox does not know is a decline (incorrect_number),
        # as a mistyped card number is; only a malformed one is a bad request.
        if not _is_gift_card_number(token):
            raise SandboxError(
                400,
                "token_invalid",
                "payment_method.token of a gift_card must be its number: gc_ and "
                f"1 to 64 letters, digits or _ (test cards: {', '.join(TEST_GIFT_CARDS)})",
                param="payment_method.token",
            )
        return "gift_card", None, token
    if not isinstance(token, str) or token not in TEST_TOKENS:
        raise SandboxError(
            400,
            "token_invalid",
            f"payment_method.token must be a test token: {', '.join(TEST_TOKENS)}",
            param="payment_method.token",
        )
    return "card", TEST_TOKENS[token], None


def _is_gift_card_number(token: Any) -> bool:
    return isinstance(token, str) and _GIFT_CARD_NUMBER.fullmatch(token) is not None


def _check_bank_transfer(amount: int, currency: Currency, capture: bool) -> None:
    _, currencies, minimum = PAYMENT_METHODS["bank_transfer"]
    if not capture:
        raise SandboxError(
            400,
            "method_not_supported",
            "a bank transfer cannot be authorized, only paid",
            param="capture",
        )
    if currencies is not None and currency.code not in currencies:
        raise SandboxError(
            400,
            "currency_not_supported",
            f"bank transfers take {', '.join(sorted(currencies))}",
            param="currency",
        )
    if minimum is not None and amount < minimum * 10**currency.exponent:
        raise SandboxError(
            400,
            "amount_too_small",
            f"a bank transfer is at least {minimum} {currency.code}",
            param="amount",
        )


async def _json_object(request: Request, allowed: tuple[str, ...]) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise _invalid(None, "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise _invalid(None, "the body must be a JSON object")
    if unknown := sorted(set(body) - set(allowed)):
        raise SandboxError(
            400,
            "parameter_unknown",
            f"unknown parameter(s) {', '.join(name[:40] for name in unknown)}; "
            f"this route takes {', '.join(allowed)}",
            param=unknown[0][:40],
        )
    return body


def _amount(value: Any) -> int:
    # bool is an int in Python, and true is not one cent; floats and strings are refused.
    if type(value) is not int or not 0 < value <= MAX_MINOR_UNITS:
        raise SandboxError(
            400,
            "amount_invalid",
            "amount must be a positive integer of minor units (1050 for 10.50 USD)",
            param="amount",
        )
    return value


def _currency(value: Any) -> Currency:
    try:
        return Currency.of(value)
    except InvalidRequest:
        raise _invalid("currency", "currency must be an ISO 4217 code such as USD") from None


def _optional_str(body: Mapping[str, Any], name: str, limit: int = _MAX_KEY_LENGTH) -> str | None:
    value = body.get(name)
    if value is not None and (not isinstance(value, str) or not 0 < len(value) <= limit):
        raise _invalid(name, f"{name} must be a string of 1 to {limit} characters")
    return value


def _invalid(param: str | None, message: str) -> SandboxError:
    return SandboxError(400, "parameter_invalid", message, param=param)
