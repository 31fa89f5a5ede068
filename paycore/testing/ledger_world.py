"""`LedgerWorld`: every gateway's sandbox and paycore's web app, served on loopback.

What `paycore.testing.ledger_machine` drives: for each gateway, its sandbox built and
configured as its gateway contract says (`ContractBase.make_sandbox`,
`ContractBase.build_gateway`), served; two drivers per gateway, one that reaches the
sandbox and one that finds it unreachable (a second process cut off from the
provider); and paycore's web app (`paycore.web.create_app`) on its own services over
the same ledger, to which every sandbox delivers its webhooks and callbacks, as a
merchant's deployment receives them.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import ExitStack, asynccontextmanager, contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs
import httpx
from attrs import define, field, frozen
from starlette.applications import Starlette
from starlette.routing import Mount

from paycore.config import Settings
from paycore.gateways.driver import GatewayDriver, RetryPolicy
from paycore.sandbox.faults import FaultPlan
from paycore.sandbox.server import SandboxServer
from paycore.testing.contract_base import WEBHOOK_TIME_SCALE, ContractBase
from paycore.testing.loopback import refused_address
from paycore.transactions.async_services import AsyncPaymentTransactionServices
from paycore.transactions.ledger import utc_now
from paycore.transactions.store import Store
from paycore.web import create_app

if TYPE_CHECKING:
    from paycore.sandbox.base import Sandbox

__all__ = [
    "BUDGET",
    "NO_FAULTS",
    "GatewayUnderTest",
    "LedgerClock",
    "LedgerWorld",
    "serve_world",
]

# Small timeouts, so a stalled answer costs 0.3 s; the budget bounds "not found".
TIMEOUTS = {"connect": 1.0, "read": 0.3, "total": 2.0}
BUDGET = timedelta(seconds=TIMEOUTS["total"])
# Two attempts: one injected fault is retried away (every provider here deduplicates by
# the transaction's key), two make the outcome unknown (or, when they break a question
# a gateway asks before its mutation, leave it unsent).
RETRIES = RetryPolicy(max_attempts=2, backoff=0.01, max_backoff=0.02, jitter=0.0)
# A stalled request ends when the client gives up; one second bounds it otherwise.
NO_FAULTS = FaultPlan(stall_seconds=1.0)
LATE = 0.05  # seconds a late webhook waits before it is delivered


class LedgerClock:
    """The services' time: the wall clock, plus what reconciliation skipped ahead."""

    def __init__(self) -> None:
        self.skipped = timedelta()

    def __call__(self) -> datetime:
        return utc_now() + self.skipped


@frozen
class GatewayUnderTest:
    """One gateway as the machine sees it: its contract (what its sandbox approves and
    declines, how its page is paid, what its sandbox says a payment holds), its served
    sandbox, and a driver that reaches it and one that cannot."""

    contract: ContractBase
    sandbox: Sandbox
    online: GatewayDriver
    offline: GatewayDriver

    @property
    def name(self) -> str:
        return self.contract.gateway_name

    @property
    def shares_its_wire(self) -> bool:
        """Whether the web app asks this provider too: its callbacks are not signed but
        confirmed by a question, so the sandbox also hears requests the machine did not
        send (and one of them may meet a fault queued for the machine's)."""
        return self.contract.capabilities().webhook_signing is None

    @contextmanager
    def faults(self, requests: Sequence[str], webhooks: Sequence[str]) -> Iterator[None]:
        """For the block: each of the next requests broken by one fault of ``requests``
        (``error``, ``drop``, ``timeout``), each of the next webhooks by one of
        ``webhooks`` (``duplicate``, ``reorder``), and every webhook delivered late
        when ``webhooks`` holds ``late``."""
        delay = LATE if "late" in webhooks else 0.0
        plan = attrs.evolve(
            NO_FAULTS,
            webhook_next=[fault for fault in webhooks if fault != "late"],
            webhook_delay=delay,
        )
        self.sandbox.set_faults(plan)
        self.sandbox.queue_faults(*requests)
        try:
            yield
        finally:
            # Faults the block did not use must not break what comes next.
            self.sandbox.set_faults(NO_FAULTS)


@define
class LedgerWorld:
    """What every example of the machine shares; ``steps`` counts the steps run."""

    gateways: Mapping[str, GatewayUnderTest]
    store: Store
    browser: httpx.Client
    steps: int = 0
    # Idempotency keys are the ledger's, whose payments outlive each example.
    key_numbers: Iterator[int] = field(factory=itertools.count)

    def new_key(self) -> str:
        return f"key-{next(self.key_numbers)}"


@contextmanager
def serve_world(
    contracts: Sequence[ContractBase], store: Store, http: httpx.Client
) -> Iterator[LedgerWorld]:
    """Serve a sandbox per contract and the web app receiving their webhooks.

    ``store`` is the ledger the machine's services use; the web app opens its own
    connection to the same database. ``http`` carries the drivers' requests and the
    customer's clicks on the providers' pages.
    """
    with ExitStack() as stack:
        # The web app is served first, for its address: the sandboxes take the URL they
        # deliver to when they are built, and the app's gateways need the sandboxes'.
        receiving: list[AsyncPaymentTransactionServices] = []

        @asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            yield
            # On the server's event loop, where the web app's connections were made.
            for services in receiving:
                await services.aclose()

        web = Starlette(lifespan=lifespan)
        web_server = SandboxServer(web).start()
        stack.callback(web_server.stop)
        gateways: dict[str, GatewayUnderTest] = {}
        receiving_gateways = {}
        for contract in contracts:
            name = contract.gateway_name
            sandbox = contract.make_sandbox(
                webhook_url=f"{web_server.url}/webhooks/{name}",
                webhook_time_scale=WEBHOOK_TIME_SCALE,
                faults=NO_FAULTS,
            )
            server = SandboxServer(sandbox.app()).start()
            stack.callback(server.stop)
            stack.callback(sandbox.close)  # before the app stops: no delivery after
            gateways[name] = GatewayUnderTest(
                contract,
                sandbox,
                online=_driver(contract, sandbox, server.url, http),
                offline=_driver(contract, sandbox, refused_address(), http),
            )
            receiving_gateways[name] = contract.build_gateway(sandbox, server.url)
        services = AsyncPaymentTransactionServices(
            Store.connect(store.engine.url.render_as_string(hide_password=False)),
            receiving_gateways,
            hooks=None,
        )
        receiving.append(services)
        settings = Settings(database_url="sqlite://", webhook_base_url=web_server.url)
        web.router.routes.append(Mount("", app=create_app(settings, services=services)))
        yield LedgerWorld(gateways, store, http)


def _driver(
    contract: ContractBase, sandbox: Sandbox, url: str, http: httpx.Client
) -> GatewayDriver:
    config: dict[str, Any] = {**contract.gateway_config(sandbox, url), "timeouts": TIMEOUTS}
    gateway = contract.gateway_class().from_config(config)
    return GatewayDriver(gateway, client=http, hooks=None, retry=RETRIES)
