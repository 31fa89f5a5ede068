"""Fixtures of the WooshPay unit tests: the gateway, canned answers, and a way to run an
exchange on them."""

from __future__ import annotations

import json
from collections.abc import Callable, Generator
from typing import Any

import httpx
import pytest
from paycore_wooshpay.gateway import WooshPayGateway

SECRET_KEY = "sk_test_SENTINEL_key_1"
WEBHOOK_SECRET = "whsec_SENTINEL_secret_2"
CREATED_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC, as WooshPay writes objects' times


@pytest.fixture
def gateway() -> WooshPayGateway:
    return WooshPayGateway.from_config(
        {"secret_key": SECRET_KEY, "webhook_secret": WEBHOOK_SECRET, "mode": "test"}
    )


Answer = tuple[int, Any]


def run(exchange: Generator[httpx.Request, httpx.Response, Any], *answers: Answer) -> Any:
    """Run ``exchange``, answering its requests in turn; return (requests sent, result)."""
    sent: list[httpx.Request] = []
    try:
        outgoing = next(exchange)
        for status, body in answers:
            sent.append(outgoing)
            content = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers = {"Content-Type": "application/json", "Request-Id": "req_1"}
            outgoing = exchange.send(
                httpx.Response(status, content=content, headers=headers, request=outgoing)
            )
    except StopIteration as stop:
        return sent, stop.value
    raise AssertionError(f"unanswered request {outgoing.method} {outgoing.url}")


@pytest.fixture
def drive() -> Callable[..., Any]:
    return run


def make_intent(status: str = "requires_capture", **changes: Any) -> dict[str, Any]:
    """A PaymentIntent as WooshPay answers it (authorized with a manual capture)."""
    authorized = status in ("requires_capture", "succeeded")
    return {
        "id": "pi_1000000000000000001",
        "object": "payment_intent",
        "amount": 1000,
        "amount_capturable": 1000 if status == "requires_capture" else 0,
        "amount_received": 1000 if status == "succeeded" else 0,
        "currency": "USD",
        "status": status,
        "capture_method": "manual",
        "confirmation_method": "automatic",
        "client_secret": "pi_1000000000000000001_secret_x",
        "created": CREATED_MS,
        "livemode": False,
        "customer": None,
        "description": None,
        "merchant_order_id": "p_1",
        "metadata": {"paycore_payment_id": "p_1", "paycore_transaction_id": "txn_1"},
        "payment_method": "pm_card_visa",
        "payment_method_types": ["card"],
        "return_url": None,
        "next_action": None,
        "last_payment_error": None,
        "cancellation_reason": None,
        "canceled_at": None,
        "latest_charge": "ch_1" if authorized else None,
        "setup_future_usage": None,
        **changes,
    }


@pytest.fixture
def intent() -> Callable[..., dict[str, Any]]:
    return make_intent


def make_refund(status: str = "succeeded", **changes: Any) -> dict[str, Any]:
    return {
        "id": "re_1",
        "object": "refund",
        "amount": 500,
        "currency": "USD",
        "payment_intent": "pi_1000000000000000001",
        "charge": "ch_1",
        "status": status,
        "reason": "requested_by_customer",
        "failure_reason": None,
        "metadata": {"paycore_payment_id": "p_1", "paycore_transaction_id": "txn_r"},
        "created": CREATED_MS,
        **changes,
    }


@pytest.fixture
def refund() -> Callable[..., dict[str, Any]]:
    return make_refund
