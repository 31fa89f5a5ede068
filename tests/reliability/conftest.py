"""Fixtures of the reliability checks: a PostgreSQL ledger of a test's own."""

from __future__ import annotations

import pytest

from paycore.testing.pytest_plugin import DATABASE_URL_ENV
from paycore.transactions.store import Store


@pytest.fixture
def postgres_ledger(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Store:
    """A migrated ledger in a fresh schema of ``postgres_url``, dropped after the test
    (``paycore_ledger`` pointed at PostgreSQL). Unreachable: skipped, failed on CI."""
    monkeypatch.setenv(DATABASE_URL_ENV, postgres_url)
    ledger: Store = request.getfixturevalue("paycore_ledger")
    return ledger
