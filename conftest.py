"""Fixtures shared by the core and plugin tests, and the environment the session runs in.

Set when this file is imported, so before any test runs, and inherited by every
subprocess a test starts:

- ``XDG_CACHE_HOME``: a temporary directory, so no test reads or writes the
  developer's entry-point cache (see below);
- ``NO_PROXY``: loopback, so a proxy in the environment (``HTTP_PROXY``) never
  carries the traffic between tests and the sandboxes they serve on 127.0.0.1.
  Clients built by the tests themselves also say ``trust_env=False``.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from paycore.transactions.model import PaymentRequest
    from paycore.transactions.store import Store

# stevedore keeps entry-point scans in files under $XDG_CACHE_HOME/python-entrypoints,
# and reads XDG_CACHE_HOME only once: when it is imported, it builds its module-level
# cache object, which keeps the directory. Setting the variable in a fixture or in
# pytest_configure would come after this file's own stevedore import below, too late;
# so it is set here, before that import. If something imported stevedore earlier
# still, `_use_session_cache` gives it a fresh cache object that reads the variable.
SESSION_CACHE_HOME = tempfile.mkdtemp(prefix="paycore-tests-cache-")
os.environ["XDG_CACHE_HOME"] = SESSION_CACHE_HOME

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def _no_proxy() -> str:
    # Keep what the developer listed; lower-case no_proxy wins when both are set.
    listed = os.environ.get("no_proxy") or os.environ.get("NO_PROXY") or ""
    hosts = [host.strip() for host in listed.split(",") if host.strip()]
    return ",".join(dict.fromkeys([*hosts, *LOOPBACK_HOSTS]))


os.environ["NO_PROXY"] = os.environ["no_proxy"] = _no_proxy()

from stevedore import ExtensionManager, _cache  # noqa: E402 - after XDG_CACHE_HOME is set


def _install_cache(cache: Any, assign: Callable[[Any, str, Any], None]) -> None:
    """Make ``cache`` the stevedore cache object every lookup goes through."""
    assign(_cache, "_c", cache)
    assign(_cache, "get_group_all", cache.get_group_all)
    assign(_cache, "get_group_named", cache.get_group_named)
    assign(_cache, "get_single", cache.get_single)


def _use_session_cache() -> None:
    if not Path(_cache._c._dir).is_relative_to(SESSION_CACHE_HOME):
        _install_cache(_cache.Cache(), setattr)


_use_session_cache()


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(SESSION_CACHE_HOME, ignore_errors=True)


class FakeSite:
    """A directory on ``sys.path`` where a test installs throwaway distributions.

    Each distribution is a ``*.dist-info`` directory (METADATA, entry_points.txt) beside
    its modules, which is all entry-point discovery looks at.

    stevedore remembers entry points in three places: a per-group dict on
    `ExtensionManager` that lives as long as the process, and a cache object created
    when stevedore is imported, which keeps scans in memory (keyed by ``sys.path``) and
    in files under ``$XDG_CACHE_HOME/python-entrypoints``. `rescan` replaces all three
    for the duration of the test: an empty dict, and a fresh cache object whose
    directory (through ``XDG_CACHE_HOME``) is under the test's ``tmp_path`` and holds
    a ``.disable`` marker, so it never writes a file and every scan is real.
    """

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self._monkeypatch = monkeypatch

    def install(
        self,
        name: str,
        *,
        version: str = "1.0",
        entry_points: Mapping[str, Mapping[str, str]],
        modules: Mapping[str, str] | None = None,
    ) -> None:
        """Install distribution ``name`` with ``entry_points`` {group: {name: target}}."""
        for module, source in (modules or {}).items():
            path = self.root.joinpath(*module.split(".")).with_suffix(".py")
            path.parent.mkdir(parents=True, exist_ok=True)
            for package in path.relative_to(self.root).parents:
                if package != Path("."):
                    (self.root / package / "__init__.py").touch()
            path.write_text(source, encoding="utf-8")
        dist_info = self.root / f"{name.replace('-', '_')}-{version}.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
        )
        sections = []
        for group, declared in entry_points.items():
            lines = "".join(f"{key} = {target}\n" for key, target in declared.items())
            sections.append(f"[{group}]\n{lines}")
        (dist_info / "entry_points.txt").write_text("\n".join(sections), encoding="utf-8")
        importlib.invalidate_caches()
        self.rescan()

    def rescan(self) -> None:
        """Make stevedore forget what it discovered; the next lookup scans ``sys.path``."""
        cache_home = self.root.parent / "cache"
        cache_dir = cache_home / "python-entrypoints"
        cache_dir.mkdir(parents=True, exist_ok=True)
        (cache_dir / ".disable").touch()
        self._monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
        _install_cache(_cache.Cache(), self._monkeypatch.setattr)
        self._monkeypatch.setattr(ExtensionManager, "ENTRY_POINT_CACHE", {})


@pytest.fixture
def fake_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    """A `FakeSite` on ``sys.path``; its modules and entry points vanish after the test."""
    root = tmp_path / "site-packages"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    site = FakeSite(root, monkeypatch)
    site.rescan()
    before = set(sys.modules)
    yield site
    for name in set(sys.modules) - before:
        origin = getattr(sys.modules[name], "__file__", None)
        if origin and Path(origin).is_relative_to(root):
            del sys.modules[name]
    importlib.invalidate_caches()


# -- shared by many test modules ---------------------------------------------------------


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One loopback client per module: building one costs tens of milliseconds (its TLS
    setup). It never follows redirects and ignores proxies from the environment."""
    with httpx.Client(timeout=5, trust_env=False, follow_redirects=False) as client:
        yield client


class ManualClock:
    """A clock that moves only when a test moves it: ``clock.now += 60``."""

    def __init__(self, now: float = 1_767_225_600.0) -> None:  # 2026-01-01 00:00 UTC
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def payment_request() -> Callable[..., PaymentRequest]:
    """Build a `PaymentRequest`: by default ``txn_1``, an authorization of 10.00 USD
    with the test card ``tok_visa``; the kind, the transaction id and any field may
    be changed (``payment_request("capture", "txn_2", gateway_reference="pay_1")``)."""
    from paycore.money import Money
    from paycore.transactions.model import PaymentMethod, PaymentRequest

    def build(
        kind: str = "authorize", transaction_id: str = "txn_1", **changes: Any
    ) -> PaymentRequest:
        fields: dict[str, Any] = {
            "transaction_id": transaction_id,
            "transaction_type": kind,
            "payment_id": "p_1",
            "amount": Money(1000, "USD"),
            "payment_method": PaymentMethod(type="card", token="tok_visa"),
        }
        return PaymentRequest(**{**fields, **changes})

    return build


# -- the ledger's database ---------------------------------------------------------------

POSTGRES_URL_ENV = "PAYCORE_TEST_POSTGRES_URL"
DEFAULT_TEST_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
LEDGER_TABLES = (
    "payments",
    "transactions",
    "webhook_events",
    "outbox",
    "checkouts",
    "checkout_payments",
    "stored_methods",
)

# Every test of the ledger runs on both databases; ``-m "not postgres"`` leaves one out.
LEDGER_DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"postgres: needs the PostgreSQL database named by ${POSTGRES_URL_ENV}"
    )


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL database the tests may use: ``$PAYCORE_TEST_POSTGRES_URL``.

    Its tests are skipped when it cannot be reached, except on CI, where they fail:
    there a skipped database test would let a broken ledger pass unnoticed.
    """
    import sqlalchemy as sa

    from paycore.config import redact_url
    from paycore.errors import ConfigurationError
    from paycore.transactions.store import Store

    url = os.environ.get(POSTGRES_URL_ENV, DEFAULT_TEST_POSTGRES_URL)
    try:
        probe = Store.connect(url, connect_args={"connect_timeout": 3})
        try:
            with probe.engine.connect():
                pass
        finally:
            probe.close()
    except (ImportError, ConfigurationError, sa.exc.DBAPIError) as error:
        cause = " ".join(str(getattr(error, "orig", None) or error).split())
        reason = f"PostgreSQL at {redact_url(url)} (${POSTGRES_URL_ENV}) is unreachable: {cause}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return url


@pytest.fixture(scope="session")
def session_postgres_url(postgres_url: str) -> Iterator[str]:
    """``postgres_url`` with a schema of this test session's own, migrated.

    Each session gets a fresh schema (dropped at the end), so the tests run on what the
    migrations build now, and two test sessions on one database never meet. Processes
    started by the tests reach it through the URL (``options=-csearch_path=…``).
    """
    import uuid

    from sqlalchemy.engine import make_url

    from paycore.transactions.store import Store

    schema = f"paycore_test_{uuid.uuid4().hex[:12]}"
    admin = Store.connect(postgres_url)
    with admin.engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = make_url(postgres_url).update_query_dict({"options": f"-csearch_path={schema}"})
    session_url = url.render_as_string(hide_password=False)
    store = Store.connect(session_url)
    store.upgrade()
    store.close()
    try:
        yield session_url
    finally:
        with admin.engine.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


@pytest.fixture(scope="session")
def migrated_postgres(session_postgres_url: str) -> Iterator[Store]:
    """A `Store` on the session's migrated PostgreSQL schema."""
    from paycore.transactions.store import Store

    store = Store.connect(session_postgres_url)
    yield store
    store.close()


@pytest.fixture(params=LEDGER_DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a migrated ledger database with empty tables, on each database.

    SQLite: a new file. PostgreSQL: the session's database, emptied. For tests that
    open their own `Store` (other engine options) or start processes.
    """
    from paycore.transactions.store import Store

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
        store = Store.connect(url)
        try:
            store.upgrade()
        finally:
            store.close()
        return url
    postgres: Store = request.getfixturevalue("migrated_postgres")
    with postgres.engine.begin() as connection:
        # A test that left a transaction open must not hang the next one.
        connection.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
        connection.exec_driver_sql(f"TRUNCATE {', '.join(LEDGER_TABLES)} RESTART IDENTITY CASCADE")
    return str(request.getfixturevalue("session_postgres_url"))


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A `Store` on ``database_url``: migrated, empty, closed after the test."""
    from paycore.transactions.store import Store

    store = Store.connect(database_url)
    yield store
    store.close()
