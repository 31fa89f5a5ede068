"""Plugin discovery and loading, against distributions installed on disk for the test."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import pytest

from paycore import plugins
from paycore.errors import PluginError
from paycore.gateways.dummy import DummyGateway
from paycore.gateways.dummy_sandbox import DummySandbox

if TYPE_CHECKING:
    from tests.conftest import FakeSite

# The gateway plugins installed before a test installs its own.
INSTALLED = frozenset(plugins.available_gateways())
BROKEN_GATEWAY = "import brokenpay_sdk  # a dependency that is not installed\n"

GATEWAY_NAMED = """\
from paycore.gateways.base import Capabilities, Gateway


class {cls}(Gateway):
    name = {name!r}
    display_name = "Test gateway"
    capabilities = Capabilities(operations=[])
"""


def install_broken_gateway(site: FakeSite) -> None:
    site.install(
        "paycore-brokenpay",
        version="2.1.0",
        entry_points={"paycore.gateways": {"brokenpay": "brokenpay_gateway:BrokenpayGateway"}},
        modules={"brokenpay_gateway": BROKEN_GATEWAY},
    )


def load_failure(call: Any, *args: str) -> PluginError:
    with pytest.raises(PluginError) as caught:
        call(*args)
    return caught.value


# -- gateways ------------------------------------------------------------------------


def test_a_plugin_whose_dependency_is_missing_fails_naming_the_real_cause(
    fake_site: FakeSite,
) -> None:
    install_broken_gateway(fake_site)

    error = load_failure(plugins.gateway_class, "brokenpay")

    message = str(error)
    assert "'brokenpay'" in message
    assert "brokenpay_gateway:BrokenpayGateway" in message
    assert "paycore-brokenpay 2.1.0" in message
    assert "ModuleNotFoundError: No module named 'brokenpay_sdk'" in message
    assert "not found" not in message.lower()
    assert isinstance(error.__cause__, ModuleNotFoundError)
    assert "\n" not in message


def test_loading_every_gateway_raises_for_a_broken_one_instead_of_skipping_it(
    fake_site: FakeSite,
) -> None:
    install_broken_gateway(fake_site)

    error = load_failure(plugins.load_gateways)

    assert "No module named 'brokenpay_sdk'" in str(error)
    assert isinstance(error.__cause__, ModuleNotFoundError)


def test_a_broken_plugin_does_not_stop_another_from_loading_by_name(
    fake_site: FakeSite,
) -> None:
    install_broken_gateway(fake_site)

    assert plugins.gateway_class("dummy") is DummyGateway


def test_installed_gateways_are_listed_with_their_distribution_without_importing_them(
    fake_site: FakeSite,
) -> None:
    install_broken_gateway(fake_site)

    installed = plugins.available_gateways()

    assert installed["brokenpay"] == plugins.EntryPointInfo(
        name="brokenpay",
        group="paycore.gateways",
        target="brokenpay_gateway:BrokenpayGateway",
        distribution="paycore-brokenpay",
        version="2.1.0",
    )
    assert installed["dummy"].distribution == "paycore"
    assert list(installed) == sorted(installed)
    assert "brokenpay_gateway" not in sys.modules


def test_a_name_that_is_not_installed_lists_the_installed_names() -> None:
    error = load_failure(plugins.gateway_class, "nosuchpay")

    assert "no gateway plugin named 'nosuchpay' is installed" in str(error)
    assert "dummy" in str(error)
    assert error.__cause__ is None


def test_a_gateway_entry_point_that_loads_something_else_is_refused(
    fake_site: FakeSite,
) -> None:
    fake_site.install(
        "paycore-oddpay",
        entry_points={"paycore.gateways": {"oddpay": "oddpay_plugin:make_gateway"}},
        modules={"oddpay_plugin": "def make_gateway():\n    return None\n"},
    )

    error = load_failure(plugins.gateway_class, "oddpay")

    assert "must load a subclass of paycore.gateways.base.Gateway" in str(error)
    assert "function make_gateway" in str(error)
    assert "paycore-oddpay 1.0" in str(error)


def test_a_gateway_whose_name_differs_from_its_entry_point_is_refused(
    fake_site: FakeSite,
) -> None:
    fake_site.install(
        "paycore-mislabelled",
        entry_points={"paycore.gateways": {"labelpay": "label_plugin:LabelGateway"}},
        modules={"label_plugin": GATEWAY_NAMED.format(cls="LabelGateway", name="otherpay")},
    )

    error = load_failure(plugins.gateway_class, "labelpay")

    assert "is named 'otherpay'" in str(error)
    assert "must equal the entry-point name 'labelpay'" in str(error)


def test_a_gateway_plugin_that_loads_cleanly_is_returned(fake_site: FakeSite) -> None:
    fake_site.install(
        "paycore-goodpay",
        entry_points={"paycore.gateways": {"goodpay": "goodpay.gateway:GoodpayGateway"}},
        modules={"goodpay.gateway": GATEWAY_NAMED.format(cls="GoodpayGateway", name="goodpay")},
    )

    cls = plugins.gateway_class("goodpay")

    assert cls.name == "goodpay"
    assert set(plugins.load_gateways()) == {*INSTALLED, "goodpay"}


def test_a_gateway_name_declared_by_two_distributions_is_refused(fake_site: FakeSite) -> None:
    for owner in ("paycore-twin-a", "paycore-twin-b"):
        module = owner.replace("-", "_")
        fake_site.install(
            owner,
            entry_points={"paycore.gateways": {"twinpay": f"{module}:TwinGateway"}},
            modules={module: GATEWAY_NAMED.format(cls="TwinGateway", name="twinpay")},
        )

    error = load_failure(plugins.gateway_class, "twinpay")

    assert "declared more than once" in str(error)
    assert "paycore-twin-a 1.0" in str(error)
    assert "paycore-twin-b 1.0" in str(error)


# -- sandboxes -----------------------------------------------------------------------


def test_the_dummy_sandbox_is_found_by_name() -> None:
    assert plugins.sandbox_class("dummy") is DummySandbox
    assert plugins.available_sandboxes()["dummy"].target == (
        "paycore.gateways.dummy_sandbox:DummySandbox"
    )


def test_a_sandbox_that_is_not_installed_lists_the_installed_ones() -> None:
    error = load_failure(plugins.sandbox_class, "nosuchpay")

    assert "no sandbox plugin named 'nosuchpay' is installed" in str(error)
    assert "dummy" in str(error)


def test_a_sandbox_entry_point_must_load_a_class(fake_site: FakeSite) -> None:
    fake_site.install(
        "paycore-flatpay",
        entry_points={"paycore.sandboxes": {"flatpay": "flatpay_sandbox:SANDBOX"}},
        modules={"flatpay_sandbox": "SANDBOX = object()\n"},
    )

    error = load_failure(plugins.sandbox_class, "flatpay")

    assert "must load a class" in str(error)
    assert "an instance of object" in str(error)


def test_a_sandbox_that_fails_to_import_names_the_real_cause(fake_site: FakeSite) -> None:
    fake_site.install(
        "paycore-brokenbox",
        entry_points={"paycore.sandboxes": {"brokenbox": "brokenbox_sandbox:Sandbox"}},
        modules={"brokenbox_sandbox": "raise RuntimeError('sandbox kit too old')\n"},
    )

    error = load_failure(plugins.sandbox_class, "brokenbox")

    assert "RuntimeError: sandbox kit too old" in str(error)
    assert "fix or uninstall paycore-brokenbox" in str(error)


# -- hooks ---------------------------------------------------------------------------

RECORDING_HOOKS = """\
from paycore.hookspecs import hookimpl

received = []


@hookimpl
def paycore_webhook_received(gateway, events):
    received.append((gateway, events))
"""


def test_hook_implementations_declared_as_entry_points_are_registered_and_called(
    fake_site: FakeSite,
) -> None:
    fake_site.install(
        "shop-audit",
        entry_points={"paycore.hooks": {"shop_audit": "shop_audit_hooks"}},
        modules={"shop_audit_hooks": RECORDING_HOOKS},
    )

    manager = plugins.new_hook_manager()
    manager.hook.paycore_webhook_received(gateway="dummy", events=())

    assert sys.modules["shop_audit_hooks"].received == [("dummy", ())]
    assert manager.get_plugin("shop_audit") is sys.modules["shop_audit_hooks"]
    assert plugins.available_hooks()["shop_audit"].distribution == "shop-audit"


def test_a_hook_with_a_misspelt_name_is_refused(fake_site: FakeSite) -> None:
    fake_site.install(
        "shop-typo",
        entry_points={"paycore.hooks": {"shop_typo": "shop_typo_hooks"}},
        modules={
            "shop_typo_hooks": RECORDING_HOOKS.replace(
                "paycore_webhook_received", "paycore_webhook_recieved"
            )
        },
    )

    error = load_failure(plugins.new_hook_manager)

    assert "paycore_webhook_recieved" in str(error)
    assert "shop-typo 1.0" in str(error)


def test_a_hook_asking_for_an_argument_the_specification_lacks_is_refused(
    fake_site: FakeSite,
) -> None:
    fake_site.install(
        "shop-greedy",
        entry_points={"paycore.hooks": {"shop_greedy": "shop_greedy_hooks"}},
        modules={"shop_greedy_hooks": RECORDING_HOOKS.replace("gateway, events", "gateway, body")},
    )

    error = load_failure(plugins.new_hook_manager)

    assert "cannot be registered" in str(error)
    assert "body" in str(error)


def test_a_hook_plugin_that_fails_to_import_names_the_real_cause(fake_site: FakeSite) -> None:
    fake_site.install(
        "shop-broken-hooks",
        entry_points={"paycore.hooks": {"shop_broken": "shop_broken_hooks"}},
        modules={"shop_broken_hooks": "import shop_metrics_client\n"},
    )

    error = load_failure(plugins.new_hook_manager)

    assert "hooks plugin 'shop_broken' failed to load" in str(error)
    assert "No module named 'shop_metrics_client'" in str(error)


def test_the_default_hook_manager_is_built_once_and_fresh_ones_on_request() -> None:
    default = plugins.hook_manager()

    assert plugins.hook_manager() is default
    assert plugins.new_hook_manager() is not default
    assert plugins.new_hook_manager(load_entry_points=False).get_plugins() == set()
    assert hasattr(default.hook, "paycore_select_gateway")
