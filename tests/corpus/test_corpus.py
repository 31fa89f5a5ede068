"""The hostile input corpus: every case is refused as its line says, and changes nothing.

The cases are data (``api/``, ``config/``, ``webhooks/<gateway>/``, ``instructions/``,
read by `tests.corpus.cases`), one test id per case. After each case the ledger reads
as before, every row of every table, and no sandbox received a request. The costly
parts (a SQLite ledger, the four sandboxes, the web app) are built once per module.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from paycore import errors
from paycore.checkout import Cart, CartItem, CheckoutService
from paycore.config import GatewaySettings, Settings, WebSettings, load_settings
from paycore.gateways.dummy import DummyGateway
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.money import Money
from paycore.oms import OrderPayments
from paycore.oms.jobs import read_instructions, run_batch
from paycore.plugins import gateway_class
from paycore.sandbox.base import Sandbox
from paycore.sandbox.server import SandboxServer
from paycore.transactions.model import PaymentMethod
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store
from paycore.web import create_app
from tests.corpus.cases import body_of, cases, lines_of, value
from tests.ledger_snapshot import ledger_rows

paycore_milkypay = pytest.importorskip("paycore_milkypay.sandbox")
paycore_wooshpay = pytest.importorskip("paycore_wooshpay.sandbox")
paycore_xpay = pytest.importorskip("paycore_xpay.sandbox")

# The XPAY tests' key pairs (test-only): generating 2048-bit keys would take seconds.
XPAY_KEYS = Path(__file__).parents[2] / "plugins" / "xpay" / "tests" / "keys"
XPAY_PEM = (XPAY_KEYS / "xpay-test-only.pem").read_text()
PARTNER_PEM = (XPAY_KEYS / "partner-test-only.pem").read_text()
CARD = PaymentMethod(type="card", token="tok_visa")
MAX_BODY_BYTES = 64 * 1024


class World:
    """What every case runs against, built once: the ledger, the sandboxes (served),
    the services with the dummy gateway, and the web app with all four gateways."""

    def __init__(self, folder: Path) -> None:
        self.store = Store.connect(f"sqlite:///{folder / 'ledger.db'}")
        self.store.upgrade()
        self.sandboxes: dict[str, Sandbox] = {
            "dummy": DummySandbox(seed=0),
            "milkypay": paycore_milkypay.MilkyPaySandbox(seed=0),
            "wooshpay": paycore_wooshpay.WooshPaySandbox(seed=0),
            "xpay": paycore_xpay.XpaySandbox(
                seed=0, xpay_private_key=XPAY_PEM, partner_private_key=PARTNER_PEM
            ),
        }
        self.servers = [SandboxServer(sandbox.app()).start() for sandbox in self.sandboxes.values()]
        self.configs = {
            name: sandbox.gateway_config(server.url)
            for (name, sandbox), server in zip(self.sandboxes.items(), self.servers, strict=True)
        }
        self.services = PaymentTransactionServices(
            self.store, {"dummy": DummyGateway.from_config(self.configs["dummy"])}, hooks=None
        )
        self.shop = CheckoutService(self.services, return_base_url="https://shop.example")
        self.oms = OrderPayments(self.services)
        settings = Settings(
            database_url=str(self.store.engine.url),
            gateways={
                name: GatewaySettings(name=name, plugin=name, config=config)
                for name, config in self.configs.items()
            },
            web=WebSettings(max_body_bytes=MAX_BODY_BYTES),
        )
        app = SandboxServer(create_app(settings)).start()
        self.servers.append(app)
        self.app_url = app.url
        self.http = httpx.Client(timeout=10, trust_env=False, follow_redirects=False)

    def requests_received(self) -> dict[str, int]:
        return {name: len(sandbox.requests_received) for name, sandbox in self.sandboxes.items()}

    def still(self) -> tuple[dict[str, list[dict[str, Any]]], dict[str, int]]:
        """What must not change: the ledger's rows and the requests each sandbox got."""
        self.services.ledger.outbox.flush()
        return ledger_rows(self.store), self.requests_received()

    def close(self) -> None:
        self.http.close()
        self.services.close()
        for sandbox in self.sandboxes.values():
            sandbox.close()
        for server in self.servers:
            server.stop()
        self.store.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built = World(tmp_path_factory.mktemp("corpus"))
    yield built
    built.close()


def error_class(name: str) -> type[errors.PaycoreError]:
    found = getattr(errors, name)
    assert issubclass(found, errors.PaycoreError), name
    return found  # type: ignore[no-any-return]


# -- the Python API ------------------------------------------------------------------------


def set_up(world: World, setup: str) -> dict[str, str]:
    """Bring a payment (or checkout) to the state the case names; the ids it made."""
    if setup == "none":
        return {}
    if setup == "checkout":
        cart = Cart(
            currency="USD",
            items=[CartItem(sku="tea", name="Tea", quantity=2, unit_price=Money(500, "USD"))],
        )
        return {"checkout": world.shop.create(cart, owner="customer-1").id}
    owner = "order-1" if setup == "order" else None
    payment = world.services.create_payment(
        Money(1000, "USD"), gateway="dummy", payment_method=CARD, owner=owner
    )
    if setup in ("authorized", "captured", "order"):
        assert world.services.authorize(payment.id).succeeded
    if setup == "captured":
        assert world.services.capture(payment.id).succeeded
    return {"payment": payment.id}


def call(world: World, case: Mapping[str, Any], ids: Mapping[str, str]) -> object:
    """Make the case's call; its arguments are built here, as building one may be the
    refusal under test (``Money(2**64, "USD")``)."""
    args = value(case.get("args", []), ids)
    kwargs = value(case.get("kwargs", {}), ids)
    owner, name = case["call"].split(".")
    if owner == "money":
        return Money.parse(*args) if name == "parse" else Money(*args)
    receiver = {"services": world.services, "checkout": world.shop, "oms": world.oms}[owner]
    return getattr(receiver, name)(*args, **kwargs)


@pytest.mark.parametrize("case", cases("api"))
def test_the_api_refuses_with_the_exact_typed_error_and_changes_nothing(
    case: dict[str, Any], world: World
) -> None:
    ids = set_up(world, case.get("setup", "none"))
    before = world.still()

    with pytest.raises(errors.PaycoreError) as refused:
        call(world, case, ids)

    assert type(refused.value) is error_class(case["error"]), repr(refused.value)
    assert str(refused.value)
    if "match" in case:
        assert re.search(case["match"], str(refused.value)), str(refused.value)
    assert world.still() == before


# -- configs ---------------------------------------------------------------------------------


def secrets_in(case: Mapping[str, Any]) -> list[str]:
    return [secret for secret in case.get("secrets", []) if secret]


@pytest.mark.parametrize("case", cases("config/settings.jsonl"))
def test_a_bad_settings_file_is_a_configuration_error_that_quotes_no_secret(
    case: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "paycore.toml"
    path.write_bytes(case["toml"].encode("utf-8", "surrogatepass"))

    with pytest.raises(errors.PaycoreError) as refused:
        load_settings(path, env=case.get("env", {}))

    assert type(refused.value) is errors.ConfigurationError, repr(refused.value)
    message = str(refused.value)
    assert re.search(case["match"], message), message
    for secret in secrets_in(case):
        assert secret not in message


@pytest.mark.parametrize("case", cases("config/gateways.jsonl"))
def test_a_bad_gateway_config_is_a_configuration_error_that_quotes_no_secret(
    case: dict[str, Any], world: World
) -> None:
    config: dict[str, Any] = {**world.configs[case["plugin"]], **value(case.get("set", {}), {})}
    for key in case.get("remove", []):
        config.pop(key, None)
    plugin = gateway_class(case["plugin"])

    with pytest.raises(errors.PaycoreError) as refused:
        plugin.from_config(config)

    assert type(refused.value) is errors.ConfigurationError, repr(refused.value)
    message = str(refused.value)
    assert re.search(case["match"], message), message
    configured = plugin.from_config(world.configs[case["plugin"]])
    secrets = [*secrets_in(case), *configured.secret_values()]
    for secret in secrets:
        for line in secret.splitlines():  # a PEM key: no line of it either
            if len(line) >= 8:
                assert line not in message


def test_the_settings_corpus_files_are_toml_only_where_meant() -> None:
    """A settings case that is meant to be well-formed TOML is: its refusal is about
    the settings, not a typo in the case."""
    for param in cases("config/settings.jsonl"):
        case = param.values[0]
        if case.get("toml_valid", True):
            tomllib.loads(case["toml"])


# -- webhooks --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases("webhooks"))
def test_a_bad_webhook_is_a_4xx_that_changes_nothing(case: dict[str, Any], world: World) -> None:
    gateway = case["file"].split("/")[1]
    body = body_of(case)
    headers = dict(case.get("headers", {}))
    if case.get("sign"):
        signed = case["sign_other"].encode() if "sign_other" in case else body
        headers.update(world.sandboxes[gateway].sign_webhook(signed))
    headers.update(case.get("after_signing", {}))
    url = f"{world.app_url}{case.get('path', f'/webhooks/{gateway}')}"
    if case.get("query"):
        url += "?" + case["query"]
    before = world.still()

    answer = world.http.request(case.get("method", "POST"), url, content=body, headers=headers)

    assert answer.status_code == case["status"], answer.text
    assert len(answer.content) < 100, "an error body is a few fixed words"
    assert world.still() == before


# -- OMS instruction lines -------------------------------------------------------------------


@pytest.mark.parametrize("case", cases("instructions"))
def test_a_bad_instruction_line_is_reported_by_number_and_skipped(
    case: dict[str, Any], world: World
) -> None:
    set_up(world, "order")
    before = world.still()
    lines = ["", *lines_of(case)]  # a blank first line: the bad one is line 2

    summary = run_batch(world.oms, read_instructions(lines), concurrency=1)

    assert [line.number for line in summary.rejected] == [2]
    reason = summary.rejected[0].reason
    assert reason is not None and re.search(case["match"], reason), reason
    assert len(reason) <= 400
    assert summary.carried_out == 0 and not summary.not_done
    assert world.still() == before


def test_the_corpus_holds_at_least_200_cases_on_every_surface() -> None:
    surfaces = {
        folder: len(cases(folder))
        for folder in (
            "api",
            "config",
            "webhooks/dummy",
            "webhooks/milkypay",
            "webhooks/wooshpay",
            "webhooks/xpay",
            "instructions",
        )
    }
    assert sum(surfaces.values()) >= 200
    assert min(surfaces.values()) >= 15, surfaces
