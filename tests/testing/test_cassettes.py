"""No cassette of any plugin holds a secret, a key, a card number or a credential header."""

from __future__ import annotations

from pathlib import Path

import pytest

from paycore import plugins
from paycore.testing.recording import cassette_problems

ROOT = Path(__file__).resolve().parents[2]
RECORDED_PLUGINS = sorted(path.parents[1] for path in ROOT.glob("plugins/*/tests/test_recorded.py"))


def sandbox_secrets(plugin: Path) -> list[str]:
    """The secrets a plugin's sandbox hands its gateway (what recording would have used)."""
    name = plugin.name
    sandbox = plugins.sandbox_class(name)()
    try:
        config = sandbox.gateway_config("http://127.0.0.1:1")
    finally:
        sandbox.close()
    return list(plugins.gateway_class(name).from_config(config).secret_values())


def test_every_plugin_with_recorded_tests_is_checked() -> None:
    assert RECORDED_PLUGINS, "no plugin has recorded tests: this check would check nothing"


@pytest.mark.parametrize("plugin", RECORDED_PLUGINS, ids=lambda path: path.name)
def test_no_cassette_leaks(plugin: Path) -> None:
    cassettes = sorted((plugin / "tests" / "cassettes").rglob("*.yaml"))
    secrets = sandbox_secrets(plugin)

    problems = [
        problem for cassette in cassettes for problem in cassette_problems(cassette, secrets)
    ]

    assert cassettes, f"{plugin.name} has recorded tests but no cassettes: run `make record`"
    assert problems == []
