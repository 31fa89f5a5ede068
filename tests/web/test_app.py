"""`create_app`: mounted in the merchant's own app, and what it builds and closes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route

import paycore.web
from paycore.checkout import AsyncCheckoutService, CaptureMode
from paycore.config import CheckoutSettings, Settings
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.sandbox.base import DEFAULT_WEBHOOK_TARGET
from paycore.sandbox.server import SandboxServer
from paycore.transactions.async_services import AsyncPaymentTransactionServices
from paycore.transactions.services import PaymentTransactionServices
from paycore.web import create_app
from tests.web.support import WebApp, free_port, on_the_page, start_checkout

LOG = Callable[[], list[dict[str, Any]]]


def test_the_package_exports_create_app_only() -> None:
    assert paycore.web.__all__ == ["create_app"]


def test_mounted_under_a_prefix_it_serves_webhooks_returns_and_health_there(
    settings_for: Callable[..., Settings],
    services: PaymentTransactionServices,
    paycore_dummy_sandbox: DummySandbox,
    http: httpx.Client,
    web_log: LOG,
) -> None:
    port = free_port()
    site = f"http://127.0.0.1:{port}"
    settings = settings_for(f"{site}/paycore")
    payments = AsyncPaymentTransactionServices.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await payments.aclose()  # a mounted app's lifespan does not run: the shop's does

    async def home(request: Request) -> Response:
        return PlainTextResponse("the shop")

    shop = Starlette(
        routes=[
            Route("/", home),
            Mount("/paycore", app=create_app(settings, services=payments)),
        ],
        lifespan=lifespan,
    )
    with SandboxServer(shop, port=port):
        paycore_dummy_sandbox.add_webhook_target(
            DEFAULT_WEBHOOK_TARGET,
            f"{site}/paycore/webhooks/dummy",
            sign=paycore_dummy_sandbox.sign_webhook,
        )
        assert http.get(f"{site}/").text == "the shop"
        health = http.get(f"{site}/paycore/health")
        assert http.get(f"{site}/health").status_code == 404
        started = start_checkout(services, WebApp(f"{site}/paycore", settings))
        back = on_the_page(http, started, "approve")
        assert paycore_dummy_sandbox.wait_for_webhooks()
        answer = http.get(back)

    assert (health.status_code, health.json()["store"]) == (200, "ok")
    assert back.startswith(f"{site}/paycore/return/dummy?checkout=")
    assert [a.status_code for a in paycore_dummy_sandbox.webhook_attempts] == [200]
    assert answer.status_code == 303
    location = urlsplit(answer.headers["location"])
    assert (location.scheme, location.netloc, location.path) == (
        "https",
        "shop.example",
        "/thanks",
    )
    logged = [(line["path"], line["status"], line.get("reason")) for line in web_log()]
    assert logged == [
        ("/paycore/health", 200, None),
        ("/paycore/webhooks/dummy", 200, "applied"),
        ("/paycore/return/dummy", 303, "completed"),
    ]


def test_it_builds_the_checkout_from_the_settings_and_closes_what_it_built(
    settings_for: Callable[..., Settings], http: httpx.Client
) -> None:
    port = free_port()
    settings = settings_for(
        f"http://127.0.0.1:{port}", checkout=CheckoutSettings(capture="sale", options_timeout=2.5)
    )
    app = create_app(settings)
    # What the webhook route was given (nothing else shows it).
    route = next(r for r in app.routes if isinstance(r, Route) and r.path == "/webhooks/{gateway}")
    checkout: AsyncCheckoutService = route.endpoint.__self__.checkout  # type: ignore[attr-defined]
    assert (checkout.capture, checkout.options_timeout, checkout.return_base_url) == (
        CaptureMode.SALE,
        2.5,
        f"http://127.0.0.1:{port}",
    )
    with SandboxServer(app, port=port) as server:
        assert http.get(f"{server.url}/health").status_code == 200

    # Stopped, the app closed the services it built.
    assert checkout.services.drivers["dummy"].client.is_closed


def test_services_given_to_it_stay_open_when_it_stops(
    settings_for: Callable[..., Settings], http: httpx.Client
) -> None:
    port = free_port()
    settings = settings_for(f"http://127.0.0.1:{port}")
    payments = AsyncPaymentTransactionServices.from_settings(settings)
    with SandboxServer(create_app(settings, services=payments), port=port) as server:
        assert http.get(f"{server.url}/health").status_code == 200

    assert not payments.drivers["dummy"].client.is_closed
    asyncio.run(payments.aclose())
    assert payments.drivers["dummy"].client.is_closed
