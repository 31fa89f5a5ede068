"""The session's environment (set by the conftest): nothing of the developer's is touched."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
from stevedore import _cache

from paycore import plugins


def test_stevedores_entry_point_cache_is_a_temporary_directory_for_the_session():
    cache_home = Path(os.environ["XDG_CACHE_HOME"])

    assert cache_home.is_relative_to(tempfile.gettempdir())
    assert Path(_cache._c._dir) == cache_home / "python-entrypoints"
    assert not cache_home.is_relative_to(Path.home() / ".cache")


def test_discovery_caches_its_scans_there_and_subprocesses_use_the_same_place():
    plugins.available_gateways()
    probe = "import stevedore._cache as c; print(c._c._dir)"
    result = subprocess.run(  # noqa: S603 - this interpreter
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == _cache._c._dir
    # stevedore writes no cache file at all for an interpreter under the temporary
    # directory (a checkout there, say); where it writes, it writes only here.
    if not _cache._c._disable_caching:
        assert any(Path(_cache._c._dir).iterdir())


def test_loopback_is_never_sent_through_a_proxy():
    for name in ("NO_PROXY", "no_proxy"):
        listed = {host.strip() for host in os.environ[name].split(",")}
        assert {"127.0.0.1", "localhost", "::1"} <= listed


def test_the_shared_client_ignores_proxies_from_the_environment(http: httpx.Client):
    assert http.trust_env is False
