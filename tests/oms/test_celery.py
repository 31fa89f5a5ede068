"""OMS instructions on real Celery workers (``celery worker`` processes) and Redis.

Each test has a deployment of its own (`tests.oms.celery_support.Deployment`): a queue
and key prefix on Redis, a settings file naming the ledger's database and the dummy
sandbox (served here, behind a `Gate` that can refuse, lose or decline a payment's
captures), and worker processes that build their services from that file.

What is shown: 500 captures on two workers, one SIGKILLed midway, each done exactly
once at the provider, the task the dead worker held delivered again to the other;
a capture the gateway could not take is retried with backoff and succeeds; one whose
answer was lost comes back ``unknown``, is not retried, and reconciliation settles it;
a decline is final; a bad instruction fails at once with why; a batch's rejected lines
are never enqueued and one order's instructions run in the order of the file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from paycore.errors import ConfigurationError
from paycore.gateways.dummy import DummyGateway
from paycore.gateways.dummy_sandbox import DummySandbox
from paycore.money import Money
from paycore.oms import Instruction, InstructionKind, InstructionOutcome, InstructionResult
from paycore.oms.celery import CARRY_OUT, RECONCILE, CeleryConfig, run_batch_on_celery
from paycore.oms.jobs import BatchSummary, Line, read_instructions
from paycore.sandbox.server import SandboxServer
from paycore.transactions.ledger import utc_now
from paycore.transactions.model import PaymentMethod
from paycore.transactions.reconcile import Reconciler
from paycore.transactions.records import Payment
from paycore.transactions.services import PaymentTransactionServices
from paycore.transactions.store import Store
from tests.oms.celery_support import Deployment, Gate, Worker, redis_url

CARD = PaymentMethod(type="card", token="tok_visa")
AMOUNT = 1000
# Short timeouts: a capture whose sender died is asked about within seconds.
TIMEOUTS = {"connect": 1.0, "read": 1.0, "total": 1.5}
DONE = (InstructionOutcome.SUCCEEDED, InstructionOutcome.SKIPPED)

Deploy = Callable[..., Deployment]


def eur(minor_units: int) -> Money:
    return Money(minor_units, "EUR")


def capture(order_id: str, amount: int = AMOUNT, fulfillment: str = "shp_1") -> Instruction:
    return Instruction(
        kind=InstructionKind.CAPTURE, order_id=order_id, reference=fulfillment, amount=eur(amount)
    )


@pytest.fixture
def gate(paycore_dummy_sandbox: DummySandbox) -> Iterator[Gate]:
    gate = Gate(paycore_dummy_sandbox.app())
    yield gate
    paycore_dummy_sandbox.close()


@pytest.fixture
def server(paycore_sandbox_server: Callable[[Any], SandboxServer], gate: Gate) -> SandboxServer:
    return paycore_sandbox_server(gate)


@pytest.fixture
def gateway_config(paycore_dummy_sandbox: DummySandbox, server: SandboxServer) -> dict[str, Any]:
    return {**paycore_dummy_sandbox.gateway_config(server.url), "timeouts": TIMEOUTS}


@pytest.fixture
def services(
    paycore_services: Callable[..., PaymentTransactionServices], gateway_config: dict[str, Any]
) -> PaymentTransactionServices:
    """Services of the test process, on the workers' ledger and sandbox."""
    return paycore_services({"dummy": DummyGateway.from_config(gateway_config)})


@pytest.fixture
def deploy(
    tmp_path: Path, paycore_ledger: Store, gateway_config: dict[str, Any]
) -> Iterator[Deploy]:
    """Make the test's deployment (after Redis is found); its workers stop afterwards."""
    made: list[Deployment] = []
    database_url = paycore_ledger.engine.url.render_as_string(hide_password=False)

    def make(**options: Any) -> Deployment:
        deployment = Deployment(
            tmp_path,
            broker_url=redis_url(),
            database_url=database_url,
            gateway_config=gateway_config,
            **options,
        )
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        print(deployment.logs())  # shown when the test failed
        deployment.close()


def orders(services: PaymentTransactionServices, count: int) -> list[tuple[str, Payment]]:
    """``count`` orders, each paid by one authorized card payment of 10.00 EUR."""
    made = []
    for n in range(count):
        payment = services.create_payment(
            eur(AMOUNT), gateway="dummy", payment_method=CARD, owner=f"ord-{n}"
        )
        assert services.authorize(payment.id).succeeded
        made.append((f"ord-{n}", services.get_payment(payment.id)))
    return made


def captures(sandbox: DummySandbox) -> dict[str | None, list[int]]:
    """The amounts the provider captured, in order, by its payment id."""
    return {
        payment["id"]: [op["amount"] for op in payment["operations"] if op["type"] == "capture"]
        for payment in sandbox.snapshot()["payments"]
    }


def captures_at(sandbox: DummySandbox, payment: Payment) -> list[int]:
    """The amounts the provider captured on ``payment``, in order."""
    return captures(sandbox)[payment.gateway_reference]


class Recorder:
    """A batch reporter keeping what it was told; `on_result` runs after each result."""

    def __init__(self, on_result: Callable[[int], None] | None = None) -> None:
        self.results: list[tuple[int, InstructionResult]] = []
        self.rejected_lines: list[int] = []
        self.summary: BatchSummary | None = None
        self.on_result = on_result

    def start(self, *, total: int | None, dry_run: bool) -> None:
        self.total = total

    def result(self, number: int, result: InstructionResult) -> None:
        self.results.append((number, result))
        if self.on_result is not None:
            self.on_result(len(self.results))

    def rejected(self, line: Line) -> None:
        self.rejected_lines.append(line.number)

    def stopping(self, in_flight: int) -> None:
        pass

    def finish(self, summary: BatchSummary) -> None:
        self.summary = summary


def kill_while_busy(worker: Worker, *, after: int) -> Callable[[int], None]:
    """SIGKILL ``worker`` once ``after`` results are in, while it holds a task."""

    def maybe_kill(results: int) -> None:
        if results != after:
            return
        deadline = time.monotonic() + 5
        while not worker.holding_a_task() and time.monotonic() < deadline:
            time.sleep(0.001)
        worker.kill()

    return maybe_kill


def test_500_captures_on_two_workers_one_killed_midway_are_each_done_once(
    deploy: Deploy,
    services: PaymentTransactionServices,
    paycore_dummy_sandbox: DummySandbox,
) -> None:
    # A short visibility timeout: the dead worker's task comes back within seconds.
    deployment = deploy(visibility_timeout=3.0)
    made = orders(services, 500)
    doomed, survivor = deployment.start(2)

    reporter = Recorder(kill_while_busy(doomed, after=200))
    summary = run_batch_on_celery(
        deployment.settings,
        [capture(order) for order, _ in made],
        app=deployment.app,
        reporter=reporter,
        timeout=60,
    )

    assert doomed.process.returncode == -9
    assert not summary.interrupted and summary.carried_out == 500
    assert len(doomed.succeeded()) >= 20 and len(survivor.succeeded()) >= 20
    # The task the killed worker held is delivered again, and done by the other (when
    # it died after storing its result, the batch may have ended before that).
    orphans = {task for task in doomed.received() if task not in doomed.succeeded()}
    assert orphans
    deadline = time.monotonic() + 20
    while not orphans <= survivor.succeeded() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert orphans <= survivor.succeeded()

    outcomes = {number: result.outcome for number, result in reporter.results}
    if summary.unknown:
        # Killed between writing the capture ahead and sending it: the provider has
        # no record, which is believed only once no attempt can be on its way.
        # Reconciliation (its clock past that) fails it, and the batch run again sends it.
        later = PaymentTransactionServices(
            services.store,
            services.drivers,
            hooks=None,
            clock=lambda: utc_now() + timedelta(minutes=2),
        )
        Reconciler(later).run(older_than=timedelta(0))
        again = Recorder()
        run_batch_on_celery(
            deployment.settings,
            [Line(number=n.number, instruction=n.instruction) for n in summary.unknown],
            app=deployment.app,
            reporter=again,
            timeout=60,
        )
        outcomes.update((number, result.outcome) for number, result in again.results)
    assert sorted(outcomes) == list(range(1, 501))
    assert set(outcomes.values()) <= set(DONE), summary.line()
    at_provider = captures(paycore_dummy_sandbox)
    for _, payment in made:
        assert at_provider[payment.gateway_reference] == [AMOUNT]
        assert services.get_payment(payment.id).captured == eur(AMOUNT)


def test_a_capture_the_gateway_could_not_take_is_retried_with_backoff_and_succeeds(
    deploy: Deploy, services: PaymentTransactionServices, gate: Gate
) -> None:
    deployment = deploy(retry_backoff=0.2)
    ((order, payment),) = orders(services, 1)
    reference = payment.gateway_reference
    assert reference is not None
    # More refusals (429, before processing) than the driver's own attempts.
    gate.refuse(reference, times=3)
    deployment.start(1)

    started = time.monotonic()
    result = deployment.call(CARRY_OUT, capture(order).as_json())

    assert result["outcome"] == "succeeded"
    assert result["attempts"] == 2
    assert time.monotonic() - started >= 0.1  # the retry waited: half the backoff at least
    assert gate.captures[reference] == 4  # three refused, then the one that went through
    assert services.get_payment(payment.id).captured == eur(AMOUNT)
    assert len(result["transactions"]) == 1


def test_an_unknown_outcome_is_not_retried_and_reconciliation_settles_it(
    deploy: Deploy,
    services: PaymentTransactionServices,
    gate: Gate,
    paycore_dummy_sandbox: DummySandbox,
) -> None:
    deployment = deploy(retry_backoff=0.2)
    ((order, payment),) = orders(services, 1)
    reference = payment.gateway_reference
    assert reference is not None
    gate.lose(reference)  # the provider captures; the answer is lost
    deployment.start(1)
    instruction = capture(order).as_json()

    lost = deployment.call(CARRY_OUT, instruction)

    assert lost["outcome"] == "unknown"
    assert lost["attempts"] == 1
    sent = gate.captures[reference]
    assert captures_at(paycore_dummy_sandbox, payment) == [AMOUNT]

    gate.open(reference)
    counts = deployment.call(RECONCILE, older_than=0)
    assert counts["transactions"]["resolved"] == 1
    assert counts["transactions"]["unresolved"] == 0
    assert counts["checkouts"]["checked"] == 0

    again = deployment.call(CARRY_OUT, instruction)
    assert again["outcome"] == "skipped"
    assert again["transactions"] == lost["transactions"]
    assert gate.captures[reference] == sent  # nothing was sent again
    assert captures_at(paycore_dummy_sandbox, payment) == [AMOUNT]


def test_an_instruction_finding_its_order_busy_is_retried_once_the_other_is_done(
    deploy: Deploy,
    services: PaymentTransactionServices,
    gate: Gate,
    paycore_dummy_sandbox: DummySandbox,
) -> None:
    deployment = deploy(retry_backoff=0.2)
    ((order, payment),) = orders(services, 1)
    reference = payment.gateway_reference
    assert reference is not None
    gate.hold(reference, 0.5)  # the first capture stays in flight a while
    deployment.start(2)

    first = deployment.app.send_task(CARRY_OUT, args=[capture(order, 400, "shp_1").as_json()])
    while gate.captures[reference] == 0:
        time.sleep(0.005)
    second = deployment.app.send_task(CARRY_OUT, args=[capture(order, 600, "shp_2").as_json()])

    assert first.get(timeout=30)["outcome"] == "succeeded"
    found_busy = second.get(timeout=30)
    assert found_busy["outcome"] == "succeeded"
    assert found_busy["attempts"] >= 2  # PaymentBusy: nothing sent, tried again later
    assert captures_at(paycore_dummy_sandbox, payment) == [400, 600]


def test_a_decline_is_final_and_a_bad_instruction_fails_at_once_with_why(
    deploy: Deploy, services: PaymentTransactionServices, gate: Gate
) -> None:
    deployment = deploy(retry_backoff=0.2)
    ((order, payment),) = orders(services, 1)
    reference = payment.gateway_reference
    assert reference is not None
    gate.decline(reference)
    deployment.start(1)

    declined = deployment.call(CARRY_OUT, capture(order).as_json())
    assert declined["outcome"] == "declined"
    assert declined["attempts"] == 1
    assert gate.captures[reference] == 1

    malformed = deployment.call(
        CARRY_OUT, {"op": "capture", "order_id": order, "amount": 5, "currency": "EUR"}
    )
    assert malformed["outcome"] == "failed"
    assert malformed["attempts"] == 1
    assert "fulfillment_id" in malformed["message"]

    nobody = deployment.call(CARRY_OUT, capture("ord-nobody").as_json())
    assert nobody["outcome"] == "failed"
    assert nobody["message"].startswith("NotFound")
    assert nobody["transactions"] == []

    too_much = deployment.call(CARRY_OUT, capture(order, AMOUNT * 2, "shp_2").as_json())
    assert too_much["outcome"] == "failed"
    assert "InvalidAmount" in too_much["message"]


def _capture_line(order: str, fulfillment: str, amount: int, **more: Any) -> str:
    line = {"op": "capture", "order_id": order, "fulfillment_id": fulfillment, "amount": amount}
    return json.dumps({**line, "currency": "EUR", **more})


BATCH = [
    _capture_line("ord-0", "shp_1", 400),
    "not json",
    _capture_line("ord-0", "shp_2", 600, final=True),
    '{"op": "refund", "order_id": "ord-1"}',
    _capture_line("ord-1", "shp_1", 1000),
    "",
    '{"op": "cancel", "order_id": "ord-2"}',
]


def test_a_batch_reports_rejected_lines_without_enqueuing_them_and_keeps_each_orders_order(
    deploy: Deploy, services: PaymentTransactionServices, paycore_dummy_sandbox: DummySandbox
) -> None:
    deployment = deploy()
    made = dict(orders(services, 3))
    workers = deployment.start(2)

    reporter = Recorder()
    summary = run_batch_on_celery(
        deployment.settings, read_instructions(BATCH), app=deployment.app, reporter=reporter
    )

    assert reporter.rejected_lines == [2, 4]
    assert [line.number for line in summary.rejected] == [2, 4]
    assert "not JSON" in (summary.rejected[0].reason or "")
    assert "return_id" in (summary.rejected[1].reason or "")
    numbers = [number for number, _ in reporter.results]
    assert sorted(numbers) == [1, 3, 5, 7]
    assert numbers.index(1) < numbers.index(3)  # one order's instructions in file order
    assert summary.counts[InstructionOutcome.SUCCEEDED] == 4
    assert summary.ok is False  # two lines were rejected
    assert reporter.summary == summary
    assert sum(len(w.received()) for w in workers) == 4  # rejected lines never enqueued
    assert captures_at(paycore_dummy_sandbox, made["ord-0"]) == [400, 600]
    assert captures_at(paycore_dummy_sandbox, made["ord-1"]) == [1000]
    assert services.get_payment(made["ord-2"].id).capturable == eur(0)

    again = run_batch_on_celery(deployment.settings, read_instructions(BATCH), app=deployment.app)
    assert again.counts[InstructionOutcome.SKIPPED] == 4
    assert captures_at(paycore_dummy_sandbox, made["ord-0"]) == [400, 600]


def test_a_batch_out_of_time_says_what_it_left_in_flight(deploy: Deploy) -> None:
    deployment = deploy()  # no worker: nothing enqueued is carried out
    batch = [capture(f"ord-{n}") for n in range(5)]

    reporter = Recorder()
    summary = run_batch_on_celery(
        deployment.settings,
        batch,
        app=deployment.app,
        reporter=reporter,
        concurrency_limit=2,
        timeout=0.3,
        grace=0.1,
    )

    assert summary.interrupted
    assert summary.unfinished == 2  # enqueued: workers will still carry them out
    assert summary.carried_out == 0
    assert reporter.results == []
    assert reporter.summary == summary
    assert "2 still in flight" in summary.line()


def test_the_celery_settings_come_from_the_environment_and_every_bad_one_is_named() -> None:
    config = CeleryConfig.from_env(
        {
            "PAYCORE_CELERY_BROKER_URL": "redis://:s3cret@redis.internal:6379/2",
            "PAYCORE_CELERY_QUEUE": "oms.eu",
            "PAYCORE_CELERY_VISIBILITY_TIMEOUT": "900",
            "PAYCORE_CELERY_MAX_RETRIES": "8",
        }
    )
    assert config.results_url == "redis://:s3cret@redis.internal:6379/2"
    assert (config.queue, config.visibility_timeout, config.max_retries) == ("oms.eu", 900, 8)
    assert "s3cret" not in repr(config)
    assert config.longest_wait == min(config.retry_backoff_max, 450)

    with pytest.raises(ConfigurationError) as raised:
        CeleryConfig.from_env(
            {
                "PAYCORE_CELERY_VISIBILITY_TIMEOUT": "soon",
                "PAYCORE_CELERY_MAX_RETRIES": "-1",
                "PAYCORE_CELERY_QUEUE": "a queue",
            }
        )
    assert [p.split(":")[0] for p in raised.value.problems] == [
        "PAYCORE_CELERY_MAX_RETRIES",
        "PAYCORE_CELERY_QUEUE",
        "PAYCORE_CELERY_VISIBILITY_TIMEOUT",
    ]
