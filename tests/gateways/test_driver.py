"""The driver's error split, retries and transcripts, against real loopback servers."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import pluggy
import pytest
from attrs import frozen

from paycore.errors import (
    GatewayAuthError,
    GatewayProtocolError,
    GatewayRefused,
    GatewayUnavailable,
    InvalidAmount,
    OutcomeUnknown,
)
from paycore.gateways.base import Capabilities, Exchange, Gateway, GatewayConfig, read_json, secret
from paycore.gateways.driver import AsyncGatewayDriver, GatewayDriver, RetryPolicy
from paycore.money import Money
from paycore.testing.loopback import (
    FaultyServer,
    SaturatedListener,
    hang,
    refused_address,
    reset,
    respond,
    truncate,
    vanish,
)

SENTINEL_PAN = "4111 1111 1111 1111"
SENTINEL_CVV = "737"
SENTINEL_SECRET = "sk_test_SENTINEL_9f8e7d6c"


@frozen(kw_only=True)
class EchoConfig(GatewayConfig):
    base_url: str
    api_key: str = secret()
    idempotent_mutations: bool = False


class EchoGateway(Gateway):
    """A minimal gateway: one POST per authorize, one GET per status check."""

    name = "echo"
    display_name = "Echo"
    config_type = EchoConfig
    capabilities = Capabilities(operations={"authorize", "fetch_status"}, idempotency_keys=True)

    config: EchoConfig

    def authorize(self, request: Any) -> Exchange[dict[str, Any]]:
        response = yield self.build_request(
            "POST",
            f"{self.config.base_url}/payments",
            json=request,
            headers={"Authorization": f"Bearer {self.config.api_key}"},
            idempotent=self.config.idempotent_mutations,
        )
        body: dict[str, Any] = read_json(response, self.name)
        return body

    def fetch_status(self, request: Any) -> Exchange[dict[str, Any]]:
        response = yield self.build_request("GET", f"{self.config.base_url}/payments/1")
        body: dict[str, Any] = read_json(response, self.name)
        return body


def authorize_then_check(gateway: EchoGateway) -> Exchange[dict[str, Any]]:
    """Two steps: a mutation, then a read."""
    yield from gateway.authorize({"amount": 100})
    return (yield from gateway.fetch_status({}))


def echo(
    url: str, *, idempotent: bool = False, read: float = 2.0, total: float = 10.0
) -> EchoGateway:
    config = EchoConfig(
        base_url=url,
        api_key=SENTINEL_SECRET,
        idempotent_mutations=idempotent,
        timeouts={"connect": 0.3, "read": read, "total": total},
    )
    return EchoGateway(config)


FAST_RETRY = RetryPolicy(max_attempts=3, backoff=0.01, max_backoff=0.05)


def run_sync(gateway: EchoGateway, make: Callable[[EchoGateway], Exchange[Any]], **kw: Any) -> Any:
    with GatewayDriver(gateway, hooks=None, retry=FAST_RETRY, **kw) as driver:
        return driver.run(make(gateway), operation="authorize")


def run_async(gateway: EchoGateway, make: Callable[[EchoGateway], Exchange[Any]], **kw: Any) -> Any:
    async def go() -> Any:
        async with AsyncGatewayDriver(gateway, hooks=None, retry=FAST_RETRY, **kw) as driver:
            return await driver.run(make(gateway), operation="authorize")

    return asyncio.run(go())


@pytest.fixture(params=["sync", "async"])
def run(request: pytest.FixtureRequest) -> Callable[..., Any]:
    return run_sync if request.param == "sync" else run_async


def authorize(gateway: EchoGateway) -> Exchange[Any]:
    return gateway.authorize({"amount": 100})


def status(gateway: EchoGateway) -> Exchange[Any]:
    return gateway.fetch_status({})


# -- not sent: GatewayUnavailable, retried ---------------------------------------------


def test_connection_refused_is_unavailable_and_retried(run: Callable[..., Any]) -> None:
    gateway = echo(refused_address())
    with pytest.raises(GatewayUnavailable, match="nothing was done, safe to retry") as caught:
        run(gateway, authorize)
    assert [record.attempt for record in caught.value.transcript.records] == [1, 2, 3]


def test_connect_timeout_is_unavailable(run: Callable[..., Any]) -> None:
    with SaturatedListener() as listener:
        started = time.monotonic()
        with pytest.raises(GatewayUnavailable, match="ConnectTimeout"):
            run(echo(listener.url), authorize)
        # three attempts of 0.3 s each plus short backoffs
        assert time.monotonic() - started < 2.5


def test_rate_limited_mutation_is_retried_because_it_was_not_processed(
    run: Callable[..., Any],
) -> None:
    with FaultyServer([respond(429, "{}"), respond(200, '{"id": "p1"}')]) as server:
        assert run(echo(server.url), authorize) == {"id": "p1"}
        assert len(server.requests) == 2


# -- sent, outcome unknown -------------------------------------------------------------


@pytest.mark.parametrize(
    ("behaviour", "detail"),
    [
        (hang(), "no answer within the timeout"),
        (reset(), "connection broke"),
        (truncate(), "connection broke"),
        (respond(500, '{"error": "boom"}'), "provider failed"),
        (respond(503, "<html>"), "provider failed"),
    ],
    ids=["read-timeout", "reset-after-send", "truncated-body", "500", "503"],
)
def test_mutation_without_definitive_answer_is_outcome_unknown_and_never_resent(
    run: Callable[..., Any], behaviour: Any, detail: str
) -> None:
    with FaultyServer([behaviour]) as server:
        with pytest.raises(OutcomeUnknown, match=detail) as caught:
            run(echo(server.url, read=0.3), authorize)
        assert len(server.requests) == 1
    assert "reconcile" in str(caught.value)


def test_malformed_body_after_a_mutation_is_outcome_unknown(run: Callable[..., Any]) -> None:
    with FaultyServer([respond(200, "not json {")]) as server:
        with pytest.raises(OutcomeUnknown, match="could not be used") as caught:
            run(echo(server.url), authorize)
        assert isinstance(caught.value.__cause__, GatewayProtocolError)
        assert caught.value.http_status == 200


def test_malformed_body_on_a_read_is_a_protocol_error(run: Callable[..., Any]) -> None:
    with (
        FaultyServer([respond(200, "<html>oops</html>", "text/html")]) as server,
        pytest.raises(GatewayProtocolError, match="not JSON"),
    ):
        run(echo(server.url), status)


def test_idempotent_mutation_is_resent_after_a_timeout(run: Callable[..., Any]) -> None:
    with FaultyServer([hang(), respond(200, '{"id": "p1"}')]) as server:
        assert run(echo(server.url, idempotent=True, read=0.3), authorize) == {"id": "p1"}
        assert len(server.requests) == 2
        assert server.requests[0] == server.requests[1]


def test_reads_are_retried_after_5xx(run: Callable[..., Any]) -> None:
    with FaultyServer([respond(502, ""), respond(200, '{"status": "ok"}')]) as server:
        assert run(echo(server.url), status) == {"status": "ok"}


def test_a_read_that_keeps_failing_is_unavailable_not_unknown(run: Callable[..., Any]) -> None:
    with FaultyServer([respond(500, "")]) as server:
        with pytest.raises(GatewayUnavailable):
            run(echo(server.url), status)
        assert len(server.requests) == 3


def test_failure_after_a_mutation_reached_the_provider_is_outcome_unknown(
    run: Callable[..., Any],
) -> None:
    with FaultyServer([respond(200, '{"id": "p1"}'), respond(500, "")]) as server:
        with pytest.raises(OutcomeUnknown):
            run(echo(server.url), authorize_then_check)
        assert len(server.requests) == 4  # the mutation once, the read three times


def test_an_unknown_mutation_stays_unknown_when_its_retry_cannot_connect(
    run: Callable[..., Any],
) -> None:
    # The first attempt may have gone through; a refused retry does not make it "not sent".
    with FaultyServer([vanish()]) as server:
        with pytest.raises(OutcomeUnknown, match="may have happened"):
            run(echo(server.url, idempotent=True, read=0.3), authorize)
        assert len(server.requests) == 1


def test_credentials_rejected_is_an_auth_error_and_not_retried(run: Callable[..., Any]) -> None:
    with FaultyServer([respond(401, '{"error": "bad key"}')]) as server:
        with pytest.raises(GatewayAuthError, match="rejected the credentials"):
            run(echo(server.url), status)
        assert len(server.requests) == 1


def test_4xx_answers_go_to_the_plugin(run: Callable[..., Any]) -> None:
    with FaultyServer([respond(402, '{"error": {"code": "card_declined"}}')]) as server:
        assert run(echo(server.url), authorize) == {"error": {"code": "card_declined"}}


def test_total_time_is_bounded_across_retries(run: Callable[..., Any]) -> None:
    with FaultyServer([hang()]) as server:
        # Attempts at 0 s and about 0.31 s; a third at about 0.62 s would have less than
        # its 0.3 s read timeout left of the 0.7 s budget, so it is not made.
        gateway = echo(server.url, idempotent=True, read=0.3, total=0.7)
        started = time.monotonic()
        with pytest.raises(OutcomeUnknown):
            run(gateway, authorize)
        assert time.monotonic() - started < 3.0
        assert len(server.requests) == 2


def test_error_carries_gateway_status_and_request_id(run: Callable[..., Any]) -> None:
    answer = respond(500, "{}", headers={"Request-Id": "req_42"})
    with FaultyServer([answer]) as server, pytest.raises(OutcomeUnknown) as caught:
        run(echo(server.url), authorize)
    assert caught.value.gateway == "echo"
    assert caught.value.http_status == 500
    assert caught.value.request_id == "req_42"
    assert "request id req_42" in str(caught.value)


# -- transcripts -----------------------------------------------------------------------


def sensitive_authorize(gateway: EchoGateway) -> Exchange[Any]:
    return gateway.authorize(
        {"card": {"number": SENTINEL_PAN, "cvc": SENTINEL_CVV}, "note": SENTINEL_SECRET}
    )


class Recorder:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    @pluggy.HookimplMarker("paycore")
    def paycore_gateway_exchange(self, gateway: str, operation: str, transcript: Any) -> None:
        self.calls.append({"gateway": gateway, "operation": operation, "transcript": transcript})


def hooks_with(recorder: Recorder) -> Any:
    from paycore import hookspecs

    manager = pluggy.PluginManager("paycore")
    manager.add_hookspecs(hookspecs)
    manager.register(recorder)
    return manager.hook


def test_transcripts_reach_the_hook_and_logs_without_card_data_or_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    echoed = json.dumps({"card_number": SENTINEL_PAN.replace(" ", ""), "cvv": SENTINEL_CVV})
    recorder = Recorder()
    caplog.set_level(logging.DEBUG, logger="paycore")
    with FaultyServer([respond(200, echoed)]) as server:
        gateway = echo(server.url)
        with GatewayDriver(gateway, hooks=hooks_with(recorder), retry=FAST_RETRY) as driver:
            driver.run(sensitive_authorize(gateway), operation="authorize")
        assert SENTINEL_SECRET.encode() in server.requests[0]  # it really was sent
    [call] = recorder.calls
    transcript = call["transcript"]
    assert (call["gateway"], call["operation"], transcript.outcome) == (
        "echo",
        "authorize",
        "completed",
    )
    [record] = transcript.records
    assert record.status_code == 200
    texts = [record.request_body, record.response_body or "", record.url, caplog.text]
    texts += [value for _, value in record.request_headers + record.response_headers]
    for text in texts:
        for sentinel in (SENTINEL_PAN, SENTINEL_PAN.replace(" ", ""), SENTINEL_SECRET):
            assert sentinel not in text
    assert json.loads(record.request_body)["card"]["cvc"] == "[REDACTED]"
    assert json.loads(record.response_body or "")["cvv"] == "[REDACTED]"
    assert "…1111" in record.request_body
    assert ("authorization", "[REDACTED]") in record.request_headers


def test_failed_exchange_is_logged_as_a_warning_with_its_attempts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="paycore")
    gateway = echo(refused_address())
    with pytest.raises(GatewayUnavailable):
        run_sync(gateway, sensitive_authorize)
    [record] = caplog.records
    assert "GatewayUnavailable" in record.getMessage()
    assert record.getMessage().count("ConnectError") == 3
    assert SENTINEL_SECRET not in caplog.text


def test_run_recorded_returns_the_result_with_its_scrubbed_transcript() -> None:
    with FaultyServer([respond(200, '{"id": "p1"}')]) as server:
        gateway = echo(server.url)
        with GatewayDriver(gateway, hooks=None, retry=FAST_RETRY) as driver:
            recorded = driver.run_recorded(sensitive_authorize(gateway), operation="authorize")
    assert recorded.result == {"id": "p1"}
    [record] = recorded.transcript.records
    assert (record.method, record.status_code, record.response_body) == (
        "POST",
        200,
        '{"id": "p1"}',
    )
    assert SENTINEL_SECRET not in record.request_body


def test_run_summarized_gives_the_transcripts_summary_without_building_a_transcript() -> None:
    with FaultyServer([respond(200, '{"id": "p1"}')]) as server:
        gateway = echo(server.url + f"/{SENTINEL_SECRET}")  # a secret in the URL too
        with GatewayDriver(gateway, hooks=None, retry=FAST_RETRY) as driver:
            built: list[object] = []
            original = driver.scrubber.body
            driver.scrubber.body = lambda content: built.append(content) or original(content)  # type: ignore[method-assign]
            summarized = driver.run_summarized(authorize(gateway), operation="authorize")
    assert summarized.result == {"id": "p1"}
    assert built == []  # no body was scrubbed: none is kept
    assert summarized.summary.startswith("POST http://127.0.0.1:")
    assert " -> 200 (" in summarized.summary and summarized.summary.endswith(" ms)")
    assert SENTINEL_SECRET not in summarized.summary
    assert "/[REDACTED]/" in summarized.summary


def test_run_summarized_matches_the_transcripts_summary_sync_and_async() -> None:
    async def summarize_async(gateway: EchoGateway) -> str:
        async with AsyncGatewayDriver(gateway, hooks=None, retry=FAST_RETRY) as driver:
            return (await driver.run_summarized(authorize(gateway), operation="authorize")).summary

    with FaultyServer([respond(200, "{}")] * 3) as server:
        gateway = echo(server.url)
        with GatewayDriver(gateway, hooks=None, retry=FAST_RETRY) as driver:
            summary = driver.run_summarized(authorize(gateway), operation="authorize").summary
            recorded = driver.run_recorded(authorize(gateway), operation="authorize")
        async_summary = asyncio.run(summarize_async(gateway))
    shape = re.compile(r"POST \S+ -> 200 \(\d+\.\d ms\)")
    assert shape.fullmatch(summary)
    assert shape.fullmatch(recorded.transcript.summary())
    assert shape.fullmatch(async_summary)


def test_errors_carry_the_transcript_of_every_attempt(run: Callable[..., Any]) -> None:
    with pytest.raises(GatewayUnavailable) as caught:
        run(echo(refused_address()), sensitive_authorize)
    transcript = caught.value.transcript
    assert transcript.outcome == "GatewayUnavailable"
    assert [r.attempt for r in transcript.records] == [1, 2, 3]
    assert all("ConnectError" in (r.error or "") for r in transcript.records)
    assert SENTINEL_SECRET not in str(transcript.as_dict())


def test_a_plain_run_with_nobody_listening_builds_no_transcript() -> None:
    built: list[object] = []
    with FaultyServer([respond(200, "{}")]) as server:
        gateway = echo(server.url)
        with GatewayDriver(gateway, hooks=hooks_with(Recorder()), retry=FAST_RETRY) as driver:
            original = driver.scrubber.body
            driver.scrubber.body = lambda content: built.append(content) or original(content)  # type: ignore[method-assign]
            driver.run(authorize(gateway), operation="authorize")
    # the hook has an implementation, so bodies were scrubbed for it
    assert len(built) == 2
    built.clear()
    with FaultyServer([respond(200, "{}")]) as server:
        gateway = echo(server.url)
        with GatewayDriver(gateway, hooks=None, retry=FAST_RETRY) as driver:
            original = driver.scrubber.body
            driver.scrubber.body = lambda content: built.append(content) or original(content)  # type: ignore[method-assign]
            driver.run(authorize(gateway), operation="authorize")
    assert built == []


class Exploding:
    @pluggy.HookimplMarker("paycore")
    def paycore_gateway_exchange(self, gateway: str, operation: str, transcript: Any) -> None:
        raise RuntimeError("observer bug")


def test_a_failing_hook_is_logged_and_does_not_change_the_result(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with FaultyServer([respond(200, '{"id": "p1"}')]) as server:
        gateway = echo(server.url)
        manager = pluggy.PluginManager("paycore")
        from paycore import hookspecs

        manager.add_hookspecs(hookspecs)
        manager.register(Exploding())
        with GatewayDriver(gateway, hooks=manager.hook, retry=FAST_RETRY) as driver:
            assert driver.run(authorize(gateway), operation="authorize") == {"id": "p1"}
    [record] = [r for r in caplog.records if r.name == "paycore.hooks"]
    assert "paycore_gateway_exchange hook failed" in record.getMessage()


def test_forbidden_is_an_auth_error_even_for_a_mutation(run: Callable[..., Any]) -> None:
    with FaultyServer([respond(403, "{}")]) as server:
        with pytest.raises(GatewayAuthError):
            run(echo(server.url), authorize)
        assert len(server.requests) == 1


def test_rate_limiting_that_never_ends_is_unavailable_after_every_attempt(
    run: Callable[..., Any],
) -> None:
    with FaultyServer([respond(429, "{}")]) as server:
        with pytest.raises(GatewayUnavailable, match="rate limiting"):
            run(echo(server.url), authorize)
        assert len(server.requests) == 3


def test_retry_after_is_honoured() -> None:
    waits: list[float] = []
    script = [respond(429, "{}", headers={"Retry-After": "1"}), respond(200, '{"id": "p1"}')]
    with FaultyServer(script) as server:
        gateway = echo(server.url)
        policy = RetryPolicy(max_attempts=3, backoff=0.01, max_backoff=2.0, jitter=0.0)
        with GatewayDriver(gateway, hooks=None, retry=policy, sleep=waits.append) as driver:
            assert driver.run(authorize(gateway), operation="authorize") == {"id": "p1"}
    assert waits == [1.0]


def check_then_authorize(gateway: EchoGateway) -> Exchange[Any]:
    yield from gateway.fetch_status({})
    return (yield from gateway.authorize({"amount": 100}))


def test_a_mutation_is_not_sent_without_its_full_read_timeout_left(
    run: Callable[..., Any],
) -> None:
    # The slow read leaves 0.3 s of the 1 s budget, less than the 0.9 s read timeout:
    # sending the mutation then could only manufacture an unknown outcome.
    slow_read = respond(200, '{"status": "ok"}', delay=0.7)
    with FaultyServer([slow_read, respond(200, '{"id": "p1"}')]) as server:
        with pytest.raises(
            GatewayUnavailable, match=r"not sent: .* less than the 0\.9 s read timeout"
        ):
            run(echo(server.url, read=0.9, total=1.0), check_then_authorize)
        assert len(server.requests) == 1


def test_a_mutation_gets_its_whole_read_timeout_even_near_the_end_of_the_budget(
    run: Callable[..., Any],
) -> None:
    slow_read = respond(200, '{"status": "ok"}', delay=0.3)
    slow_write = respond(200, '{"id": "p1"}', delay=0.4)
    with FaultyServer([slow_read, slow_write]) as server:
        # 0.3 s spent, 0.6 s left, read timeout 0.5 s: sent, and it waits the whole 0.5 s
        assert run(echo(server.url, read=0.5, total=0.9), check_then_authorize) == {"id": "p1"}


class MoneyReadingGateway(EchoGateway):
    def authorize(self, request: Any) -> Exchange[Any]:
        body = yield from super().authorize(request)
        return Money.parse(body["amount"], "USD")


def test_anything_the_plugin_raises_after_a_mutation_is_outcome_unknown(
    run: Callable[..., Any],
) -> None:
    with FaultyServer([respond(200, '{"amount": "10.005"}')]) as server:
        config = EchoConfig(base_url=server.url, api_key=SENTINEL_SECRET)
        gateway = MoneyReadingGateway(config)
        with pytest.raises(OutcomeUnknown, match="InvalidAmount") as caught:
            run(gateway, authorize)
    assert isinstance(caught.value.__cause__, InvalidAmount)


class RefusingGateway(EchoGateway):
    def authorize(self, request: Any) -> Exchange[Any]:
        response = yield self.build_request("POST", f"{self.config.base_url}/pages", json={})
        raise GatewayRefused(
            "no pages for this account",
            gateway=self.name,
            http_status=response.status_code,
            code="pages_disabled",
        )


def test_a_refusal_the_plugin_read_in_the_answer_passes_through_with_its_transcript(
    run: Callable[..., Any],
) -> None:
    with FaultyServer([respond(400, '{"error": "pages_disabled"}')]) as server:
        gateway = RefusingGateway(EchoConfig(base_url=server.url, api_key=SENTINEL_SECRET))
        with pytest.raises(GatewayRefused, match="no pages") as caught:
            run(gateway, authorize)
        assert len(server.requests) == 1

    assert (caught.value.code, caught.value.http_status) == ("pages_disabled", 400)
    assert caught.value.transcript is not None


def test_a_cancelled_exchange_leaves_a_trace_and_stays_cancelled() -> None:
    recorder = Recorder()

    async def go(url: str) -> None:
        gateway = echo(url, read=5.0)
        async with AsyncGatewayDriver(gateway, hooks=hooks_with(recorder)) as driver:
            await asyncio.wait_for(driver.run(authorize(gateway), operation="authorize"), 0.3)

    with FaultyServer([hang()]) as server, pytest.raises(TimeoutError):
        asyncio.run(go(server.url))
    [call] = recorder.calls
    assert call["transcript"].outcome == "interrupted (CancelledError)"
    [record] = call["transcript"].records
    assert "interrupted while the request was in flight" in (record.error or "")


def test_a_request_that_cannot_be_written_is_not_sent_and_its_secret_is_not_quoted(
    run: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    # A secret read from the environment with a trailing newline: an illegal header.
    with FaultyServer([respond(200, "{}")]) as server:
        gateway = EchoGateway(EchoConfig(base_url=server.url, api_key=SENTINEL_SECRET + "\n"))
        with pytest.raises(GatewayUnavailable, match="could not send") as caught:
            run(gateway, authorize)
        assert server.requests == []
    quoted = str(caught.value) + caplog.text + json.dumps(caught.value.transcript.as_dict())
    assert SENTINEL_SECRET not in quoted


def test_a_closed_client_is_unavailable_not_unknown() -> None:
    with FaultyServer([respond(200, "{}")]) as server:
        gateway = echo(server.url)
        driver = GatewayDriver(gateway, hooks=None, retry=FAST_RETRY)
        driver.close()
        with pytest.raises(GatewayUnavailable, match="client is closed"):
            driver.run(authorize(gateway), operation="authorize")
        assert server.requests == []


def test_cancelled_while_waiting_to_retry_leaves_a_trace() -> None:
    recorder = Recorder()

    async def go(url: str) -> None:
        gateway = echo(url, idempotent=True, read=0.2)
        slow_retry = RetryPolicy(max_attempts=3, backoff=3.0, max_backoff=3.0, jitter=0.0)
        async with AsyncGatewayDriver(gateway, hooks=hooks_with(recorder), retry=slow_retry) as d:
            await asyncio.wait_for(d.run(authorize(gateway), operation="authorize"), 0.6)

    with FaultyServer([hang()]) as server, pytest.raises(TimeoutError):
        asyncio.run(go(server.url))
    [call] = recorder.calls
    assert call["transcript"].outcome == "interrupted (CancelledError)"
    assert len(call["transcript"].records) == 1  # the attempt that reached the server


class CrashingGateway(EchoGateway):
    def fetch_status(self, request: Any) -> Exchange[Any]:
        raise OverflowError("year is out of range")
        yield  # a generator, failing before its first request


def test_a_plugin_failing_before_any_request_is_a_protocol_error() -> None:
    gateway = CrashingGateway(EchoConfig(base_url="http://127.0.0.1:9", api_key=SENTINEL_SECRET))
    with (
        GatewayDriver(gateway, hooks=None) as driver,
        pytest.raises(GatewayProtocolError, match="the plugin failed") as caught,
    ):
        driver.run(gateway.fetch_status({}), operation="fetch_status")
    assert isinstance(caught.value.__cause__, OverflowError)
    assert caught.value.transcript.records == ()


def test_a_strange_retry_after_is_ignored(run: Callable[..., Any]) -> None:
    script = [respond(429, "{}", headers={"Retry-After": "\u00b2"}), respond(200, '{"id": "p"}')]
    with FaultyServer(script) as server:
        assert run(echo(server.url), authorize) == {"id": "p"}
