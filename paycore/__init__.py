"""paycore: take payments through many providers with one API.

The names below are the public API; everything else is reached through its module
(``paycore.gateways.base`` for plugin authors, ``paycore.plugins`` for discovery,
``paycore.sandbox`` for provider sandboxes, ``paycore.testing`` for test kits).
Names are imported on first use, so ``import paycore`` (and the CLI) start fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from paycore.checkout.async_service import AsyncCheckoutService
    from paycore.checkout.model import (
        CaptureMode,
        Cart,
        CartItem,
        Checkout,
        CheckoutFailure,
        CheckoutStatus,
        PaymentOptions,
        StoredMethod,
        Submission,
    )
    from paycore.checkout.service import CheckoutService
    from paycore.config import Settings, build_gateways, load_settings
    from paycore.errors import (
        ConfigurationError,
        CurrencyMismatch,
        GatewayAuthError,
        GatewayError,
        GatewayProtocolError,
        GatewayRefused,
        GatewayUnavailable,
        IdempotencyConflict,
        InvalidAmount,
        InvalidRequest,
        NotFound,
        OutcomeUnknown,
        PaycoreError,
        PaymentBusy,
        PluginError,
        StateError,
        UnsupportedOperation,
        WebhookSignatureError,
    )
    from paycore.gateways.base import Capabilities, Exchange, Gateway, GatewayConfig, Operation
    from paycore.gateways.driver import (
        AsyncGatewayDriver,
        GatewayDriver,
        Recorded,
        RetryPolicy,
        Summarized,
    )
    from paycore.gateways.scrub import Transcript
    from paycore.money import Currency, Money
    from paycore.oms.model import (
        Instruction,
        InstructionKind,
        InstructionOutcome,
        InstructionResult,
    )
    from paycore.oms.order_payments import AsyncOrderPayments, OrderPayments
    from paycore.transactions.async_services import AsyncPaymentTransactionServices
    from paycore.transactions.model import (
        CheckoutKind,
        CheckoutSession,
        Customer,
        DeclineReason,
        GatewayEvent,
        GatewayResult,
        NextAction,
        NextActionKind,
        Outcome,
        PaymentMethod,
        PaymentMethodOption,
        PaymentRequest,
        PaymentStatus,
        SavedMethod,
        SaveMethodRequest,
        TransactionStatus,
        TransactionType,
        WebhookHandling,
        WebhookReply,
        WebhookRequest,
    )
    from paycore.transactions.reconcile import Reconciler
    from paycore.transactions.records import Payment, PaymentTransaction
    from paycore.transactions.services import PaymentTransactionServices
    from paycore.transactions.store import Store

__version__ = "0.1.0"

__all__ = [
    "AsyncCheckoutService",
    "AsyncGatewayDriver",
    "AsyncOrderPayments",
    "AsyncPaymentTransactionServices",
    "Capabilities",
    "CaptureMode",
    "Cart",
    "CartItem",
    "Checkout",
    "CheckoutFailure",
    "CheckoutKind",
    "CheckoutService",
    "CheckoutSession",
    "CheckoutStatus",
    "ConfigurationError",
    "Currency",
    "CurrencyMismatch",
    "Customer",
    "DeclineReason",
    "Exchange",
    "Gateway",
    "GatewayAuthError",
    "GatewayConfig",
    "GatewayDriver",
    "GatewayError",
    "GatewayEvent",
    "GatewayProtocolError",
    "GatewayRefused",
    "GatewayResult",
    "GatewayUnavailable",
    "IdempotencyConflict",
    "Instruction",
    "InstructionKind",
    "InstructionOutcome",
    "InstructionResult",
    "InvalidAmount",
    "InvalidRequest",
    "Money",
    "NextAction",
    "NextActionKind",
    "NotFound",
    "Operation",
    "OrderPayments",
    "Outcome",
    "OutcomeUnknown",
    "PaycoreError",
    "Payment",
    "PaymentBusy",
    "PaymentMethod",
    "PaymentMethodOption",
    "PaymentOptions",
    "PaymentRequest",
    "PaymentStatus",
    "PaymentTransaction",
    "PaymentTransactionServices",
    "PluginError",
    "Reconciler",
    "Recorded",
    "RetryPolicy",
    "SaveMethodRequest",
    "SavedMethod",
    "Settings",
    "StateError",
    "Store",
    "StoredMethod",
    "Submission",
    "Summarized",
    "TransactionStatus",
    "TransactionType",
    "Transcript",
    "UnsupportedOperation",
    "WebhookHandling",
    "WebhookReply",
    "WebhookRequest",
    "WebhookSignatureError",
    "build_gateways",
    "load_settings",
]

_MODULES = {
    "OrderPayments": "paycore.oms.order_payments",
    "AsyncOrderPayments": "paycore.oms.order_payments",
    "Instruction": "paycore.oms.model",
    "InstructionKind": "paycore.oms.model",
    "InstructionOutcome": "paycore.oms.model",
    "InstructionResult": "paycore.oms.model",
    "AsyncCheckoutService": "paycore.checkout.async_service",
    "CheckoutService": "paycore.checkout.service",
    "Cart": "paycore.checkout.model",
    "CartItem": "paycore.checkout.model",
    "Checkout": "paycore.checkout.model",
    "CheckoutStatus": "paycore.checkout.model",
    "CaptureMode": "paycore.checkout.model",
    "PaymentOptions": "paycore.checkout.model",
    "StoredMethod": "paycore.checkout.model",
    "Submission": "paycore.checkout.model",
    "CheckoutFailure": "paycore.checkout.model",
    "AsyncGatewayDriver": "paycore.gateways.driver",
    "AsyncPaymentTransactionServices": "paycore.transactions.async_services",
    "Capabilities": "paycore.gateways.base",
    "CheckoutKind": "paycore.transactions.model",
    "CheckoutSession": "paycore.transactions.model",
    "ConfigurationError": "paycore.errors",
    "Currency": "paycore.money",
    "CurrencyMismatch": "paycore.errors",
    "Customer": "paycore.transactions.model",
    "DeclineReason": "paycore.transactions.model",
    "Exchange": "paycore.gateways.base",
    "Gateway": "paycore.gateways.base",
    "GatewayAuthError": "paycore.errors",
    "GatewayConfig": "paycore.gateways.base",
    "GatewayDriver": "paycore.gateways.driver",
    "GatewayError": "paycore.errors",
    "GatewayEvent": "paycore.transactions.model",
    "GatewayProtocolError": "paycore.errors",
    "GatewayRefused": "paycore.errors",
    "GatewayResult": "paycore.transactions.model",
    "GatewayUnavailable": "paycore.errors",
    "IdempotencyConflict": "paycore.errors",
    "InvalidAmount": "paycore.errors",
    "InvalidRequest": "paycore.errors",
    "Money": "paycore.money",
    "NextAction": "paycore.transactions.model",
    "NextActionKind": "paycore.transactions.model",
    "NotFound": "paycore.errors",
    "Operation": "paycore.gateways.base",
    "Outcome": "paycore.transactions.model",
    "OutcomeUnknown": "paycore.errors",
    "PaycoreError": "paycore.errors",
    "Payment": "paycore.transactions.records",
    "PaymentBusy": "paycore.errors",
    "PaymentMethod": "paycore.transactions.model",
    "PaymentMethodOption": "paycore.transactions.model",
    "PaymentRequest": "paycore.transactions.model",
    "PaymentStatus": "paycore.transactions.model",
    "SaveMethodRequest": "paycore.transactions.model",
    "SavedMethod": "paycore.transactions.model",
    "PaymentTransaction": "paycore.transactions.records",
    "PaymentTransactionServices": "paycore.transactions.services",
    "PluginError": "paycore.errors",
    "Reconciler": "paycore.transactions.reconcile",
    "Recorded": "paycore.gateways.driver",
    "RetryPolicy": "paycore.gateways.driver",
    "Settings": "paycore.config",
    "StateError": "paycore.errors",
    "Store": "paycore.transactions.store",
    "Summarized": "paycore.gateways.driver",
    "TransactionStatus": "paycore.transactions.model",
    "TransactionType": "paycore.transactions.model",
    "Transcript": "paycore.gateways.scrub",
    "UnsupportedOperation": "paycore.errors",
    "WebhookHandling": "paycore.transactions.model",
    "WebhookReply": "paycore.transactions.model",
    "WebhookRequest": "paycore.transactions.model",
    "WebhookSignatureError": "paycore.errors",
    "build_gateways": "paycore.config",
    "load_settings": "paycore.config",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'paycore' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
