from collections.abc import Iterator

import httpx
import pytest


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One client per module: building one costs tens of milliseconds (its TLS setup)."""
    with httpx.Client(timeout=5) as client:
        yield client
