"""A card number, its security code and a secret pushed through the whole stack come out
nowhere on paycore's side.

The per-part tests check one place each (the scrubber, a gateway's contract, the cart,
the cassettes); this one runs every flow at once, each gateway's sandbox standing in
for its provider, and scans everything paycore wrote or said on the way:

- flows: the services with every gateway (the sentinel in descriptions, metadata, a
  customer's name, a payment method's fields and token), each provider's own page
  where the customer types the card, the checkout through the web app (carts whose
  lines carry it, webhooks, returns), deliveries posted to the app, the OMS batch
  command with instruction lines carrying it, ``paycore`` commands, and settings whose
  secrets are the sentinel secret (and a bad one, whose error must not echo it);
- places: every log record at DEBUG of every logger (httpx, httpcore and uvicorn
  included), every row of every table of the ledger, every cassette (the plugins' and
  one recorded here), the transcripts handed to ``paycore_gateway_exchange``, every
  exception raised on the way (with its causes and contexts), and the commands' output.

The sandboxes may keep the card in their own state: they are the provider.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

pytest.importorskip("paycore_milkypay")
pytest.importorskip("paycore_wooshpay")
pytest.importorskip("paycore_xpay")

from paycore_milkypay.sandbox import MilkyPaySandbox
from paycore_wooshpay.sandbox import WooshPaySandbox
from paycore_xpay.sandbox import XpaySandbox

from paycore.checkout import Cart, CartItem, CheckoutService, CheckoutStatus
from paycore.cli import cli
from paycore.config import GatewaySettings, Settings, WebSettings, load_settings
from paycore.errors import PaycoreError
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.gateways.scrub import luhn_valid
from paycore.money import Money
from paycore.oms import Instruction
from paycore.sandbox.base import Sandbox
from paycore.sandbox.browser import submit_form
from paycore.sandbox.server import SandboxServer
from paycore.testing.contract_support import ExchangeRecorder, ledger_text
from paycore.testing.pytest_plugin import ServeSandbox
from paycore.testing.recording import cassette_recorder
from paycore.transactions.model import Customer, PaymentMethod, TransactionStatus
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store, webhook_events
from paycore.web import create_app
from tests.settings_files import write_settings
from tests.web.support import free_port, ledger_url, registered

# A card number no other test uses, a security code, and a secret every sandbox and
# gateway config is given.
PAN = "5496187302654186"
CVV = "739"
SECRET = "sk_test_Sntl7Qw9Xv4Lk2RbZ"
ROOT = Path(__file__).resolve().parents[2]

# The number whole or in part (all but its last four, all but its first six), its
# digits joined by nothing, spaces or dashes.
_SEPARATOR = "[ -]?"
PAN_FORMS = re.compile(
    "|".join(_SEPARATOR.join(part) for part in (PAN[:-4], PAN[6:])),
)
# The security code where it reads as one: after a name that says so.
CVV_IN_CONTEXT = re.compile(
    rf"(?i)(?:cvv2?|cvc2?|cvn|csc|security[ _-]?code|card[ _-]?code)\W{{0,12}}{CVV}(?![0-9])"
)


def leaks(text: str) -> list[str]:
    """What of the sentinels ``text`` holds, each with a little of its surroundings."""
    found = []
    for label, pattern in (
        ("card number", PAN_FORMS),
        ("security code", CVV_IN_CONTEXT),
        ("secret", re.compile(re.escape(SECRET))),
    ):
        for match in pattern.finditer(text):
            start, end = max(0, match.start() - 60), match.end() + 20
            found.append(f"{label}: …{text[start:end]}…")
    return found


def spaced(number: str, separator: str = " ") -> str:
    return separator.join(number[i : i + 4] for i in range(0, len(number), 4))


MARKED_TEXT = f"card {spaced(PAN)} / {spaced(PAN, '-')} cvv {CVV}"
MARKED_METADATA = {"card_number": PAN, "cvv": CVV, "note": f"customer typed {PAN} cvc: {CVV}"}
CARD_FIELDS = {"card_number": PAN, "cvv": CVV, "card_cvc": CVV}


class Witness:
    """What the flows leave to scan: exceptions raised, and the commands' output."""

    def __init__(self) -> None:
        self.errors: list[BaseException] = []
        self.outputs: dict[str, str] = {}

    @contextmanager
    def expecting_errors(self) -> Iterator[None]:
        """Run a step that paycore may refuse; keep what it raised."""
        try:
            yield
        except PaycoreError as error:
            self.errors.append(error)

    def exceptions_text(self) -> str:
        """``str`` and ``repr`` of every exception kept, with its causes and contexts."""
        seen: set[int] = set()
        lines: list[str] = []
        pending = list(self.errors)
        while pending:
            error = pending.pop()
            if id(error) in seen:
                continue
            seen.add(id(error))
            lines.append(f"{type(error).__name__}: {error!s} | {error!r}")
            pending.extend(e for e in (error.__cause__, error.__context__) if e is not None)
        return "\n".join(lines)


# -- the stack -----------------------------------------------------------------------------


class Stack:
    """The four sandboxes, the web app in front of the ledger, and the merchant's side."""

    def __init__(self, serve: ServeSandbox, store: Store, tmp_path: Path) -> None:
        self.app_url = f"http://127.0.0.1:{free_port()}"
        hook = f"{self.app_url}/webhooks"
        fast = {"webhook_time_scale": 0.01, "webhook_secret": SECRET, "seed": 0}
        self.sandboxes: dict[str, Sandbox] = {
            "dummy": DummySandbox(api_key=SECRET, webhook_url=f"{hook}/dummy", **fast),  # type: ignore[arg-type]
            "milkypay": MilkyPaySandbox(api_key=SECRET, webhook_url=f"{hook}/milkypay", **fast),  # type: ignore[arg-type]
            "wooshpay": WooshPaySandbox(secret_key=SECRET, webhook_url=f"{hook}/wooshpay", **fast),  # type: ignore[arg-type]
            "xpay": XpaySandbox(partner_token=SECRET, webhook_url=f"{hook}/xpay", **fast),  # type: ignore[arg-type]
        }
        self.urls = {name: serve(sandbox).url for name, sandbox in self.sandboxes.items()}
        self.configs = {
            name: dict(sandbox.gateway_config(self.urls[name]))
            for name, sandbox in self.sandboxes.items()
        }
        self.settings = Settings(
            database_url=ledger_url(store),
            webhook_base_url=self.app_url,
            gateways={
                name: GatewaySettings(name=name, plugin=name, config=config)
                for name, config in self.configs.items()
            },
            web=WebSettings(
                success_url="https://shop.example/thanks", failure_url="https://shop.example/cart"
            ),
        )
        self.store = store
        self.tmp_path = tmp_path

    @contextmanager
    def running(self) -> Iterator[PaymentTransactionServices]:
        """The web app served (uvicorn logging at DEBUG) and the merchant's services."""
        app = SandboxServer(
            create_app(self.settings),
            port=int(self.app_url.rsplit(":", 1)[1]),
            access_log=True,
            log_level="debug",
        ).start()
        services = PaymentTransactionServices.from_settings(self.settings, store=self.store)
        try:
            yield services
        finally:
            for sandbox in self.sandboxes.values():
                sandbox.wait_for_webhooks(10)
            services.close()
            app.stop()


# -- flows ---------------------------------------------------------------------------------

APPROVED = {
    "dummy": PaymentMethod(type="card", token="tok_visa"),
    "milkypay": PaymentMethod(type="test_usd", fields={"test_details_success_rate": "100"}),
    "wooshpay": PaymentMethod(type="card", token="pm_card_visa"),
}


def through_the_services(services: PaymentTransactionServices, witness: Witness) -> None:
    """Each gateway: a payment marked everywhere a merchant writes text, opened, captured
    and refunded; one whose method carries card fields; one whose token is the card."""
    customer = Customer(reference="customer-7", name=f"Ann, card {PAN}", email="ann@shop.example")
    for gateway, method in APPROVED.items():
        payment = services.create_payment(
            Money(2000, "USD"),
            gateway=gateway,
            payment_method=method,
            customer=customer,
            description=MARKED_TEXT,
            metadata=MARKED_METADATA,
        )
        opened = services.authorize(payment.id)
        assert opened.status is TransactionStatus.SUCCEEDED, (gateway, opened)
        assert services.capture(payment.id, Money(1500, "USD")).succeeded
        assert services.refund(payment.id, Money(500, "USD")).status in (
            TransactionStatus.SUCCEEDED,
            TransactionStatus.PROCESSING,
        )
        with_fields = PaymentMethod(
            type=method.type, token=method.token, fields={**method.fields, **CARD_FIELDS}
        )
        as_token = PaymentMethod(type="card", token=PAN)
        for odd in (with_fields, as_token):
            with witness.expecting_errors():
                marked = services.create_payment(
                    Money(1000, "USD"), gateway=gateway, payment_method=odd, description=MARKED_TEXT
                )
                services.authorize(marked.id)


def on_the_providers_pages(
    services: PaymentTransactionServices, browser: httpx.Client, witness: Witness
) -> None:
    """MilkyPay's and XPAY's pages, where the customer types the card; their callbacks
    reach the web app."""
    hosted = services.create_payment(
        Money(2500, "USD"),
        gateway="milkypay",
        payment_method=PaymentMethod(type="payment_card_usd_hpp"),
        description=MARKED_TEXT,
        metadata=MARKED_METADATA,
        return_url="https://shop.example/back",
    )
    page = services.authorize(hosted.id)
    assert page.next_action is not None, page
    paid = submit_form(browser, page.next_action.url, "pay", {"card_number": spaced(PAN)})
    assert paid.status_code == 303, paid.text

    sale = services.create_payment(
        Money(2999, "UAH"),
        gateway="xpay",
        payment_method=PaymentMethod(type="card", fields={"phone": "380501234567"}),
        description=MARKED_TEXT,
        metadata=MARKED_METADATA,
        return_url="https://shop.example/back",
    )
    started = services.sale(sale.id)
    assert started.next_action is not None, started
    paid = submit_form(browser, started.next_action.url, "pay", {"card_number": PAN})
    assert paid.status_code == 303, paid.text
    assert services.fetch_status(started.id).succeeded
    assert services.refund(sale.id, Money(999, "UAH")).succeeded
    with witness.expecting_errors():  # a card number is no phone number
        odd = services.create_payment(
            Money(2999, "UAH"),
            gateway="xpay",
            payment_method=PaymentMethod(type="card", fields={"phone": PAN, **CARD_FIELDS}),
        )
        services.sale(odd.id)


def cart(gateway: str, total: int) -> Cart:
    return Cart(
        currency="USD",
        items=[
            CartItem(
                sku="gift-card",
                name=f"Gift card, message: {MARKED_TEXT}",
                quantity=1,
                unit_price=Money(total, "USD"),
            )
        ],
    )


def through_the_checkout(
    services: PaymentTransactionServices, app_url: str, browser: httpx.Client
) -> None:
    """Checkouts whose lines carry the card: the dummy's 3-D Secure page and WooshPay's
    hosted page (the card typed there), completed by the web app's webhook and return."""
    shop = CheckoutService(services, return_base_url=app_url)

    secure = shop.create(cart("dummy", 900), owner="customer-7")
    payment = shop.add_payment(
        secure.id,
        Money(900, "USD"),
        gateway="dummy",
        payment_method=PaymentMethod(type="card", token="tok_3ds"),
        description=MARKED_TEXT,
    )
    challenge = shop.submit(secure.id).next_actions[payment.id].url
    answer = browser.post(challenge, data={"result": "approve"})
    assert answer.status_code == 303, answer.text
    back = browser.get(answer.headers["location"])
    assert back.status_code == 303 and back.headers["location"].startswith(
        "https://shop.example/thanks"
    ), back.text

    hosted = shop.create(cart("wooshpay", 1200), owner="customer-7")
    on_page = shop.add_payment(hosted.id, Money(1200, "USD"), gateway="wooshpay")
    page = shop.submit(hosted.id).next_actions[on_page.id].url
    paid = submit_form(browser, page, "pay", {"card_number": spaced(PAN)})
    assert paid.status_code == 303, paid.text
    back = browser.get(paid.headers["location"])
    assert back.status_code == 303, back.text

    assert shop.get(secure.id).status is CheckoutStatus.COMPLETED
    assert shop.get(hosted.id).status is CheckoutStatus.COMPLETED


def deliveries_carrying_the_card(stack: Stack, browser: httpx.Client) -> None:
    """Deliveries posted straight to the web app: one signed as the dummy provider signs,
    about no payment of the ledger; one forged; both with the card in their body."""
    dummy = stack.sandboxes["dummy"]
    body = json.dumps(
        {
            "id": "evt_sentinel_1",
            "type": "payment.succeeded",
            "created": int(dummy.clock()),
            "data": {
                "payment": {"id": "pay_unknown", "description": MARKED_TEXT, "card": CARD_FIELDS},
                "operation": {
                    "id": "op_unknown",
                    "type": "sale",
                    "status": "succeeded",
                    "amount": 1000,
                    "currency": "USD",
                    "note": MARKED_TEXT,
                },
            },
        }
    ).encode()
    url = f"{stack.app_url}/webhooks/dummy"
    headers = {"content-type": "application/json"}
    signed = browser.post(url, content=body, headers={**headers, **dummy.sign_webhook(body)})
    forged = browser.post(url, content=body, headers={**headers, "Dummy-Signature": SECRET})
    for answer in (signed, forged):
        assert answer.status_code < 500, answer.text
        assert not leaks(answer.text), answer.text
    assert (signed.status_code, forged.status_code) == (200, 400)


def through_the_commands(
    stack: Stack, services: PaymentTransactionServices, witness: Witness
) -> None:
    """``paycore oms run`` on instruction lines carrying the card, other commands, and
    settings whose secret is refused."""
    settings = write_settings(
        stack.tmp_path / "paycore.toml", ledger_url(stack.store), stack.configs["dummy"]
    )
    order = services.create_payment(
        Money(3000, "USD"),
        gateway="dummy",
        payment_method=APPROVED["dummy"],
        owner="order-1",
        description=MARKED_TEXT,
    )
    assert services.authorize(order.id).succeeded
    capture = Instruction(
        kind="capture", order_id="order-1", reference="shipment-1", amount=Money(1000, "USD")
    ).as_json()
    lines = [
        json.dumps(capture),
        json.dumps({**capture, "fulfillment_id": "shipment-2", PAN: CVV, "cvv": CVV}),
        json.dumps({**capture, "op": f"capture {PAN}"}),
        json.dumps({**capture, "amount": PAN}),
        json.dumps({**capture, "amount": f"{spaced(PAN)}"}),
        json.dumps({**capture, "currency": PAN}),
        json.dumps({**capture, "order_id": MARKED_TEXT}),
        json.dumps({**capture, "fulfillment_id": f"card {PAN}"}),
        f"not json: {MARKED_TEXT}",
        json.dumps([PAN, {"cvv": CVV}]),
    ]
    for line in lines:  # read by the API the command reads them with
        with witness.expecting_errors(), contextlib.suppress(ValueError):
            Instruction.from_json(json.loads(line))
    instructions = stack.tmp_path / "instructions.jsonl"
    instructions.write_text("\n".join(lines) + "\n", encoding="utf-8")
    bad = stack.tmp_path / "bad.toml"
    bad.write_text(
        settings.read_text(encoding="utf-8")
        + f'\n[gateways.wooshpay]\nsecret_key = "{SECRET} "\nwebhook_secret = "{SECRET}"\n'
        + f'\n[gateways.milkypay]\napi_key = "{SECRET}"\nsecret_key = ["{SECRET}"]\n',
        encoding="utf-8",
    )
    with witness.expecting_errors():
        load_settings(bad, env={})
    for label, args in (
        ("oms run", ["oms", "run", str(instructions)]),
        ("oms run, again", ["oms", "run", str(instructions)]),  # nothing twice
        ("oms expiring", ["oms", "expiring", "--within", "30d"]),
        ("reconcile", ["reconcile"]),
        ("config check", ["config", "check"]),
        ("gateways show", ["gateways", "show", "dummy"]),
        ("db current", ["db", "current"]),
    ):
        outcome = CliRunner().invoke(
            cli, ["--config", str(settings), *args], env={"COLUMNS": "200"}
        )
        witness.outputs[label] = outcome.output
        if outcome.exception is not None and not isinstance(outcome.exception, SystemExit):
            witness.errors.append(outcome.exception)
    refused = CliRunner().invoke(cli, ["--config", str(bad), "config", "check"])
    witness.outputs["config check (bad)"] = refused.output
    assert refused.exit_code != 0, refused.output
    print(witness.outputs["oms run"])


# -- the scan --------------------------------------------------------------------------------


def log_text(records: list[logging.LogRecord]) -> str:
    """Every record: its logger, message, extra fields and traceback."""
    standard = set(vars(logging.makeLogRecord({})))
    formatter = logging.Formatter()
    lines = []
    for record in records:
        extra = {k: v for k, v in vars(record).items() if k not in standard}
        trace = formatter.formatException(record.exc_info) if record.exc_info else ""
        lines.append(f"{record.name} {record.levelname} {record.getMessage()} {extra!r} {trace}")
    return "\n".join(lines)


def cassettes_text(*directories: Path) -> str:
    files = [path for d in directories for path in sorted(d.rglob("*.yaml"))]
    assert files, "no cassette to scan"
    return "\n".join(path.read_text(encoding="utf-8") for path in files)


@pytest.fixture
def browser() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=10) as client:
        yield client


def test_the_card_and_the_secret_reach_no_log_row_cassette_transcript_error_or_output(
    paycore_sandbox_server: ServeSandbox,
    paycore_ledger: Store,
    tmp_path: Path,
    browser: httpx.Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert luhn_valid(PAN)
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "uvicorn", "uvicorn.error", "uvicorn.access", "paycore"):
        caplog.set_level(logging.DEBUG, logger=name)
    recorder = ExchangeRecorder()
    witness = Witness()
    stack = Stack(paycore_sandbox_server, paycore_ledger, tmp_path)
    recorded = tmp_path / "cassettes"

    with registered(recorder), stack.running() as services:
        recording = cassette_recorder(
            recorded, server_url=stack.urls["wooshpay"], secrets=[SECRET], record=True
        )
        with recording.use_cassette("wooshpay.yaml"):
            payment = services.create_payment(
                Money(700, "USD"),
                gateway="wooshpay",
                payment_method=APPROVED["wooshpay"],
                description=MARKED_TEXT,
                metadata=MARKED_METADATA,
            )
            assert services.sale(payment.id).succeeded
        through_the_services(services, witness)
        on_the_providers_pages(services, browser, witness)
        through_the_checkout(services, stack.app_url, browser)
        deliveries_carrying_the_card(stack, browser)
        through_the_commands(stack, services, witness)

    places = {
        "the logs": log_text(caplog.records),
        "the ledger": ledger_text(paycore_ledger),
        "a cassette": cassettes_text(*ROOT.glob("plugins/*/tests/cassettes"), recorded),
        "a transcript": json.dumps([t.as_dict() for t in recorder.transcripts], default=str),
        "an exception": witness.exceptions_text(),
        **{f"`paycore {args}`": output for args, output in witness.outputs.items()},
    }
    # Everything happened: each gateway was talked to, each provider's webhooks reached
    # the app, and the scan finds the sentinels where they may be.
    assert {t.gateway for t in recorder.transcripts} == set(stack.sandboxes)
    with paycore_ledger.reading() as session:
        events = session.connection.execute(
            sa.select(webhook_events.c.gateway, webhook_events.c.event_id)
        ).all()
    assert {gateway for gateway, _ in events} == set(stack.sandboxes)
    assert ("dummy", "evt_sentinel_1") in events  # the signed delivery carrying the card
    refused = witness.exceptions_text()
    assert "token is a card number" in refused and "ConfigurationError" in refused
    assert leaks(f"x {spaced(PAN, '-')} {{'cvv': '{CVV}'}} {SECRET}") != []
    found = [f"in {place}: {leak}" for place, text in places.items() for leak in leaks(text)]
    assert found == [], "\n".join(found)
