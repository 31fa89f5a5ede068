"""Fixtures of the XPAY unit tests: the two key pairs (made once), the gateway, answers
sealed as XPAY seals them, and a way to run an exchange on them."""

from __future__ import annotations

from collections.abc import Generator, Mapping
from functools import cache
from typing import Any

import httpx
import pytest
from attrs import frozen
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from paycore_xpay.envelope import seal, unseal
from paycore_xpay.gateway import XpayGateway
from paycore_xpay.keys import generate_private_key, private_pem, public_pem

from paycore.gateways.json_codec import decode_json, encode_json
from paycore.money import Money
from paycore.transactions.model import PaymentRequest

BASE_URL = "https://xpay.example/xpay"
PARTNER_TOKEN = "SENTINEL-partner-token-72a8"
TERMINAL = "7"
OPERATION = 245786  # the payment's OperationID
REFUND_OPERATION = 245790
TXN_ID = "9001234"  # XPAY's TxnID of the payment once paid
REFUND_TXN_ID = "9001299"
PAGE = "https://stage-papi.xpay.example/checkout/3f1c9a4e"
UAH_25 = Money(2500, "UAH")


@frozen
class Keys:
    """The partner's key pair and XPAY's, as PEM text and as keys."""

    partner: RSAPrivateKey
    xpay: RSAPrivateKey

    @property
    def partner_pem(self) -> str:
        return private_pem(self.partner)

    @property
    def xpay_public_pem(self) -> str:
        return public_pem(self.xpay.public_key())


@cache
def keys() -> Keys:
    """Made once per run: 2048-bit keys take a while to generate."""
    return Keys(partner=generate_private_key(), xpay=generate_private_key())


def config(**changes: Any) -> dict[str, Any]:
    """A valid config for the test keys, the test endpoint replaced by ``BASE_URL``."""
    return {
        "partner_token": PARTNER_TOKEN,
        "partner_private_key": keys().partner_pem,
        "xpay_public_key": keys().xpay_public_pem,
        "terminal_id": TERMINAL,
        "mode": "test",
        "base_url": BASE_URL,
        **changes,
    }


@cache
def default_gateway() -> XpayGateway:
    return XpayGateway.from_config(config())


@pytest.fixture
def gateway() -> XpayGateway:
    return default_gateway()


# -- answers -------------------------------------------------------------------------------


def sealed(data: Mapping[str, Any], *, signer: RSAPrivateKey | None = None) -> dict[str, Any]:
    """A success answer whose Data is ``data``, sealed for the partner and signed by
    XPAY (or by ``signer``)."""
    envelope = seal(data, recipient=keys().partner.public_key(), signer=signer or keys().xpay)
    return {"Code": "200", "Message": "OK", **envelope.as_fields()}


def error(code: str, message: str = "refused") -> dict[str, Any]:
    """An error answer: nothing sealed."""
    return {"Code": code, "Message": message, "Data": None, "KeyAES": "", "Sign": ""}


def link(**changes: Any) -> dict[str, Any]:
    """A 10005 answer's Data: the page of operation ``OPERATION``."""
    return {
        "OperationID": OPERATION,
        "OperationStatus": "10",
        "URI": PAGE,
        "uuid": "3f1c9a4e",
        **changes,
    }


def payment(status: str = "10", **changes: Any) -> dict[str, Any]:
    """A 20003 answer's Data about the payment: by default paid, 25.00 UAH, for txn_1."""
    data: dict[str, Any] = {
        "OperationID": OPERATION,
        "OperationType": 10005,
        "TransactionID": "txn_1",
        "TerminalID": TERMINAL,
        "OperationStatus": status,
        "Sum": 2500,
        "DateTime": "2026-01-02 03:04:05",
        "RefundedSum": 0,
    }
    if status == "1":
        data["URI"] = PAGE
    if status in ("10", "21"):
        data["TxnID"] = TXN_ID
    if status == "21":
        data["Reason"] = "declined"
    return {**data, **changes}


def refund_state(status: str = "10", **changes: Any) -> dict[str, Any]:
    """A 20003 answer's Data about a refund of 10.00 UAH of the payment, for txn_r."""
    data: dict[str, Any] = {
        "OperationID": REFUND_OPERATION,
        "OperationType": 30203,
        "TransactionID": "txn_r",
        "TerminalID": TERMINAL,
        "OperationStatus": status,
        "Sum": 1000,
        "DateTime": "2026-01-02 03:04:05",
        "TxnID": REFUND_TXN_ID,
        "ParentOperationID": OPERATION,
    }
    if status == "21":
        data["Reason"] = "declined"
    return {**data, **changes}


def refund_answer(status: str = "10", **changes: Any) -> dict[str, Any]:
    """A 30203 answer's Data: the refund of 10.00 UAH done."""
    data: dict[str, Any] = {
        "OperationID": REFUND_OPERATION,
        "OperationStatus": status,
        "Sum": 1000,
        "TxnID": REFUND_TXN_ID,
        "ParentOperationID": OPERATION,
    }
    if status == "21":
        data["Reason"] = "declined"
    return {**data, **changes}


# -- running exchanges ----------------------------------------------------------------------

Answer = tuple[int, Any]


def run(exchange: Generator[httpx.Request, httpx.Response, Any], *answers: Answer) -> Any:
    """Run ``exchange``, answering its requests in turn; return (requests sent, result)."""
    sent: list[httpx.Request] = []
    try:
        outgoing = next(exchange)
        for status, body in answers:
            sent.append(outgoing)
            content = body if isinstance(body, bytes) else encode_json(body)
            outgoing = exchange.send(
                httpx.Response(
                    status,
                    content=content,
                    headers={"Content-Type": "application/json"},
                    request=outgoing,
                )
            )
    except StopIteration as stop:
        return sent, stop.value
    raise AssertionError(f"unanswered request {outgoing.method} {outgoing.url}")


def opened(request: httpx.Request) -> tuple[dict[str, Any], Any]:
    """A request as XPAY reads it: its Partner block and its Data, unsealed with XPAY's
    key and verified with the partner's."""
    body = decode_json(request.content)
    data = unseal(body, recipient=keys().xpay, sender=keys().partner.public_key())
    return body["Partner"], data


def make_request(
    kind: str = "sale", transaction_id: str = "txn_1", **changes: Any
) -> PaymentRequest:
    """``txn_1``, a sale of 25.00 UAH for payment ``p_1``, by default."""
    fields: dict[str, Any] = {
        "transaction_id": transaction_id,
        "transaction_type": kind,
        "payment_id": "p_1",
        "amount": UAH_25,
    }
    if kind == "refund":
        fields["gateway_reference"] = str(OPERATION)
    return PaymentRequest(**{**fields, **changes})
