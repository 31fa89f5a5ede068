"""The paycore command, driven through click's test runner."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from click.testing import CliRunner, Result

import paycore
from paycore.cli import cli
from paycore.gateways.driver import GatewayDriver
from paycore.gateways.dummy import DummyGateway
from paycore.money import Money
from paycore.transactions.migrate import head_revision
from paycore.transactions.store import Store

if TYPE_CHECKING:
    from tests.conftest import FakeSite

    from paycore.gateways.dummy_sandbox import DummySandbox
    from paycore.sandbox.server import SandboxServer

SENTINEL = "sk_live_SENTINEL_0cc175b9c0f1b6a8"


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": "200", **(env or {})})


def assert_one_line_error(result: Result, exit_code: int) -> str:
    assert result.exit_code == exit_code, result.output
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ")
    assert "Traceback" not in result.output
    return line


def test_version_prints_the_version() -> None:
    result = run("--version")

    assert result.exit_code == 0
    assert result.stdout == f"paycore {paycore.__version__}\n"


def test_gateways_list_shows_each_installed_plugin_and_what_it_offers() -> None:
    result = run("gateways", "list")

    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if " dummy " in line)
    assert "Dummy (reference sandbox)" in row
    assert f"paycore {paycore.__version__}" in row
    assert "authorize" in result.stdout
    assert "capture (partial, multiple)" in result.stdout


def test_gateways_list_marks_a_broken_plugin_and_reports_its_cause(fake_site: FakeSite) -> None:
    fake_site.install(
        "paycore-brokenpay",
        entry_points={"paycore.gateways": {"brokenpay": "brokenpay_gateway:BrokenpayGateway"}},
        modules={"brokenpay_gateway": "import brokenpay_sdk\n"},
    )

    result = run("gateways", "list")

    assert result.exit_code == 1
    assert "failed to load" in result.stdout
    assert " dummy " in result.stdout
    (line,) = result.stderr.splitlines()
    assert "No module named 'brokenpay_sdk'" in line


def test_gateways_show_prints_capabilities_and_config_schema() -> None:
    result = run("gateways", "show", "dummy")

    assert result.exit_code == 0, result.output
    assert "Dummy (reference sandbox) (dummy)" in result.stdout
    assert "partial capture" in result.stdout
    assert "idempotency window" in result.stdout
    assert '"webhook_secret"' in result.stdout
    assert '"timeouts"' in result.stdout


def test_gateways_show_json_is_one_machine_readable_document() -> None:
    result = run("gateways", "show", "dummy", "--json")

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["name"] == "dummy"
    assert document["entry_point"] == "paycore.gateways.dummy:DummyGateway"
    assert document["distribution"] == "paycore"
    assert "authorize" in document["capabilities"]["operations"]
    assert {"api_key", "timeouts"} <= set(document["config_schema"]["properties"])


def test_an_unknown_gateway_is_a_one_line_error_with_exit_code_1() -> None:
    line = assert_one_line_error(run("gateways", "show", "nosuchpay"), exit_code=1)

    assert "'nosuchpay'" in line
    assert "dummy" in line


def test_an_unknown_option_is_a_one_line_usage_error() -> None:
    line = assert_one_line_error(run("gateways", "list", "--colour"), exit_code=2)

    assert "No such option" in line
    assert "--colour" in line
    assert line.endswith("(see 'paycore gateways list --help')")


def test_an_unknown_command_is_a_one_line_usage_error() -> None:
    line = assert_one_line_error(run("gateway"), exit_code=2)

    assert "No such command 'gateway'" in line


# -- settings ------------------------------------------------------------------------


def test_a_bad_settings_file_lists_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        textwrap.dedent(
            """\
            database_url = 5
            [gateways.dummy]
            api_key = "${MISSING_KEY}"
            """
        ),
        encoding="utf-8",
    )

    result = run("--config", str(bad), "config", "check")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: settings file {bad}: 4 problems",
        "  - database_url: must be a string, not an integer",
        "  - gateways.dummy.api_key: environment variable MISSING_KEY is not set",
        "  - gateways.dummy.base_url: is required",
        "  - gateways.dummy.webhook_secret: is required",
    ]


def test_config_check_accepts_good_settings_and_prints_no_secret(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(
        textwrap.dedent(
            """\
            database_url = "postgresql://pay:${DB_PASSWORD}@db.internal/pay"

            [gateways.shop]
            plugin = "dummy"
            base_url = "http://127.0.0.1:8100"
            api_key = "${SHOP_API_KEY}"
            webhook_secret = "whsec_test"
            """
        ),
        encoding="utf-8",
    )

    result = run(
        "--config",
        str(good),
        "config",
        "check",
        env={"DB_PASSWORD": SENTINEL, "SHOP_API_KEY": SENTINEL},
    )

    assert result.exit_code == 0, result.output
    assert "gateways: shop (dummy)" in result.stdout
    assert "postgresql://pay:***@db.internal/pay" in result.stdout
    assert SENTINEL not in result.output


def test_paycore_config_is_honoured_without_the_option(tmp_path: Path) -> None:
    bad = tmp_path / "from-env.toml"
    bad.write_text("surprise = 1\n", encoding="utf-8")

    result = run("config", "check", env={"PAYCORE_CONFIG": str(bad)})

    assert result.exit_code == 1
    assert "surprise: unknown setting" in result.stderr


# -- database ------------------------------------------------------------------------


def test_db_upgrade_then_current_on_a_new_sqlite_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    env = {"PAYCORE_DATABASE_URL": url}
    head = head_revision()

    before = run("db", "current", env=env)
    upgraded = run("db", "upgrade", env=env)
    again = run("db", "upgrade", env=env)
    current = run("db", "current", env=env)

    for result in (before, upgraded, again, current):
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines()[0] == f"database: {url}"
    assert before.stdout.splitlines()[1] == (
        f"revision: none (not the head {head}: run 'paycore db upgrade')"
    )
    assert upgraded.stdout.splitlines()[1] == f"revision: none -> {head} (head)"
    assert again.stdout.splitlines()[1] == f"revision: {head} (head), unchanged"
    assert current.stdout.splitlines()[1] == f"revision: {head} (head)"
    store = Store.connect(url)
    try:
        assert store.current_revision() == head
    finally:
        store.close()


def test_db_upgrade_to_an_unknown_revision_is_a_one_line_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"

    result = run("db", "upgrade", "--revision", "nope", env={"PAYCORE_DATABASE_URL": url})

    line = assert_one_line_error(result, exit_code=1)
    assert line == f"error: database {url}: Can't locate revision identified by 'nope'"
    store = Store.connect(url)
    try:
        assert store.current_revision() is None
    finally:
        store.close()


@pytest.mark.parametrize("command", ["upgrade", "current"])
def test_an_unreachable_database_is_a_one_line_error_without_its_password(command: str) -> None:
    url = f"postgresql://pay:{SENTINEL}@127.0.0.1:1/pay?connect_timeout=3"

    result = run("db", command, env={"PAYCORE_DATABASE_URL": url})

    line = assert_one_line_error(result, exit_code=1)
    assert line.startswith(
        "error: database postgresql://pay:***@127.0.0.1:1/pay?connect_timeout=3: "
    )
    assert SENTINEL not in result.output


def test_an_unsupported_database_is_a_one_line_error() -> None:
    result = run("db", "current", env={"PAYCORE_DATABASE_URL": f"mysql://pay:{SENTINEL}@db/pay"})

    line = assert_one_line_error(result, exit_code=1)
    assert line == (
        "error: database mysql://pay:***@db/pay: mysql: paycore stores its ledger in SQLite or "
        "PostgreSQL"
    )


# -- sandboxes -----------------------------------------------------------------------


def test_a_bad_fault_is_a_one_line_error() -> None:
    line = assert_one_line_error(
        run("sandbox", "serve", "dummy", "--fault", "latency=0.1", "--fault", "gremlins=3"),
        exit_code=2,
    )

    assert line.startswith("error: Invalid value for '--fault': 'gremlins': unknown fault")


def test_a_fault_without_a_value_is_a_one_line_error() -> None:
    line = assert_one_line_error(run("sandbox", "serve", "dummy", "--fault", "latency"), 2)

    assert "expected key=value" in line


def test_a_webhook_url_must_be_absolute() -> None:
    line = assert_one_line_error(
        run("sandbox", "serve", "dummy", "--webhook-url", "/hooks"), exit_code=2
    )

    assert "--webhook-url" in line


def test_an_unknown_sandbox_is_a_one_line_error() -> None:
    line = assert_one_line_error(run("sandbox", "serve", "nosuchpay"), exit_code=1)

    assert "no sandbox plugin named 'nosuchpay' is installed" in line


def _console_script() -> str:
    script = shutil.which("paycore", path=str(Path(sys.executable).parent))
    assert script, "the paycore console script is installed beside the interpreter"
    return script


class Serving:
    """``paycore sandbox serve …`` in a subprocess, its output read line by line."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own console script
            [_console_script(), "sandbox", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def read_until(self, pattern: str, timeout: float = 15) -> re.Match[str]:
        """The first line matching ``pattern`` (all lines read are kept in ``output``)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            self.output.append(line)
            if found := re.search(pattern, line):
                return found
        raise AssertionError(f"no line matches {pattern!r} in {''.join(self.output)!r}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def serve() -> Iterator[Callable[..., Serving]]:
    started: list[Serving] = []

    def start(*args: str) -> Serving:
        started.append(Serving(*args))
        return started[-1]

    yield start
    for serving in started:
        serving.stop()


def test_sandbox_serve_prints_the_url_it_listens_on_and_serves_until_stopped(serve, http):
    serving = serve("dummy", "--port", "0")

    url = serving.read_until(r"dummy sandbox on (http://127\.0\.0\.1:(\d+)) ")
    assert int(url[2]) > 0
    response = http.get(f"{url[1]}/v1/payment_methods", params={"currency": "USD"})
    assert response.status_code == 401  # it is the dummy provider: it wants the API key


def test_sandbox_serve_prints_the_gateway_settings_ready_for_paycore_toml(serve, http):
    serving = serve("dummy", "--port", "0")
    url = serving.read_until(r"dummy sandbox on (http://\S+) ")[1]

    serving.read_until(r"^\[gateways\.dummy\]$")
    snippet = ["[gateways.dummy]\n"]
    while (line := serving.lines.get(timeout=5)).strip():
        snippet.append(line)
    settings = tomllib.loads("".join(snippet))["gateways"]["dummy"]

    assert settings["base_url"] == url
    gateway = DummyGateway.from_config(settings)
    with GatewayDriver(gateway, client=http, hooks=None) as driver:
        options = driver.run(gateway.payment_methods(Money(1000, "USD")), operation="methods")
    assert [option.type for option in options] == ["card", "bank_transfer", "gift_card"]


def test_sandbox_serve_on_a_port_in_use_is_a_one_line_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(  # noqa: S603 - our own console script
            [_console_script(), "sandbox", "serve", "dummy", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
    assert "--port" in line


def test_the_console_script_reports_errors_in_one_line() -> None:
    result = subprocess.run(  # noqa: S603 - our own console script
        [_console_script(), "gateways", "show", "nosuchpay"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("error: no gateway plugin named 'nosuchpay'")


@pytest.mark.parametrize(
    "args",
    [["--help"], ["gateways", "--help"], ["sandbox", "serve", "-h"], ["db", "upgrade", "--help"]],
)
def test_help_is_available_for_every_level(args: list[str]) -> None:
    result = run(*args)

    assert result.exit_code == 0
    assert "Usage: " in result.stdout


# -- the web app ---------------------------------------------------------------------


def _web_settings(
    tmp_path: Path, gateway: Mapping[str, Any] | None, *, migrate: bool = True
) -> Path:
    """A settings file: a SQLite ledger (migrated unless told) and the dummy gateway."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    if migrate:
        store = Store.connect(url)
        try:
            store.upgrade()
        finally:
            store.close()
    lines = [f'database_url = "{url}"', 'webhook_base_url = "https://shop.example/paycore"']
    if gateway is not None:
        lines.append("[gateways.dummy]")
        lines += [f'{key} = "{value}"' for key, value in gateway.items()]
    path = tmp_path / "paycore.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class _WebServing(Serving):
    """``paycore … serve …`` in a subprocess, its output read line by line."""

    def __init__(self, *args: str) -> None:  # the command differs; the reading is the same
        self.process = subprocess.Popen(  # noqa: S603 - our own console script
            [_console_script(), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        self.lines = queue.Queue()
        self.output = []
        threading.Thread(target=self._read, daemon=True).start()


def test_serve_runs_the_web_app_from_the_settings_until_stopped(
    tmp_path: Path,
    http: httpx.Client,
    paycore_dummy_sandbox: DummySandbox,
    paycore_dummy_server: SandboxServer,
) -> None:
    config = _web_settings(tmp_path, paycore_dummy_sandbox.gateway_config(paycore_dummy_server.url))
    serving = _WebServing("--config", str(config), "serve", "--port", "0")
    try:
        url = serving.read_until(r"paycore on (http://127\.0\.0\.1:\d+) ")[1]

        health = http.get(f"{url}/health")
        unknown = http.post(f"{url}/webhooks/nosuchpay", content=b"{}")
        logged = serving.read_until(r"POST /webhooks/nosuchpay 404 .*reason=unknown_gateway")
    finally:
        serving.stop()

    assert health.status_code == 200
    assert health.json() == {"status": "ok", "store": "ok", "gateways": ["dummy"]}
    assert unknown.status_code == 404
    assert "paycore.web" in logged.string
    assert paycore_dummy_sandbox.webhook_secrets[0] not in "".join(serving.output)


def test_serve_on_a_port_in_use_is_a_one_line_error(
    tmp_path: Path, paycore_dummy_sandbox: DummySandbox
) -> None:
    config = _web_settings(tmp_path, paycore_dummy_sandbox.gateway_config("http://127.0.0.1:9"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = run("--config", str(config), "serve", "--port", str(port))

    line = assert_one_line_error(result, exit_code=1)
    assert line.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
    assert "--port" in line


def test_serve_on_a_database_not_migrated_says_to_upgrade_it(
    tmp_path: Path, paycore_dummy_sandbox: DummySandbox
) -> None:
    gateway = paycore_dummy_sandbox.gateway_config("http://127.0.0.1:9")
    config = _web_settings(tmp_path, gateway, migrate=False)

    result = run("--config", str(config), "serve", "--port", "0")

    line = assert_one_line_error(result, exit_code=1)
    assert line.endswith("run 'paycore db upgrade'")
    assert line.startswith(f"error: database sqlite:///{tmp_path / 'ledger.db'} is at revision")


def test_serve_without_a_gateway_is_a_one_line_error(tmp_path: Path) -> None:
    config = _web_settings(tmp_path, None)

    result = run("--config", str(config), "serve", "--port", "0")

    line = assert_one_line_error(result, exit_code=1)
    assert "no gateway is configured" in line


def test_serve_with_bad_web_settings_lists_the_problems(tmp_path: Path) -> None:
    config = tmp_path / "paycore.toml"
    config.write_text('[web]\nsuccess_url = "/thanks"\n', encoding="utf-8")

    result = run("--config", str(config), "serve")

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: settings file {config}: 1 problem",
        "  - web.success_url: must be an absolute http(s) URL such as https://shop.example/thanks",
    ]
