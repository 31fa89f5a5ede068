"""The XPAY sandbox's one RPC endpoint, ``POST /xpay`` [DOC]: every operation is a JSON
envelope ``{"Partner": {"PartnerToken", "OperationType", "Locale"}, "Data", "KeyAES",
"Sign"}``.

Checked in this order, the first problem answered (HTTP status = ``Code``): the body
is a JSON object (400); ``Partner.PartnerToken`` is the partner's (401);
``Partner.OperationType`` is an integer (400) XPAY serves here, 10005, 20003 or 30203
(404); ``Locale`` is ``uk``, ``en`` or ``ru`` when given (400); the envelope opens
(`paycore_xpay.sandbox_envelope`: 400 or 401); ``Data``'s fields (400, the field
named); the operation itself (404, 409, 422; `paycore_xpay.sandbox_state`). Then the
answer's ``Data`` is sealed for the partner. Every call is logged with its
``OperationType``, the ``KeyAES`` padding that opened it, and its ``Code``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from attrs import define, frozen
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from paycore.gateways.json_codec import decode_json
from paycore.sandbox.base import SandboxError
from paycore.sandbox.responses import ExactJSONResponse
from paycore_xpay.sandbox_envelope import failure, open_request
from paycore_xpay.sandbox_fields import read_checkout, read_refund, read_status
from paycore_xpay.sandbox_operations import CHECKOUT, REFUND, STATUS

if TYPE_CHECKING:
    from paycore_xpay.sandbox import XpaySandbox

__all__ = ["LOCALES", "PATH", "RpcCall", "RpcEndpoint", "fingerprint", "request_base_url"]

PATH = "/xpay"
LOCALES = ("uk", "en", "ru")
_MAX_BODY = 1024 * 1024

Handler = Callable[[Any, Request], dict[str, Any]]


@frozen
class RpcCall:
    """One call to the endpoint, as the request log keeps it (no content, no key)."""

    operation_type: int | None
    key_padding: str | None  # "pkcs1v15" or "oaep": how KeyAES was encrypted
    code: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "operation_type": self.operation_type,
            "key_padding": self.key_padding,
            "code": self.code,
        }


@define
class _Seen:
    """What is known of a call as it is served."""

    operation_type: int | None = None
    key_padding: str | None = None


def request_base_url(request: Request) -> str:
    """The sandbox's URL as the client reached it, without a trailing slash."""
    return str(request.base_url).rstrip("/")


def fingerprint(operation_type: int, data: Mapping[str, Any]) -> str:
    """A digest of a request's ``Data``, ``Transaction.DateTime`` left out: a repeat of
    the pair differing only there is the same request."""
    kept = dict(data)
    transaction = kept.get("Transaction")
    if isinstance(transaction, Mapping):
        kept["Transaction"] = {k: v for k, v in transaction.items() if k != "DateTime"}
    canonical = json.dumps(
        [operation_type, kept], sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class RpcEndpoint:
    """The endpoint, over one sandbox (its keys, token, terminal and state)."""

    def __init__(self, sandbox: XpaySandbox) -> None:
        self.sandbox = sandbox
        self.state = sandbox.state
        self._handlers: dict[int, Handler] = {
            CHECKOUT: self.checkout,
            STATUS: self.status,
            REFUND: self.refund,
        }

    def routes(self) -> list[BaseRoute]:
        return [Route(PATH, self.call, methods=["POST"])]

    async def call(self, request: Request) -> Response:
        seen = _Seen()
        try:
            data = self._serve(await request.body(), request, seen)
        except SandboxError as error:
            self.sandbox.log_call(RpcCall(seen.operation_type, seen.key_padding, error.code))
            raise
        self.sandbox.log_call(RpcCall(seen.operation_type, seen.key_padding, "200"))
        return ExactJSONResponse(self.sandbox.seal_answer(data))

    def _serve(self, raw: bytes, request: Request, seen: _Seen) -> dict[str, Any]:
        if len(raw) > _MAX_BODY:
            raise failure(400, "the body is larger than an envelope can be")
        try:
            body = decode_json(raw)
        except ValueError:
            raise failure(400, "the body is not JSON") from None
        if not isinstance(body, Mapping):
            raise failure(400, "the body must be a JSON object")
        partner = body.get("Partner")
        if not isinstance(partner, Mapping):
            raise failure(400, "Partner is missing")
        if not self._known_token(partner.get("PartnerToken")):
            raise failure(401, "Partner.PartnerToken is not a partner's token")
        operation_type = partner.get("OperationType")
        if isinstance(operation_type, bool) or not isinstance(operation_type, int):
            raise failure(400, "Partner.OperationType must be an integer")
        seen.operation_type = operation_type
        handler = self._handlers.get(operation_type)
        if handler is None:
            raise failure(404, f"OperationType {operation_type} is not served")
        if partner.get("Locale") not in (None, *LOCALES):
            raise failure(400, f"Partner.Locale must be one of {', '.join(LOCALES)}")
        opened = open_request(
            body, xpay_key=self.sandbox.xpay_key, partner_key=self.sandbox.partner_key
        )
        seen.key_padding = opened.key_padding
        return handler(opened.data, request)

    def _known_token(self, token: object) -> bool:
        expected = self.sandbox.partner_token.encode()
        return isinstance(token, str) and hmac.compare_digest(token.encode(), expected)

    # -- the operations, in the order of XPAY's documentation -----------------------------

    def checkout(self, data: Any, request: Request) -> dict[str, Any]:
        """[10005] Get Checkout Link."""
        spec = read_checkout(data, terminal_id=self.sandbox.terminal_id)
        return self.state.checkout(
            spec, fingerprint=fingerprint(CHECKOUT, data), base_url=request_base_url(request)
        )

    def status(self, data: Any, request: Request) -> dict[str, Any]:
        """[20003] Get Operation Status."""
        return self.state.status(read_status(data))

    def refund(self, data: Any, request: Request) -> dict[str, Any]:
        """[30203] Cancel/Refund Checkout Payment."""
        spec = read_refund(data, terminal_id=self.sandbox.terminal_id)
        return self.state.refund(spec, fingerprint=fingerprint(REFUND, data))
