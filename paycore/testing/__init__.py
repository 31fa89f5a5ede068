"""paycore's test kit: the pytest plugin, loopback fault servers, and the gateway contract.

`GatewayContract` is the suite every gateway plugin subclasses (see
`paycore.testing.contract`); `ProviderTotals` is what its ``provider_totals`` returns.
They are imported on first use, so importing this package (as pytest does for the
plugin in `paycore.testing.pytest_plugin`) loads no gateway, sandbox or server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from paycore.testing.contract import GatewayContract, ProviderTotals

__all__ = ["GatewayContract", "ProviderTotals"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from paycore.testing import contract

        return getattr(contract, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
