"""Fault plans, and the injector applying them to a real server's requests."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from paycore.errors import ConfigurationError
from paycore.sandbox.faults import Fault, FaultInjector, FaultPlan, WebhookFault

# -- the plan ------------------------------------------------------------------------------


def test_the_default_plan_injects_nothing():
    injector = FaultInjector(Starlette())

    assert [injector.choose() for _ in range(100)] == [None] * 100


def test_a_plan_is_parsed_from_command_line_settings():
    plan = FaultPlan.parse(
        [
            "latency=0.2",
            "error_rate=0.1",
            "timeout-rate=0.05",
            "drop_rate=0",
            "stall_seconds=2",
            "next=drop, error",
            "webhook_next=duplicate",
            "webhook_delay=1.5",
            "seed=7",
        ]
    )

    assert plan.latency == 0.2
    assert plan.error_rate == 0.1
    assert plan.timeout_rate == 0.05
    assert plan.stall_seconds == 2
    assert plan.next == (Fault.DROP, Fault.ERROR)
    assert plan.webhook_next == (WebhookFault.DUPLICATE,)
    assert plan.webhook_delay == 1.5
    assert plan.seed == 7


def test_parsing_reports_every_bad_setting_at_once():
    with pytest.raises(ConfigurationError) as caught:
        FaultPlan.parse(["latency=soon", "colour=red", "novalue", "seed=x"])

    latency, colour, novalue, seed = caught.value.problems
    assert latency == "latency: 'soon' is not a number"
    assert colour.startswith("'colour': unknown fault; known: latency, error_rate, timeout_rate")
    assert novalue == "'novalue': expected key=value, such as latency=0.2"
    assert seed == "seed: 'x' is not an integer"


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        (["error_rate=1.5"], "error_rate: must be between 0 and 1"),
        (["latency=-1"], "latency: must not be negative"),
        (["error_rate=0.6", "drop_rate=0.6"], "must not exceed 1"),
        (["next=explode"], "next: 'explode' is not one of error, timeout, drop"),
        (["webhook_next=lose"], "webhook_next: 'lose' is not one of duplicate, reorder"),
    ],
)
def test_a_bad_value_is_a_configuration_error_naming_the_knob(settings, problem):
    with pytest.raises(ConfigurationError, match=problem):
        FaultPlan.parse(settings)


def test_a_plan_from_json_refuses_unknown_knobs_and_wrong_types():
    with pytest.raises(ConfigurationError, match="'explode': unknown fault"):
        FaultPlan.from_mapping({"explode": 1})
    with pytest.raises(ConfigurationError, match="latency: must be a number"):
        FaultPlan.from_mapping({"latency": "0.2"})
    with pytest.raises(ConfigurationError, match="next: must be a list"):
        FaultPlan.from_mapping({"next": 3})


def test_a_plan_round_trips_through_json():
    plan = FaultPlan(latency=0.5, next=("drop",), webhook_next=("reorder",), seed=3)

    assert FaultPlan.from_mapping(plan.as_dict()) == plan
    assert plan.as_dict()["next"] == ["drop"]


# -- choosing faults -----------------------------------------------------------------------


def test_queued_faults_come_first_in_order_then_the_rates_apply():
    injector = FaultInjector(Starlette(), FaultPlan(next=("drop", "error")))
    injector.queue("timeout")

    assert [injector.choose() for _ in range(4)] == [Fault.DROP, Fault.ERROR, Fault.TIMEOUT, None]


def test_rates_draw_from_a_seeded_random_so_runs_repeat():
    plan = FaultPlan(error_rate=0.3, timeout_rate=0.2, drop_rate=0.1, seed=42)
    runs = []
    for _ in range(2):
        injector = FaultInjector(Starlette(), plan)
        runs.append([injector.choose() for _ in range(400)])

    assert runs[0] == runs[1]
    counts = {fault: runs[0].count(fault) for fault in (*Fault, None)}
    assert 80 < counts[Fault.ERROR] < 160
    assert 50 < counts[Fault.TIMEOUT] < 110
    assert 15 < counts[Fault.DROP] < 65
    assert 120 < counts[None] < 200


def test_a_rate_of_one_faults_every_request():
    injector = FaultInjector(Starlette(), FaultPlan(drop_rate=1))

    assert {injector.choose() for _ in range(50)} == {Fault.DROP}


def test_setting_a_new_plan_replaces_the_queue():
    injector = FaultInjector(Starlette(), FaultPlan(next=("drop",)))
    injector.set_plan(FaultPlan(next=("error",)))

    assert injector.pending() == (Fault.ERROR,)


# -- applied to requests, over real HTTP ---------------------------------------------------


class Counter:
    """A one-route app counting the requests that reached it."""

    def __init__(self) -> None:
        self.calls = 0
        self.handled_at = 0.0

    async def handle(self, request: Request) -> JSONResponse:
        await request.body()
        self.calls += 1
        self.handled_at = time.monotonic()
        return JSONResponse({"calls": self.calls})

    def app(self, plan: FaultPlan) -> FaultInjector:
        routes = [Route("/work", self.handle, methods=["POST"])]
        routes.append(Route("/_sandbox/state", self.handle, methods=["POST"]))
        return FaultInjector(Starlette(routes=routes), plan, error_body={"error": "injected"})


@pytest.fixture
def counter() -> Counter:
    return Counter()


def test_an_error_fault_answers_500_before_the_app_runs(http, paycore_sandbox_server, counter):
    server = paycore_sandbox_server(counter.app(FaultPlan(next=("error",))))

    response = http.post(f"{server.url}/work")

    assert response.status_code == 500
    assert response.json() == {"error": "injected"}
    assert counter.calls == 0
    assert http.post(f"{server.url}/work").json() == {"calls": 1}


def test_a_drop_fault_breaks_the_connection_after_the_app_ran(
    http, paycore_sandbox_server, counter
):
    server = paycore_sandbox_server(counter.app(FaultPlan(next=("drop",))))

    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        http.post(f"{server.url}/work")

    assert counter.calls == 1


def test_a_timeout_fault_stalls_after_the_app_ran_until_the_client_gives_up(
    http, paycore_sandbox_server, counter
):
    finished = threading.Event()
    injector = counter.app(FaultPlan(next=("timeout",), stall_seconds=30))

    async def app(scope, receive, send):
        await injector(scope, receive, send)
        if scope["type"] == "http":
            finished.set()

    server = paycore_sandbox_server(app)

    with pytest.raises(httpx.ReadTimeout):
        http.post(f"{server.url}/work", timeout=httpx.Timeout(5, read=0.2))

    assert counter.calls == 1
    # The stall (30 s) ends when the client goes away, not when it runs out; the bound
    # is loose so that a loaded machine does not fail the test.
    assert finished.wait(10)


def test_a_short_stall_still_answers(http, paycore_sandbox_server, counter):
    server = paycore_sandbox_server(counter.app(FaultPlan(next=("timeout",), stall_seconds=0.1)))

    started = time.monotonic()
    response = http.post(f"{server.url}/work", timeout=5)

    assert response.json() == {"calls": 1}
    assert time.monotonic() - started >= 0.1


def test_latency_delays_every_answer(http, paycore_sandbox_server, counter):
    server = paycore_sandbox_server(counter.app(FaultPlan(latency=0.15)))

    started = time.monotonic()
    http.post(f"{server.url}/work")

    assert time.monotonic() - started >= 0.15


def test_sandbox_control_paths_are_never_faulted(http, paycore_sandbox_server, counter):
    server = paycore_sandbox_server(counter.app(FaultPlan(error_rate=1, latency=60)))

    response = http.post(f"{server.url}/_sandbox/state", timeout=10)

    assert response.status_code == 200
    assert counter.calls == 1


def test_a_garble_fault_answers_200_with_a_body_not_in_the_apps_format_after_it_ran(
    http, paycore_sandbox_server, counter
):
    server = paycore_sandbox_server(counter.app(FaultPlan(next=("garble",))))

    response = http.post(f"{server.url}/work")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert counter.calls == 1
    assert http.post(f"{server.url}/work").json() == {"calls": 2}


def test_a_request_its_client_gave_up_on_during_latency_is_processed_and_then_idle(
    http, paycore_sandbox_server, counter
):
    injector = counter.app(FaultPlan(latency=0.5))
    server = paycore_sandbox_server(injector)

    with pytest.raises(httpx.ReadTimeout):
        http.post(f"{server.url}/work", content=b"{}", timeout=httpx.Timeout(5, read=0.05))

    assert counter.calls == 0
    assert injector.wait_idle(10)
    assert counter.calls == 1


def test_a_late_fault_processes_the_request_only_once_its_client_gave_up(
    http, paycore_sandbox_server, counter
):
    injector = counter.app(FaultPlan(next=("late",), stall_seconds=30))
    server = paycore_sandbox_server(injector)

    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        http.post(f"{server.url}/work", content=b"{}", timeout=httpx.Timeout(5, read=0.2))

    # Held until the client went away (not for the 30 s stall), then processed.
    assert injector.wait_idle(10)
    assert counter.calls == 1
    assert counter.handled_at - started >= 0.2
    assert http.post(f"{server.url}/work").json() == {"calls": 2}
