"""The pytest plugin every project installing paycore loads: prefixed, and light to load."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

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
