"""The pytest plugin every project installing paycore loads: prefixed, and light to load."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from paycore.gateways.dummy import DummyGateway
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.sandbox import SandboxServer, WebhookReceiver

PLUGIN = "paycore.testing.pytest_plugin"


def test_loading_the_plugin_imports_no_server_or_sandbox_module():
    probe = (
        f"import json, sys, {PLUGIN}\n"
        "heavy = ('uvicorn', 'starlette', 'paycore.sandbox', 'paycore.gateways')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(heavy))))\n"
    )
    result = subprocess.run(  # noqa: S603 - this interpreter
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )

    assert json.loads(result.stdout) == []


def test_every_fixture_of_the_plugin_is_named_paycore(tmp_path: Path):
    (tmp_path / "test_nothing.py").write_text("", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--fixtures", "-v", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    section = re.search(
        rf"fixtures defined from {re.escape(PLUGIN)} -+\n(.*?)(?:\n-{{5,}}|\Z)",
        result.stdout,
        re.S,
    )
    assert section, result.stdout
    names = re.findall(r"^(\w+)(?: \[\w+ scope\])? -- ", section[1], re.M)

    assert set(names) == {
        "_paycore_stopping_servers",
        "paycore_sandbox_server",
        "paycore_webhook_receiver",
        "paycore_dummy_sandbox",
        "paycore_dummy_server",
        "paycore_dummy_gateway",
        "_paycore_ledger_template",
        "paycore_ledger",
        "paycore_services",
    }


def test_the_dummy_fixtures_give_a_gateway_configured_for_the_served_sandbox(
    paycore_dummy_sandbox, paycore_dummy_server, paycore_dummy_gateway
):
    assert isinstance(paycore_dummy_sandbox, DummySandbox)
    assert isinstance(paycore_dummy_server, SandboxServer)
    assert isinstance(paycore_dummy_gateway, DummyGateway)
    assert paycore_dummy_gateway.config.base_url == paycore_dummy_server.url


def test_the_webhook_receiver_is_served_and_records_deliveries(paycore_webhook_receiver, http):
    assert isinstance(paycore_webhook_receiver, WebhookReceiver)

    http.post(paycore_webhook_receiver.url, content=b'{"id": "evt_1"}')

    (delivery,) = paycore_webhook_receiver.wait_for(1)
    assert delivery.body == b'{"id": "evt_1"}'


def test_the_server_fixture_serves_sandboxes_and_plain_apps_side_by_side(
    paycore_sandbox_server, http
):
    app = paycore_sandbox_server(WebhookReceiver().app())
    sandbox = paycore_sandbox_server(DummySandbox())

    assert app.port != sandbox.port
    assert http.post(f"{app.url}/webhooks", content=b"{}").status_code == 200
    assert http.get(f"{sandbox.url}/v1/payments").status_code == 401


def test_the_ledger_fixture_is_a_migrated_empty_sqlite_file_of_the_tests_own(
    paycore_ledger, tmp_path
):
    from paycore.transactions.migrate import head_revision

    assert paycore_ledger.dialect == "sqlite"
    assert paycore_ledger.engine.url.database == str(tmp_path / "paycore-ledger.db")
    assert paycore_ledger.current_revision() == head_revision()
    with paycore_ledger.reading() as session:
        assert session.count_payments() == 0


def test_the_ledger_fixture_takes_a_fresh_postgresql_schema_when_asked(
    postgres_url, monkeypatch, request
):
    from paycore.transactions.migrate import head_revision

    monkeypatch.setenv("PAYCORE_TEST_DATABASE_URL", postgres_url)

    ledger = request.getfixturevalue("paycore_ledger")

    assert ledger.dialect == "postgresql"
    with ledger.engine.connect() as connection:
        schema = connection.exec_driver_sql("SELECT current_schema()").scalar_one()
    assert schema.startswith("paycore_test_")
    assert ledger.current_revision() == head_revision()
    with ledger.reading() as session:
        assert session.count_payments() == 0


def test_the_ledger_fixture_refuses_a_database_url_that_is_not_postgresql(monkeypatch, request):
    monkeypatch.setenv("PAYCORE_TEST_DATABASE_URL", "sqlite:///elsewhere.db")

    with pytest.raises(pytest.fail.Exception, match="must name a PostgreSQL database"):
        request.getfixturevalue("paycore_ledger")


def test_the_services_factory_configures_gateways_under_their_names_and_no_hooks(
    paycore_services, paycore_ledger, paycore_dummy_gateway
):
    from paycore.money import Money
    from paycore.transactions.model import PaymentMethod

    services = paycore_services({"main": paycore_dummy_gateway})
    payment = services.create_payment(
        Money(500, "USD"), payment_method=PaymentMethod(type="card", token="tok_visa")
    )

    assert (services.store, services.hooks, list(services.drivers)) == (
        paycore_ledger,
        None,
        ["main"],
    )
    assert payment.gateway == "main"
    assert services.authorize(payment.id).succeeded
