"""``/health``: 200 when the ledger's database answers and the gateways are loaded, else 503."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from paycore.transactions.store import Store
from paycore.web import health
from tests.web.support import WebApp

LOG = Callable[[], list[dict[str, Any]]]


def test_a_reachable_store_and_loaded_gateways_are_healthy(
    web_app: Callable[..., WebApp], http: httpx.Client, web_log: LOG
) -> None:
    app = web_app()

    answer = http.get(f"{app.url}/health")

    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "store": "ok", "gateways": ["dummy"]}
    (line,) = web_log()
    assert (line["status"], line["level"]) == (200, "DEBUG")  # probes are frequent


def test_a_store_that_cannot_be_opened_is_503(
    web_app: Callable[..., WebApp], http: httpx.Client, tmp_path: Path, web_log: LOG
) -> None:
    app = web_app(deliver=False, database_url=f"sqlite:///{tmp_path / 'gone' / 'ledger.db'}")

    answer = http.get(f"{app.url}/health")

    assert answer.status_code == 503
    assert answer.json() == {"status": "unavailable", "store": "unreachable", "gateways": ["dummy"]}
    (line,) = web_log()
    assert (line["reason"], line["error"], line["level"]) == (
        "store_unreachable",
        "OperationalError",
        "ERROR",
    )


def test_a_database_without_the_ledger_s_tables_is_503(
    web_app: Callable[..., WebApp], http: httpx.Client, tmp_path: Path
) -> None:
    Store.connect(f"sqlite:///{tmp_path / 'empty.db'}").close()
    app = web_app(deliver=False, database_url=f"sqlite:///{tmp_path / 'empty.db'}")

    answer = http.get(f"{app.url}/health")

    assert (answer.status_code, answer.json()["store"]) == (503, "unreachable")


def test_a_database_server_that_does_not_answer_is_503_after_a_short_wait(
    web_app: Callable[..., WebApp],
    http: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
    web_log: LOG,
) -> None:
    pytest.importorskip("psycopg")
    monkeypatch.setattr(health, "STORE_TIMEOUT", 0.3)
    # It accepts connections (the kernel does) and never says a word.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        app = web_app(deliver=False, database_url=f"postgresql://paycore@127.0.0.1:{port}/ledger")

        answers = [http.get(f"{app.url}/health") for _ in range(2)]

    assert [(a.status_code, a.json()["store"]) for a in answers] == [(503, "unreachable")] * 2
    assert [line["error"] for line in web_log()] == ["timeout", "timeout"]
