"""Checkout coordination: payment options, split tender, hosted pages, submit, complete.

See `paycore.checkout.coordination` for how a checkout goes, `CheckoutService`
(sync) and `AsyncCheckoutService` for the API.
"""

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

__all__ = [
    "AsyncCheckoutService",
    "CaptureMode",
    "Cart",
    "CartItem",
    "Checkout",
    "CheckoutFailure",
    "CheckoutService",
    "CheckoutStatus",
    "PaymentOptions",
    "StoredMethod",
    "Submission",
]
