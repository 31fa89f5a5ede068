"""The web app served on loopback beside the dummy sandbox, on the test's own ledger.

``web_app()`` builds the app from settings (the ledger, the dummy gateway configured
for the served sandbox, ``[web]`` as given) and serves it; the sandbox then delivers
its signed webhooks to the app's ``/webhooks/dummy``. ``services`` is the merchant's
side, on the same ledger: it creates payments (and checkouts over it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from paycore.config import GatewaySettings, Settings, WebSettings
from paycore.gateways.dummy import DummyGateway
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.sandbox.base import DEFAULT_WEBHOOK_TARGET
from paycore.sandbox.server import SandboxServer
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store
from paycore.web import create_app
from tests.web.support import FAILURE_URL, SUCCESS_URL, WebApp, free_port, ledger_url


@pytest.fixture
def paycore_dummy_sandbox() -> DummySandbox:
    """The dummy sandbox, retrying a refused delivery within a second or two."""
    return DummySandbox(seed=0, webhook_schedule=(0, 0.2, 0.5, 1, 2))


@pytest.fixture
def settings_for(
    paycore_ledger: Store, paycore_dummy_sandbox: DummySandbox, paycore_dummy_server: SandboxServer
) -> Callable[..., Settings]:
    """Settings for an app at ``url``: the test's ledger, the served dummy sandbox."""

    def build(url: str, *, web: WebSettings | None = None, **changes: Any) -> Settings:
        config = paycore_dummy_sandbox.gateway_config(paycore_dummy_server.url)
        fields: dict[str, Any] = {
            "database_url": ledger_url(paycore_ledger),
            "webhook_base_url": url,
            "gateways": {"dummy": GatewaySettings(name="dummy", plugin="dummy", config=config)},
            "web": web or WebSettings(success_url=SUCCESS_URL, failure_url=FAILURE_URL),
        }
        return Settings(**{**fields, **changes})

    return build


@pytest.fixture
def web_app(
    settings_for: Callable[..., Settings], paycore_dummy_sandbox: DummySandbox
) -> Iterator[Callable[..., WebApp]]:
    """Serve the app (``web_app(web=WebSettings(...))``, on ``port`` if given); the
    sandbox delivers to it unless ``deliver=False`` (the test sends deliveries itself)."""
    servers: list[SandboxServer] = []

    def serve(*, deliver: bool = True, port: int | None = None, **options: Any) -> WebApp:
        port = port or free_port()
        url = f"http://127.0.0.1:{port}"
        settings = settings_for(url, **options)
        servers.append(SandboxServer(create_app(settings), port=port).start())
        served = WebApp(url, settings)
        if deliver:
            paycore_dummy_sandbox.add_webhook_target(
                DEFAULT_WEBHOOK_TARGET, served.webhook_url, sign=paycore_dummy_sandbox.sign_webhook
            )
        return served

    yield serve
    paycore_dummy_sandbox.close()
    for server in servers:
        server.stop()


@pytest.fixture
def services(
    paycore_services: Callable[..., PaymentTransactionServices],
    paycore_dummy_gateway: DummyGateway,
) -> PaymentTransactionServices:
    """The merchant's payment services on the test's ledger, with the dummy gateway."""
    return paycore_services({"dummy": paycore_dummy_gateway})


@pytest.fixture
def web_log(caplog: pytest.LogCaptureFixture) -> Callable[[], list[dict[str, Any]]]:
    """The fields of each ``paycore.web`` log line so far, with its level and message."""
    caplog.set_level(logging.DEBUG, logger="paycore.web")

    def lines() -> list[dict[str, Any]]:
        return [
            {
                **record.paycore,
                "level": record.levelname,
                "message": record.getMessage(),
                "traceback": record.exc_info is not None,
            }
            for record in caplog.records
            if record.name == "paycore.web"
        ]

    return lines
