"""XPAY's messages: the envelope of every request, and every answer read back.

One endpoint takes every operation [DOC]: ``POST {base_url}`` with the JSON
``{"Partner": {"PartnerToken", "OperationType", "Locale"}, "Data", "KeyAES", "Sign"}``,
``Data`` sealed for XPAY's public key and signed with the partner's private key
(`paycore_xpay.envelope`). An answer is ``{"Code", "Message", "Data", "KeyAES",
"Sign"}`` [CODE]: ``Code`` "200" with ``Data`` sealed for the partner and signed by
XPAY, or an error code with ``Data`` null and nothing sealed.

[PROPOSAL] The HTTP status mirrors ``Code``; the real service may answer every error
with HTTP 200, so ``Code`` is what counts. Codes: 400 malformed request or field, 401
unknown PartnerToken or an envelope XPAY cannot open, 404 unknown OperationType or
operation, 409 a TransactionID + TerminalID used before with other data, 422 refused
(a refund over what is refundable, or of an unpaid payment), 500 XPAY's own failure.

`read_answer` raises for what is no answer to the operation asked (credentials
refused, XPAY failing, an idempotency conflict, an envelope that does not verify) and
returns an `Answer` for the rest: success, or a refusal for the operation to read.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import httpx
from attrs import frozen

from paycore.errors import (
    GatewayAuthError,
    GatewayError,
    GatewayProtocolError,
    GatewayUnavailable,
    OutcomeUnknown,
)
from paycore.gateways.fields import AnswerReader
from paycore_xpay.config import XpayConfig
from paycore_xpay.envelope import EnvelopeError, seal, unseal

__all__ = ["DATE_TIME", "NAME", "OK", "Answer", "OperationType", "read_answer", "request_body"]

NAME = "xpay"
# How XPAY writes a time: in a Transaction block and in a 20003 answer [DOC; PROPOSAL: UTC].
DATE_TIME = "%Y-%m-%d %H:%M:%S"
OK = "200"
_MAX_MESSAGE = 200


class OperationType(enum.IntEnum):
    """The operations the plugin sends (``Partner.OperationType``) [DOC]."""

    CHECKOUT_LINK = 10005  # Get Checkout Link: the hosted page of a payment
    OPERATION_STATUS = 20003  # Get Operation Status
    REFUND = 30203  # Cancel/Refund Checkout Payment


def request_body(
    config: XpayConfig, operation: OperationType, data: Mapping[str, Any]
) -> dict[str, Any]:
    """The JSON of a request: the Partner block and ``data``, sealed and signed."""
    sealed = seal(data, recipient=config.xpay_key, signer=config.partner_key)
    partner = {
        "PartnerToken": config.partner_token,
        "OperationType": int(operation),
        "Locale": config.locale,
    }
    return {"Partner": partner, **sealed.as_fields()}


@frozen(kw_only=True)
class Answer:
    """XPAY's answer to one request: its code, message and, on success, its Data."""

    http_status: int
    code: str
    message: str | None
    data: Mapping[str, Any] | None  # the unsealed Data when ``code`` is "200"

    @property
    def ok(self) -> bool:
        return self.code == OK

    def success_data(self, reader: AnswerReader, what: str) -> Mapping[str, Any]:
        """The Data of a success; a refusal here is an answer the operation cannot use."""
        if self.data is None:
            raise reader.error(
                f"XPAY answered {what} with code {self.code}", http_status=self.http_status
            )
        return self.data


def read_answer(
    response: httpx.Response, config: XpayConfig, reader: AnswerReader, *, mutation: bool
) -> Answer:
    """The answer ``response`` carries, its Data unsealed and verified.

    Raises `GatewayProtocolError` for a body that is not XPAY's answer or an envelope
    that does not verify with XPAY's key, and, for the codes that answer nothing about
    the operation: `GatewayAuthError` (401, 403), `GatewayUnavailable` (429; 5xx of a
    read), `OutcomeUnknown` (5xx or 409 of a ``mutation``).
    """
    body = reader.json(response)
    code = _code(body, reader, response.status_code)
    message = body.get("Message")
    answer = Answer(
        http_status=response.status_code,
        code=code,
        message=message[:_MAX_MESSAGE] if isinstance(message, str) else None,
        data=None,
    )
    if not answer.ok:
        failure = _failure(answer, mutation=mutation)
        if failure is not None:
            raise failure
        return answer
    if not response.is_success:
        raise reader.error(
            "the answer's Code is 200 but its HTTP status is not", http_status=response.status_code
        )
    try:
        data = unseal(body, recipient=config.partner_key, sender=config.xpay_key)
    except EnvelopeError as problem:
        raise reader.error(
            f"the answer's envelope does not verify: {problem}", http_status=response.status_code
        ) from None
    return Answer(
        http_status=answer.http_status,
        code=code,
        message=answer.message,
        data=reader.object(data, "the answer's Data"),
    )


def _code(body: Mapping[str, Any], reader: AnswerReader, http_status: int) -> str:
    code = body.get("Code")
    # [CODE] shows a string; a number is read alike.
    if type(code) is int:
        code = str(code)
    if not (isinstance(code, str) and len(code) == 3 and code.isdigit() and code.isascii()):
        raise reader.error(
            "the answer's 'Code' is missing or not a status code", http_status=http_status
        )
    return code


def _failure(answer: Answer, *, mutation: bool) -> GatewayError | None:
    details: dict[str, Any] = {"gateway": NAME, "http_status": answer.http_status}
    code = answer.code
    if code in ("401", "403"):
        return GatewayAuthError(
            f"XPAY refused the partner's credentials (code {code}): check partner_token, "
            "partner_private_key (XPAY must hold its public half) and xpay_public_key",
            **details,
        )
    if code == "429":
        return GatewayUnavailable(
            "XPAY is limiting requests (code 429); nothing was done, safe to retry", **details
        )
    if code.startswith("5"):
        if mutation:
            return OutcomeUnknown(
                f"XPAY failed while handling the request (code {code}): it may have "
                "happened; reconcile with fetch_status",
                **details,
            )
        return GatewayUnavailable(
            f"XPAY failed while answering (code {code}); nothing was done, safe to retry",
            **details,
        )
    if code == "409":
        if mutation:
            return OutcomeUnknown(
                "XPAY reports this TransactionID + TerminalID used before with other data: "
                "the first request may have succeeded; reconcile with fetch_status, never "
                "resend under a new transaction",
                **details,
            )
        return GatewayProtocolError("XPAY answered a status request with code 409", **details)
    if not code.startswith("4"):
        return GatewayProtocolError(f"XPAY answered with the unknown code {code}", **details)
    return None
