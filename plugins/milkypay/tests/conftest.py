"""Fixtures of the MilkyPay unit tests: the gateway, canned invoice and refund documents,
and a way to run an exchange on them."""

from __future__ import annotations

from collections.abc import Callable, Generator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from paycore_milkypay.gateway import MilkyPayGateway

from paycore.gateways.json_codec import encode_json
from paycore.money import Money
from paycore.transactions.model import PaymentMethod, PaymentRequest

BASE_URL = "https://pay.milkypay.example"
PUBLIC_KEY = "pk_test_SENTINEL_public"
ACCOUNT = "coma_SENTINEL_account"
API_KEY = "SENTINEL_api_key_1"
SECRET_KEY = "SENTINEL_secret_key_2"
CONFIG = {
    "base_url": BASE_URL,
    "public_key": PUBLIC_KEY,
    "commerce_account_id": ACCOUNT,
    "api_key": API_KEY,
    "secret_key": SECRET_KEY,
}
CPI = "cpi_AAAAAAAAAAAAAAAA"
RFD = "rfd_BBBBBBBBBBBBBBBB"
CREATED = 1_767_225_600  # 2026-01-01 00:00 UTC, in unix seconds as the platform writes
UPDATED = CREATED + 60
RESERVE_EXPIRES = UPDATED + 7 * 86400
TEST_SERVICE = PaymentMethod(type="test_usd", fields={"test_details_success_rate": "100"})


@pytest.fixture
def gateway() -> MilkyPayGateway:
    return MilkyPayGateway.from_config(CONFIG)


Answer = tuple[int, Any]


def run(exchange: Generator[httpx.Request, httpx.Response, Any], *answers: Answer) -> Any:
    """Run ``exchange``, answering its requests in turn; return (requests sent, result).

    A body that is not bytes is encoded as the platform would (Decimals exactly).
    """
    sent: list[httpx.Request] = []
    try:
        outgoing = next(exchange)
        for status, body in answers:
            sent.append(outgoing)
            content = body if isinstance(body, bytes) else encode_json(body)
            headers = {"Content-Type": "application/vnd.api+json", "X-Request-Id": "req_1"}
            outgoing = exchange.send(
                httpx.Response(status, content=content, headers=headers, request=outgoing)
            )
    except StopIteration as stop:
        return sent, stop.value
    raise AssertionError(f"unanswered request {outgoing.method} {outgoing.url}")


@pytest.fixture
def drive() -> Callable[..., Any]:
    return run


def make_request(
    kind: str = "authorize", transaction_id: str = "txn_1", **changes: Any
) -> PaymentRequest:
    """``txn_1``, an authorization of 10.00 USD through the test service, by default."""
    fields: dict[str, Any] = {
        "transaction_id": transaction_id,
        "transaction_type": kind,
        "payment_id": "p_1",
        "amount": Money(1000, "USD"),
        "payment_method": TEST_SERVICE,
    }
    return PaymentRequest(**{**fields, **changes})


@pytest.fixture
def request_for() -> Callable[..., PaymentRequest]:
    return make_request


def make_invoice(status: str = "processing", **attributes: Any) -> dict[str, Any]:
    """An invoice resource as the platform writes it: by default a held delayed charge
    of 10.00 USD (``processing`` with the whole amount reserved)."""
    flow = attributes.get("payment_flow", "delayed_charge")
    amount = attributes.get("amount", Decimal("10.00"))
    held = status == "processing" and flow == "delayed_charge"
    paid = status not in ("created", "processing", "process_pending", "process_error")
    paid = paid and status not in ("process_failed", "expired", "terminated")
    values = {
        "serial_number": 17,
        "status": status,
        "resolution": "ok" if paid else None,
        "moderation_required": False,
        "reference_id": "txn_1",
        "service": "test_usd",
        "currency": "USD",
        "service_currency": "USD",
        "amount": amount,
        "payment_amount": amount,
        "processed_amount": amount if paid else 0,
        "refunded_amount": 0,
        "reserved_amount": amount if held else 0,
        "charged_back_amount": 0,
        "fee": 0,
        "deposit": 0,
        "reserve_expires": RESERVE_EXPIRES if held else None,
        "unreserved": False,
        "payment_flow": flow,
        "flow": None,
        "flow_data": None,
        "test_mode": True,
        "description": None,
        "metadata": {"paycore_payment_id": "p_1", "paycore_transaction_id": "txn_1"},
        "return_url": None,
        "return_urls": None,
        "callback_url": None,
        "customer": None,
        "expires": CREATED + 86400,
        "created": CREATED,
        "updated": UPDATED,
        "processed": UPDATED if paid else None,
        "rrn": None,
        "approval_code": None,
        "payload": None,
        "original_data": None,
        "source": "api",
        **attributes,
    }
    invoice_id = values.pop("id", CPI)
    return {
        "type": "payment-invoices",
        "id": invoice_id,
        "attributes": values,
        "relationships": {
            "payment-service": {"data": {"type": "payment-services", "id": values["service"]}},
            "refunds": {"data": []},
        },
        "links": {"self": f"/api/payment-invoices/{invoice_id}"},
    }


def make_refund(status: str = "processed", **attributes: Any) -> dict[str, Any]:
    """A refund resource: by default 5.00 USD of ``CPI``, processed, for ``txn_r``."""
    values = {
        "invoice_id": CPI,
        "reference_id": "txn_r",
        "amount": Decimal("5.00"),
        "currency": "USD",
        "status": status,
        "resolution": "ok" if status == "processed" else None,
        "description": None,
        "created": UPDATED,
        "updated": UPDATED + 30,
        **attributes,
    }
    refund_id = values.pop("id", RFD)
    return {
        "type": "refunds",
        "id": refund_id,
        "attributes": values,
        "relationships": {
            "payment-invoice": {"data": {"type": "payment-invoices", "id": values["invoice_id"]}}
        },
    }


def document(data: Any, *included: dict[str, Any]) -> dict[str, Any]:
    """``{"data": …, "included": […]}``, as every answer and callback is."""
    return {"data": data, "included": list(included)}


def error_body(*codes: str, status: int = 422, detail: str = "refused") -> dict[str, Any]:
    """The platform's error answer listing ``codes``, the first with ``detail``."""
    return {
        "errors": [
            {
                "status": str(status),
                "code": code,
                "title": "Validation error",
                "detail": detail if n == 0 else "also refused",
                "source": {"pointer": "/data/attributes/amount"},
            }
            for n, code in enumerate(codes)
        ],
        "request_id": "req_body",
        "error_type": "validation" if status == 422 else "not_found",
        "error_codes": list(codes),
    }
