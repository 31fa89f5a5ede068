"""The public API: an exact, sorted `__all__`, typed, and importable as documented."""

from __future__ import annotations

import importlib.resources
import inspect

import paycore

EXPECTED = {
    # money and errors
    "Currency", "Money",
    "PaycoreError", "ConfigurationError", "PluginError", "UnsupportedOperation",
    "InvalidRequest", "InvalidAmount", "CurrencyMismatch", "StateError",
    "IdempotencyConflict", "PaymentBusy", "GatewayError", "GatewayUnavailable",
    "OutcomeUnknown", "GatewayProtocolError", "GatewayRefused", "GatewayAuthError",
    "WebhookSignatureError",
    # the model
    "PaymentRequest", "GatewayResult", "GatewayEvent", "NextAction", "NextActionKind",
    "Outcome", "DeclineReason", "TransactionType", "TransactionStatus", "PaymentStatus",
    "PaymentMethod", "PaymentMethodOption", "Customer", "CheckoutSession", "CheckoutKind",
    "SavedMethod", "SaveMethodRequest",
    "WebhookRequest", "WebhookReply", "WebhookHandling",
    # the contract and the driver
    "Gateway", "GatewayConfig", "Capabilities", "Operation", "Exchange",
    "GatewayDriver", "AsyncGatewayDriver", "RetryPolicy", "Recorded", "Summarized", "Transcript",
    # the ledger and the services
    "Payment", "PaymentTransaction", "PaymentTransactionServices",
    "AsyncPaymentTransactionServices", "Store", "Reconciler", "NotFound",
    # the checkout
    "CheckoutService", "AsyncCheckoutService", "Cart", "CartItem", "Checkout",
    "CheckoutStatus", "CheckoutFailure", "CaptureMode", "PaymentOptions", "StoredMethod",
    "Submission",
    # the OMS
    "OrderPayments", "AsyncOrderPayments", "Instruction", "InstructionKind",
    "InstructionOutcome", "InstructionResult",
    # settings
    "Settings", "load_settings", "build_gateways",
}  # fmt: skip


def test_all_is_exact() -> None:
    assert set(paycore.__all__) == EXPECTED
    assert len(paycore.__all__) == len(EXPECTED)


def test_all_is_sorted() -> None:
    assert paycore.__all__ == sorted(paycore.__all__)


def test_every_public_name_exists_and_is_documented() -> None:
    for name in paycore.__all__:
        value = getattr(paycore, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"paycore.{name} has no docstring"


def test_the_package_is_marked_typed() -> None:
    assert importlib.resources.files("paycore").joinpath("py.typed").is_file()


def test_every_error_is_a_paycore_error() -> None:
    for name in paycore.__all__:
        value = getattr(paycore, name)
        if inspect.isclass(value) and issubclass(value, Exception):
            assert issubclass(value, paycore.PaycoreError), name


def test_every_public_name_resolves_to_the_object_of_its_module() -> None:
    from paycore.gateways.driver import GatewayDriver
    from paycore.money import Money

    assert paycore.Money is Money
    assert paycore.GatewayDriver is GatewayDriver
    assert set(paycore._MODULES) == set(paycore.__all__)


def test_an_unknown_name_is_an_attribute_error() -> None:
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        paycore.Nope  # noqa: B018
