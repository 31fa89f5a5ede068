"""The XPAY sandbox: XPAY's partner API on loopback, speaking the wire protocol the
gateway speaks (providers.md §2 for the facts, the plugin's wire contract for the rest).

One endpoint, ``POST /xpay``, takes every operation in an encrypted, signed envelope
(`paycore_xpay.sandbox_api`): [10005] a checkout link, [20003] an operation's status,
[30203] a cancel or refund. The sandbox holds XPAY's RSA key pair and the partner's
public key (fresh 2048-bit keys when none are given); answers are sealed for the
partner and signed by XPAY, errors are ``{"Code", "Message", "Data": null}`` with the
HTTP status of their ``Code``. Amounts are integer kopecks, in UAH. Routes::

    POST /xpay                                   the RPC endpoint
    GET|POST /checkout/{uuid}                    the hosted page (paycore_xpay.sandbox_pages)
    POST /_sandbox/operations/{id}/expire        the payment's page expires now
    GET  /_sandbox/rpc                           every call: OperationType, KeyAES padding, Code

Callbacks (`paycore_xpay.sandbox_callbacks`) are ``GET`` with a query string, unsigned,
to the payment's ``CallBackURL`` (else the sandbox's ``webhook_url``), retried until
HTTP 200. With ``two_step=True`` the partner is asked (``check``) before a payment is
taken, and given ``check_timeout`` seconds to answer.

[PROPOSAL] where XPAY's documentation is silent: the error codes and HTTP statuses,
the operation status "1" and the failure reasons, the [20003] answer beyond
``OperationStatus``, refunds answered at once, the test cards, the callback
parameters beyond ``command`` and ``txn_id``, the ``check`` answer, the end of the
retries (a day), UTC times, and the OAEP fallback for ``KeyAES``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Unpack
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from paycore.errors import ConfigurationError
from paycore.sandbox.base import DEFAULT_WEBHOOK_TARGET, Sandbox, SandboxError, SandboxOptions
from paycore.sandbox.responses import ExactJSONResponse
from paycore_xpay.keys import (
    generate_private_key,
    key_or_problem,
    private_key_from_pem,
    private_pem,
    public_key_from_pem,
    public_pem,
)
from paycore_xpay.sandbox_api import PATH, RpcCall, RpcEndpoint
from paycore_xpay.sandbox_callbacks import CHECK_TIMEOUT, RETRY_SCHEDULE, CheckAnswer, ask_partner
from paycore_xpay.sandbox_envelope import answer_body, error_body
from paycore_xpay.sandbox_operations import Payment
from paycore_xpay.sandbox_pages import HostedPage
from paycore_xpay.sandbox_state import DEFAULT_PAGE_TTL, XpayState

__all__ = ["DEFAULT_PARTNER_TOKEN", "DEFAULT_TERMINAL_ID", "RETRY_SCHEDULE", "XpaySandbox"]

# XPAY's published test token [DOC]: the sandbox listens on loopback and guards nothing real.
DEFAULT_PARTNER_TOKEN = "72a8ddb8-9145-4a41-af1a-8c48ecaa4be1"  # noqa: S105
DEFAULT_TERMINAL_ID = "1"
WHERE = "XPAY sandbox"


class XpaySandbox(Sandbox):
    """XPAY on loopback; the XPAY gateway talks to it (``gateway_config``).

    Keys are PEM text: ``xpay_private_key`` (XPAY's own), ``partner_public_key`` (what
    requests are verified with) and ``partner_private_key`` (only so `gateway_config`
    can hand a gateway its whole config; its public half serves when
    ``partner_public_key`` is not given). Absent keys are generated. ``page_ttl`` is a
    page's lifetime in minutes when a request gives no ``TTL``; ``seed`` makes the
    pages' uuids repeat from run to run.
    """

    name: ClassVar[str] = "xpay"
    display_name: ClassVar[str] = "XPAY"
    # "until the partner answers HTTP 200" [DOC].
    webhook_accepted_statuses: ClassVar[frozenset[int] | None] = frozenset({200})
    webhook_method: ClassVar[str] = "GET"

    def __init__(
        self,
        *,
        partner_token: str = DEFAULT_PARTNER_TOKEN,
        terminal_id: str = DEFAULT_TERMINAL_ID,
        xpay_private_key: str | None = None,
        partner_public_key: str | None = None,
        partner_private_key: str | None = None,
        seed: int | None = None,
        two_step: bool = False,
        check_timeout: float = CHECK_TIMEOUT,
        page_ttl: int = DEFAULT_PAGE_TTL,
        **options: Unpack[SandboxOptions],
    ) -> None:
        options.setdefault("webhook_schedule", RETRY_SCHEDULE)
        super().__init__(**options)
        problems = []
        if not partner_token:
            problems.append("partner_token: must not be empty")
        if not terminal_id:
            problems.append("terminal_id: must not be empty")
        if not 1 <= page_ttl <= 1440:
            problems.append("page_ttl: must be from 1 to 1440 minutes")
        if check_timeout <= 0:
            problems.append("check_timeout: must be a positive number of seconds")
        xpay = key_or_problem("xpay_private_key", xpay_private_key, _private_key, problems)
        public = key_or_problem(
            "partner_public_key", partner_public_key, public_key_from_pem, problems
        )
        private = key_or_problem("partner_private_key", partner_private_key, _private_key, problems)
        if private and public and private.public_key().public_numbers() != public.public_numbers():
            problems.append("partner_public_key: is not the public half of partner_private_key")
        if problems:
            raise ConfigurationError(WHERE, problems)
        if public is None:
            private = private or generate_private_key()
            public = private.public_key()
        self.partner_token = partner_token
        self.terminal_id = terminal_id
        self.two_step = two_step
        self.check_timeout = check_timeout
        self.xpay_key: RSAPrivateKey = xpay or generate_private_key()
        self.partner_key: RSAPublicKey = public
        self._partner_private: RSAPrivateKey | None = private
        self.state = XpayState(
            emit=self._callback,
            connect=self._connect,
            seed=seed,
            clock=self.clock,
            page_ttl=page_ttl,
        )
        self._calls: list[RpcCall] = []
        self._calls_lock = threading.Lock()
        self._callback_urls: set[str] = set()

    # -- what the base asks for ----------------------------------------------------------

    def gateway_config(self, base_url: str) -> dict[str, Any]:
        config: dict[str, Any] = {
            "base_url": base_url.rstrip("/") + PATH,
            "partner_token": self.partner_token,
            "xpay_public_key": public_pem(self.xpay_key.public_key()),
            "terminal_id": self.terminal_id,
            "mode": "test",
        }
        if self._partner_private is not None:
            config["partner_private_key"] = private_pem(self._partner_private)
        if self.webhook_url:
            config["callback_url"] = self.webhook_url
        return config

    def sign_webhook(self, body: bytes) -> Mapping[str, str]:
        return {}  # XPAY's callbacks carry no signature [DOC]

    def encode_webhook(self, event: Mapping[str, Any]) -> bytes:
        return urlencode(event).encode("ascii")

    def snapshot(self) -> dict[str, Any]:
        return self.state.snapshot()

    def webhook_targets(self, event: Mapping[str, Any]) -> Iterable[str]:
        url = self.state.callback_url_of(int(event["operation_id"]))
        if url and url != self.webhook_url:
            return (_callback_target(url),)
        return (DEFAULT_WEBHOOK_TARGET,) if self.webhook_url else ()

    def error_body(self, error: SandboxError) -> dict[str, Any]:
        return error_body(error)

    def routes(self) -> list[BaseRoute]:
        return [*RpcEndpoint(self).routes(), *HostedPage(self).routes()]

    def control_routes(self) -> list[BaseRoute]:
        return [
            Route("/_sandbox/operations/{id:int}/expire", self.expire_page, methods=["POST"]),
            Route("/_sandbox/rpc", self.get_rpc_calls, methods=["GET"]),
        ]

    # -- control routes ------------------------------------------------------------------

    async def expire_page(self, request: Request) -> Response:
        return ExactJSONResponse(self.state.expire(request.path_params["id"]))

    async def get_rpc_calls(self, request: Request) -> Response:
        return JSONResponse({"calls": [call.as_dict() for call in self.rpc_calls]})

    # -- what the endpoint and the page use ------------------------------------------------

    def seal_answer(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """A success answer carrying ``data``, sealed for the partner."""
        return answer_body(data, partner_key=self.partner_key, xpay_key=self.xpay_key)

    def log_call(self, call: RpcCall) -> None:
        with self._calls_lock:
            self._calls.append(call)

    @property
    def rpc_calls(self) -> tuple[RpcCall, ...]:
        """Every call to the endpoint, in order."""
        with self._calls_lock:
            return tuple(self._calls)

    async def ask_partner(self, payment: Payment, query: Mapping[str, str]) -> CheckAnswer:
        """The partner's answer to a ``check``, at the payment's callback URL."""
        url = payment.callback_url or self.webhook_url
        if not url:
            return CheckAnswer.UNANSWERED
        return await ask_partner(url, query, timeout=self.check_timeout)

    # -- callbacks -----------------------------------------------------------------------

    def _callback(self, query: dict[str, str], delivery_id: str) -> None:
        self.emit(query, event_id=delivery_id)

    def _connect(self, url: str) -> None:
        """Deliver to ``url`` too (once: a second add would drop its pending deliveries)."""
        if url == self.webhook_url or url in self._callback_urls:
            return
        self._callback_urls.add(url)
        self.add_webhook_target(_callback_target(url), url, sign=self.sign_webhook)


def _callback_target(url: str) -> str:
    return f"CallBackURL:{url}"


@functools.lru_cache(maxsize=8)
def _private_key(pem: str) -> RSAPrivateKey:
    # Reading a private key checks it (some 50 ms); tests build a sandbox per test from
    # the same few keys.
    return private_key_from_pem(pem)
