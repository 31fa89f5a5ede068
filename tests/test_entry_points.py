"""Every installed entry point in paycore's groups loads, and is what its group expects."""

from __future__ import annotations

import inspect

import jsonschema
import pytest

from paycore import plugins
from paycore.gateways.base import Gateway

GATEWAYS = sorted(plugins.available_gateways())
SANDBOXES = sorted(plugins.available_sandboxes())


def test_the_first_party_dummy_plugin_and_sandbox_are_installed() -> None:
    assert "dummy" in GATEWAYS
    assert "dummy" in SANDBOXES


@pytest.mark.parametrize("name", GATEWAYS)
def test_every_installed_gateway_loads_as_a_gateway_of_the_same_name(name: str) -> None:
    cls = plugins.gateway_class(name)

    assert issubclass(cls, Gateway)
    assert cls.name == name
    assert cls.display_name


@pytest.mark.parametrize("name", GATEWAYS)
def test_every_installed_gateway_has_a_valid_config_schema(name: str) -> None:
    schema = plugins.gateway_class(name).full_config_schema()

    jsonschema.validators.validator_for(schema).check_schema(schema)


def test_all_installed_gateways_load_together() -> None:
    assert sorted(plugins.load_gateways()) == GATEWAYS


@pytest.mark.parametrize("name", SANDBOXES)
def test_every_installed_sandbox_loads_as_a_class_of_the_same_name(name: str) -> None:
    cls = plugins.sandbox_class(name)

    assert inspect.isclass(cls)
    assert cls.name == name


def test_every_installed_hooks_plugin_is_registered() -> None:
    manager = plugins.new_hook_manager()

    registered = {manager.get_name(plugin) for plugin in manager.get_plugins()}
    assert set(plugins.available_hooks()) <= registered
