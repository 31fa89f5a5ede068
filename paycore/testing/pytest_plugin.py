r"""paycore's pytest plugin (entry point ``pytest11: paycore``): sandboxes as fixtures.

pytest loads it into every project where paycore is installed, so every fixture is
named ``paycore_…`` (never shadowing a project's own ``sandbox_server``), and the
heavy modules (uvicorn, starlette, the sandboxes) are imported only when a test asks
for a fixture.

- ``paycore_sandbox_server``: a factory; ``paycore_sandbox_server(DummySandbox(...))``
  serves a sandbox (or any ASGI app) on a free loopback port and returns the running
  `paycore.sandbox.SandboxServer` (``.url``). After the test each sandbox stops
  delivering webhooks and each server is asked to stop (new connections are refused
  within ~0.1 s); they are awaited at the end of the session.
- ``paycore_webhook_receiver``: a served `paycore.sandbox.WebhookReceiver`, a
  merchant endpoint recording every delivery; point a sandbox's ``webhook_url`` at
  its ``url``.
- ``paycore_dummy_sandbox``: a `DummySandbox` (seeded, so its ids repeat). Override
  it in a test module or conftest to build the sandbox differently (webhooks, faults).
- ``paycore_dummy_server``: ``paycore_dummy_sandbox``, served.
- ``paycore_dummy_gateway``: a `DummyGateway` configured for ``paycore_dummy_server``.
- ``paycore_ledger``: a migrated ledger `paycore.transactions.store.Store` of the test's
  own, closed afterwards. By default a fresh SQLite file under ``tmp_path``. When
  ``PAYCORE_TEST_DATABASE_URL`` names a PostgreSQL database
  (``postgresql://user@host:5432/db``), a fresh schema there instead, migrated, and
  dropped after the test; the database must be reachable, or the test fails.
- ``paycore_services``: a factory; ``paycore_services({"name": gateway_or_driver})``
  gives `PaymentTransactionServices` on ``paycore_ledger`` with those gateways
  (`Gateway`\ s or `GatewayDriver`\ s) under those configured names, and no hooks
  unless ``hooks=`` is given (a pluggy hook relay); further keywords go to the
  services. Every one is closed after the test.

A client talking to these servers should be built with ``trust_env=False``, so a
proxy set in the environment (``HTTP_PROXY``) cannot capture loopback traffic.

The gateway contract every plugin runs (`paycore.testing.GatewayContract`) is built on
these fixtures.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import pytest

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from paycore.gateways.base import Gateway
    from paycore.gateways.driver import GatewayDriver
    from paycore.gateways.dummy import DummyGateway
    from paycore.gateways.dummy_sandbox import DummySandbox
    from paycore.sandbox.base import Sandbox
    from paycore.sandbox.server import SandboxServer
    from paycore.sandbox.webhook_receiver import WebhookReceiver
    from paycore.transactions.services import PaymentTransactionServices
    from paycore.transactions.store import Store

# What ``paycore_sandbox_server`` gives: serve a `Sandbox` or an ASGI app.
ServeSandbox: TypeAlias = "Callable[[Sandbox | ASGIApp], SandboxServer]"
# What ``paycore_services`` gives: ``(gateways, *, hooks=None, **options) -> services``.
MakeServices: TypeAlias = "Callable[..., PaymentTransactionServices]"

DATABASE_URL_ENV = "PAYCORE_TEST_DATABASE_URL"

# The assertions of the gateway contract and the ledger machine explain themselves when
# pytest rewrites them; the plugin loads before any test module imports them.
pytest.register_assert_rewrite(
    *(
        f"paycore.testing.{module}"
        for module in (
            "contract",
            "contract_base",
            "contract_crash",
            "contract_faults",
            "contract_operations",
            "contract_payments",
            "contract_resilience",
            "contract_scrubbing",
            "contract_support",
            "contract_webhooks",
            "fault_cells",
            "ledger_checks",
            "ledger_machine",
            "ledger_world",
        )
    )
)


@pytest.fixture(scope="session")
def _paycore_stopping_servers() -> Iterator[list[SandboxServer]]:
    # uvicorn takes ~0.1 s to shut down; servers asked to stop after a test finish
    # shutting down while the next tests run, and are awaited here at the end.
    stopping: list[SandboxServer] = []
    yield stopping
    for server in stopping:
        server.stop()


@pytest.fixture
def paycore_sandbox_server(
    _paycore_stopping_servers: list[SandboxServer],
) -> Iterator[ServeSandbox]:
    """Serve sandboxes (or ASGI apps) on loopback for the duration of one test."""
    from paycore.sandbox.base import Sandbox
    from paycore.sandbox.server import SandboxServer

    servers: list[SandboxServer] = []
    sandboxes: list[Sandbox] = []

    def serve(target: Sandbox | ASGIApp) -> SandboxServer:
        if isinstance(target, Sandbox):
            sandboxes.append(target)
            target = target.app()
        server = SandboxServer(target).start()
        servers.append(server)
        return server

    try:
        yield serve
    finally:
        for sandbox in sandboxes:
            sandbox.close()
        for server in servers:
            server.request_stop()
        _paycore_stopping_servers.extend(servers)


@pytest.fixture
def paycore_webhook_receiver(paycore_sandbox_server: ServeSandbox) -> WebhookReceiver:
    """A served merchant endpoint recording every webhook delivery."""
    from paycore.sandbox.webhook_receiver import WebhookReceiver

    receiver = WebhookReceiver()
    receiver.base_url = paycore_sandbox_server(receiver.app()).url
    return receiver


@pytest.fixture
def paycore_dummy_sandbox() -> DummySandbox:
    """The dummy provider's sandbox, seeded; override to build it differently."""
    from paycore.gateways.dummy_sandbox import DummySandbox

    return DummySandbox(seed=0)


@pytest.fixture
def paycore_dummy_server(
    paycore_sandbox_server: ServeSandbox, paycore_dummy_sandbox: DummySandbox
) -> SandboxServer:
    """``paycore_dummy_sandbox``, served on loopback."""
    return paycore_sandbox_server(paycore_dummy_sandbox)


@pytest.fixture
def paycore_dummy_gateway(
    paycore_dummy_sandbox: DummySandbox, paycore_dummy_server: SandboxServer
) -> DummyGateway:
    """A `DummyGateway` configured for ``paycore_dummy_server``."""
    from paycore.gateways.dummy import DummyGateway

    gateway = DummyGateway.from_config(
        paycore_dummy_sandbox.gateway_config(paycore_dummy_server.url)
    )
    assert isinstance(gateway, DummyGateway)
    return gateway


@pytest.fixture(scope="session")
def _paycore_ledger_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Migrating takes tens of milliseconds; copying a migrated file takes one.
    from paycore.transactions.store import Store

    path = tmp_path_factory.mktemp("paycore-ledger") / "template.db"
    store = Store.connect(f"sqlite:///{path}")
    try:
        store.upgrade()
        with store.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        store.close()
    return path


@pytest.fixture
def paycore_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated ledger of the test's own: SQLite, or PostgreSQL (see the module)."""
    from sqlalchemy.engine import make_url

    from paycore.transactions.store import Store

    url = os.environ.get(DATABASE_URL_ENV)
    if url:
        if make_url(url).get_backend_name() != "postgresql":
            pytest.fail(f"${DATABASE_URL_ENV} must name a PostgreSQL database, or be unset")
        yield from _postgres_ledger(url)
        return
    template: Path = request.getfixturevalue("_paycore_ledger_template")
    path = tmp_path / "paycore-ledger.db"
    shutil.copyfile(template, path)
    store = Store.connect(f"sqlite:///{path}")
    try:
        yield store
    finally:
        store.close()


def _postgres_ledger(url: str) -> Iterator[Store]:
    """A fresh schema in the database at ``url``, migrated; dropped afterwards."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from paycore.config import redact_url
    from paycore.transactions.store import Store

    schema = f"paycore_test_{uuid.uuid4().hex[:12]}"
    admin = Store.connect(url)
    try:
        with admin.engine.begin() as connection:
            connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except sa.exc.DBAPIError as error:
        admin.close()
        cause = " ".join(str(error.orig or error).split())
        pytest.fail(f"PostgreSQL at {redact_url(url)} (${DATABASE_URL_ENV}): {cause}")
    scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    store = Store.connect(scoped.render_as_string(hide_password=False))
    try:
        store.upgrade()
        yield store
    finally:
        store.close()
        with admin.engine.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


@pytest.fixture
def paycore_services(paycore_ledger: Store) -> Iterator[MakeServices]:
    """Build `PaymentTransactionServices` on ``paycore_ledger``; closed after the test."""
    from paycore.transactions.services import PaymentTransactionServices

    built: list[PaymentTransactionServices] = []

    def make(
        gateways: Mapping[str, Gateway | GatewayDriver], *, hooks: Any = None, **options: Any
    ) -> PaymentTransactionServices:
        services = PaymentTransactionServices(paycore_ledger, gateways, hooks=hooks, **options)
        built.append(services)
        return services

    try:
        yield make
    finally:
        for services in built:
            services.close()
