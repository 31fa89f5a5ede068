"""`create_app`: paycore's web app, a Starlette app for providers and customers (DESIGN §7).

Routes, relative to wherever the app is mounted:

- ``POST|GET /webhooks/{gateway}``: provider webhooks and callbacks
  (`paycore.web.webhooks`);
- ``GET /return/{gateway}?checkout=ID``: the customer back from a hosted page
  (`paycore.web.returns`);
- ``GET /health``: the store and the gateways (`paycore.web.health`).

Serve it on its own (``paycore serve``, any ASGI server) or mount it in an app of
yours. Either way ``settings.webhook_base_url`` must be its public address: payments
started by the checkout send providers and customers there. Starlette and FastAPI do
not run a mounted app's lifespan, so give it services and close them in yours::

    services = AsyncPaymentTransactionServices.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app):
        yield
        await services.aclose()

    shop = Starlette(
        routes=[..., Mount("/paycore", app=create_app(settings, services=services))],
        lifespan=lifespan,
    )

Every request is logged once (`paycore.web.request_log`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from paycore.checkout import AsyncCheckoutService
from paycore.config import Settings
from paycore.transactions.async_services import AsyncPaymentTransactionServices
from paycore.web.health import HealthEndpoint
from paycore.web.request_log import RequestLogMiddleware
from paycore.web.returns import ReturnEndpoint
from paycore.web.webhooks import WebhookEndpoint

__all__ = ["create_app"]


def create_app(
    settings: Settings,
    *,
    services: AsyncPaymentTransactionServices | None = None,
    checkout: AsyncCheckoutService | None = None,
) -> Starlette:
    """The web app for ``settings``: its database, gateways, ``[web]`` and ``[checkout]``.

    Without ``services``, builds `AsyncPaymentTransactionServices` from the settings;
    without ``checkout``, an `AsyncCheckoutService` over the services, returning
    customers to ``settings.webhook_base_url``. What it builds it closes when the
    app shuts down (its lifespan); what it is given stays the caller's to close.
    Mounted, its lifespan does not run: pass ``services`` (see the module docstring).
    """
    owned = services is None
    if services is None:
        services = AsyncPaymentTransactionServices.from_settings(settings)
    if checkout is None:
        checkout = AsyncCheckoutService(
            services,
            capture=settings.checkout.capture,
            return_base_url=settings.webhook_base_url,
            options_timeout=settings.checkout.options_timeout,
        )
    built = services if owned else None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if built is not None:
                await built.aclose()

    webhooks = WebhookEndpoint(services, checkout, max_body_bytes=settings.web.max_body_bytes)
    returns = ReturnEndpoint(services, checkout, settings.web)
    health = HealthEndpoint(services, settings.gateways)
    return Starlette(
        routes=[
            Route("/webhooks/{gateway}", webhooks.receive, methods=["POST", "GET"]),
            Route("/return/{gateway}", returns.back, methods=["GET"]),
            Route("/health", health.check, methods=["GET"]),
        ],
        middleware=[Middleware(RequestLogMiddleware)],
        lifespan=lifespan,
    )
