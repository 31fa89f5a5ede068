"""The WooshPay sandbox: WooshPay's Stripe-shaped API on loopback, speaking the wire
protocol the gateway speaks (providers.md §3 for the facts).

Auth: HTTP Basic with the secret key as user and an empty password (``Bearer <key>``
too); ``POST /v1/payment_methods`` also takes the publishable key. Bodies are JSON, or
forms in bracket notation (``metadata[k]=v``). ``Idempotency-Key`` is honoured on every
POST for 24 h per account: the same request is answered again with
``Idempotent-Replayed: true`` and done once; another request under the key is 409
``idempotency_error``; a request refused by validation is not remembered. Every answer
carries ``Request-Id``. Amounts are integers of minor units (a refund's ``amount`` may
be a string of digits); objects' ``created`` is in milliseconds, events' ``created`` and
sessions' ``expires_at`` in seconds. Routes, in the order of the protocol notes::

    POST /v1/payment_methods        GET /v1/payment_methods/{id}
    POST /v1/payment_methods/{id}/attach   POST /v1/payment_methods/{id}/detach
    POST /v1/customers   GET /v1/customers/{id}   GET /v1/customers/{id}/payment_methods
    POST /v1/payment_intents   GET /v1/payment_intents   GET /v1/payment_intents/search
    GET  /v1/payment_intents/{id}   POST /v1/payment_intents/{id}/confirm|capture|cancel
    POST /v1/refunds   GET /v1/refunds?payment_intent=…   GET /v1/refunds/{id}
    POST /v1/checkout/sessions   GET /v1/checkout/sessions   GET /v1/checkout/sessions/{id}
    GET  /v1/checkout/sessions/{id}/line_items   POST /v1/checkout/sessions/{id}/expire
    POST /v1/products   GET /v1/products/{id}   POST /v1/prices   GET /v1/prices/{id}
    POST /v1/payment_links   GET|POST /v1/payment_links/{id}
    GET|POST /pay/{cs_id}   GET /link/{plink_id}   GET|POST /3ds/{pi_id}   GET|POST /wallet/{pi_id}
    POST /v1/webhook_endpoints   GET /v1/webhook_endpoints
    GET|POST|DELETE /v1/webhook_endpoints/{id}
    GET  /v1/events   GET /v1/events/{id}
    POST /_sandbox/refunds/{id}/settle   {"outcome": "succeeded" | "failed", "failure_reason"?}

Test cards — SANDBOX ONLY, not WooshPay's (its own are not public): 4242424242424242
and 5555555555554444 succeed; 4000000000000002 is declined (``card_declined`` /
``generic_decline``); 4000000000009995 ``insufficient_funds``; 4000000000009987
``lost_card``; 4000000000009979 ``stolen_card``; 4100000000000019 ``fraudulent``;
4000000000000069 ``expired_card``; 4000000000000127 ``incorrect_cvc``;
4000000000003220 asks for 3-D Secure (``requires_action``; off-session: 402
``authentication_required``). Another Luhn-valid number succeeds; an invalid one is 402
``incorrect_number``. Ready-made ids, copied into a new ``pm_…`` on each use:
``pm_card_visa``, ``pm_card_mastercard``, ``pm_card_declined``,
``pm_card_insufficient_funds``, ``pm_card_3ds``, ``pm_card_expired``. Any other
documented ``payment_method_types`` value (``alipay`` …) redirects to ``/wallet/{pi_id}``.

[PROPOSAL] where the documentation is silent (providers.md §3; Stripe's behaviour
followed): the confirm/capture/cancel/checkout paths; the statuses before
``requires_action``; the error body and codes; refund statuses; multiple partial
refunds; idempotency (24 h, per account, 409 on reuse); search syntax; creating payment
links; ``payment_intent.amount_capturable_updated``; ``checkout.session.*`` events (only
with ``checkout_events=True``); a session's ``payment_status`` ``unpaid`` while only
authorized; a wallet's ``next_action`` ``redirect_to_url``; the 7-day authorization;
the retry schedule (18 attempts over 72 h, exponential); the test cards above.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Unpack

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paycore.gateways.webhooks import sign
from paycore.sandbox.base import Sandbox, SandboxError, SandboxOptions
from paycore.sandbox.idempotency import IdempotencyStore, fingerprint
from paycore.sandbox.state import IdGenerator
from paycore.sandbox.webhook_sender import exponential_schedule
from paycore_wooshpay.sandbox_api import ApiRoutes
from paycore_wooshpay.sandbox_checkout import WooshPayState
from paycore_wooshpay.sandbox_pages import HostedPages
from paycore_wooshpay.sandbox_params import Params, invalid
from paycore_wooshpay.sandbox_state import Answer

__all__ = [
    "DEFAULT_PUBLISHABLE_KEY",
    "DEFAULT_SECRET_KEY",
    "RETRY_SCHEDULE",
    "SIGNATURE_HEADER",
    "WooshPaySandbox",
]

# Published test keys: the sandbox listens on loopback and guards nothing real.
DEFAULT_SECRET_KEY = "sk_test_wooshpay"  # noqa: S105
DEFAULT_PUBLISHABLE_KEY = "pk_test_wooshpay"
SIGNATURE_HEADER = "Wooshpay-Signature"
# "18 times in 72 hours", with exponential back-off.
RETRY_SCHEDULE = exponential_schedule(18, 72 * 3600, first_gap=60)

_MAX_IDEMPOTENCY_KEY = 255


class WooshPaySandbox(Sandbox):
    """WooshPay on loopback; the WooshPay gateway talks to it (``base_url`` in its config).

    ``checkout_events`` emits ``checkout.session.completed``/``expired`` too;
    ``refunds_pending`` leaves new refunds ``pending`` until
    ``POST /_sandbox/refunds/{id}/settle``. ``seed`` makes ids repeat from run to run.
    """

    name: ClassVar[str] = "wooshpay"

    def __init__(
        self,
        *,
        secret_key: str = DEFAULT_SECRET_KEY,
        publishable_key: str = DEFAULT_PUBLISHABLE_KEY,
        seed: int | None = None,
        checkout_events: bool = False,
        refunds_pending: bool = False,
        **options: Unpack[SandboxOptions],
    ) -> None:
        options.setdefault("webhook_schedule", RETRY_SCHEDULE)
        super().__init__(**options)
        self._secret_key = secret_key
        self._publishable_key = publishable_key
        self.state = WooshPayState(
            emit=self.emit,
            connect=self._connect,
            disconnect=self.remove_webhook_target,
            seed=seed,
            clock=self.clock,
            checkout_events=checkout_events,
            refunds_pending=refunds_pending,
        )
        if self.webhook_url:
            self.state.add_default_endpoint(self.webhook_url, self.webhook_secrets)
        self.idempotency = IdempotencyStore(clock=self.clock)
        self._request_ids = IdGenerator(None if seed is None else seed + 1)
        # Card numbers in a request's fingerprint are keyed digests, never plain hashes.
        self._fingerprint_key = os.urandom(32)

    def gateway_config(self, base_url: str) -> dict[str, Any]:
        return {
            "base_url": base_url,
            "secret_key": self._secret_key,
            "webhook_secret": self.webhook_secrets[0],
        }

    def sign_webhook(self, body: bytes) -> Mapping[str, str]:
        return self._signer(self.webhook_secrets)(body)

    def snapshot(self) -> dict[str, Any]:
        return self.state.snapshot()

    def webhook_targets(self, event: Mapping[str, Any]) -> Iterable[str]:
        return self.state.targets_for(str(event["type"]))

    def middleware(self) -> list[Middleware]:
        return [Middleware(_RequestIds, ids=self._request_ids)]

    def routes(self) -> list[BaseRoute]:
        api = ApiRoutes(self)
        return [*api.routes(), *HostedPages(self.state).routes(), *api.endpoint_routes()]

    def control_routes(self) -> list[BaseRoute]:
        return [Route("/_sandbox/refunds/{id}/settle", self.settle_refund, methods=["POST"])]

    async def settle_refund(self, request: Request) -> Response:
        params = await Params.read(request, "outcome", "failure_reason")
        outcome = params.string("outcome", required=True, choices=("succeeded", "failed"))
        reason = params.string(
            "failure_reason", choices=("lost_or_stolen_card", "expired_or_canceled_card", "unknown")
        )
        refund = self.state.settle_refund(
            request.path_params["id"], succeeded=outcome == "succeeded", failure_reason=reason
        )
        return JSONResponse(refund)

    # -- what every route shares ----------------------------------------------------------

    def authenticate(self, request: Request, *, publishable: bool = False) -> None:
        """The secret key (or, where allowed, the publishable key), else 401."""
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        key = ""
        if scheme.lower() == "basic":
            try:
                key = base64.b64decode(credentials, validate=True).decode().partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                key = ""
        elif scheme.lower() == "bearer":
            key = credentials
        accepted = [self._secret_key, *([self._publishable_key] if publishable else [])]
        # Every candidate is compared, so the time taken does not tell which one matched.
        matched = False
        for candidate in accepted:
            matched |= hmac.compare_digest(key.encode(), candidate.encode())
        if not matched:
            raise SandboxError(
                401,
                "api_key_invalid",
                "Invalid API key: send Authorization: Basic base64(<secret key>:)"
                + (" or the publishable key" if publishable else ""),
            )

    def idempotent(
        self, request: Request, params: Params, carry_out: Callable[[], Answer | dict[str, Any]]
    ) -> Response:
        """Carry out a validated mutation once per ``Idempotency-Key``; replay its answer."""
        key = request.headers.get("idempotency-key")
        if key is not None and not 0 < len(key) <= _MAX_IDEMPOTENCY_KEY:
            raise invalid(
                "parameter_invalid_string",
                "Idempotency-Key",
                f"Idempotency-Key must be 1 to {_MAX_IDEMPOTENCY_KEY} characters",
            )
        digest = fingerprint(request.method, request.url.path, self._scrubbed(params.data))

        def answer() -> tuple[int, Any]:
            result = carry_out()
            return result if isinstance(result, tuple) else (200, result)

        return self.answer_once(
            self.idempotency,
            scope=self._secret_key,
            key=key,
            fingerprint=digest,
            lock=self.state.lock,
            carry_out=answer,
            conflict=SandboxError(
                409,
                "idempotency_key_reused",
                "Keys for idempotent requests can only be used with the same method, "
                "path and parameters they were first used with; use a new key.",
                kind="idempotency_error",
            ),
        )

    def _scrubbed(self, data: Any) -> Any:
        if isinstance(data, dict):
            return {
                key: self._digest(value)
                if key in ("number", "cvc") and isinstance(value, str)
                else self._scrubbed(value)
                for key, value in data.items()
            }
        if isinstance(data, list):
            return [self._scrubbed(item) for item in data]
        return data

    def _digest(self, value: str) -> str:
        return hmac.new(self._fingerprint_key, value.encode(), hashlib.sha256).hexdigest()

    def _signer(self, secrets: tuple[str, ...]) -> Callable[[bytes], Mapping[str, str]]:
        def signed(body: bytes) -> Mapping[str, str]:
            return {SIGNATURE_HEADER: sign(body, secrets, timestamp=int(self.clock()))}

        return signed

    def _connect(self, target: str, url: str, secrets: tuple[str, ...]) -> None:
        self.add_webhook_target(target, url, sign=self._signer(secrets))


class _RequestIds:
    """Stamps every answer with ``Request-Id: req_…``."""

    def __init__(self, app: ASGIApp, ids: IdGenerator) -> None:
        self.app, self.ids = app, ids

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self.ids.new("req").encode()

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"request-id", request_id)]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, stamped)
