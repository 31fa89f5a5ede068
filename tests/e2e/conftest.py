"""End-to-end tests in a real browser: headless Chromium, driven by Playwright.

The browser is Debian's ``chromium`` (``make browser`` installs it); ``$PAYCORE_CHROMIUM``
names another binary (a path, or a name on ``PATH``). Playwright only drives it: it is
never asked to download a browser of its own.

- ``browser``: one Chromium for every test under ``tests/e2e`` (launching costs about
  half a second with Playwright's driver, more than a test). Without Chromium, or when
  it does not start, its tests are skipped saying why; on CI (``CI=true``) they fail
  instead, since a skipped end-to-end test would let a broken page pass unnoticed.
- ``page``: a fresh context (cookies, storage) and page per test, closed after it.
- ``shop``: a factory; ``shop("wooshpay")`` is a merchant (`tests.e2e.shop.Shop`) taking
  payments through that provider plugin's sandbox, on a ledger of the test's own.
- ``checkout_shop``: a factory; ``checkout_shop("wooshpay")`` is a merchant
  (`tests.e2e.shop.CheckoutShop`) taking checkouts through paycore's web app, paid by a
  gift card and on that provider's page, on a ledger of the test's own.

The browser lives in this package's scope, not the session's: while Playwright's
synchronous API is started, its event loop counts as running in the main thread, and
``asyncio.run`` there fails; the tests after this package must not inherit that.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NoReturn

import httpx
import pytest
from playwright.sync_api import Browser, Error, Page, sync_playwright

from paycore.sandbox.server import SandboxServer
from paycore.transactions.store import Store
from tests.e2e.hosted_pages import HOSTED_PAGES
from tests.e2e.shop import CheckoutShop, OpenCheckoutShop, OpenShop, Shop
from tests.web.support import ledger_url

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from paycore.testing.pytest_plugin import MakeServices, ServeSandbox

CHROMIUM_ENV = "PAYCORE_CHROMIUM"
DEFAULT_CHROMIUM = "chromium"
# A step that waits longer than this on a loopback page is broken, not slow.
ACTION_TIMEOUT_MS = 10_000


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the end-to-end tests must run)", pytrace=False)
    pytest.skip(reason)


def chromium_executable() -> str:
    """The Chromium to drive: ``$PAYCORE_CHROMIUM``, else ``chromium`` on ``PATH``."""
    wanted = os.environ.get(CHROMIUM_ENV) or DEFAULT_CHROMIUM
    found = shutil.which(wanted)
    if found is None:
        if os.environ.get(CHROMIUM_ENV):
            _unavailable(f"${CHROMIUM_ENV}={wanted} is not an executable Chromium")
        _unavailable(
            f"no browser: {DEFAULT_CHROMIUM} is not on PATH; run 'make browser' (Debian's "
            f"chromium package) or set ${CHROMIUM_ENV} to a Chromium binary"
        )
    return found


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Headless Chromium, launched once for this package's tests."""
    executable = chromium_executable()
    playwright = sync_playwright().start()
    try:
        try:
            # Playwright passes --no-sandbox unless asked otherwise: as root (CI, a
            # container) Chromium runs only so, and the pages are the tests' own.
            launched = playwright.chromium.launch(
                executable_path=executable, headless=True, chromium_sandbox=False
            )
        except Error as error:
            _unavailable(f"Chromium at {executable} did not start: {_launch_failure(error)}")
        try:
            yield launched
        finally:
            launched.close()
    finally:
        playwright.stop()


def _launch_failure(error: Error) -> str:
    """Playwright's reason, and what the browser said before it exited (its log repeats
    the whole command line, which says nothing more)."""
    lines = str(error.message).strip().splitlines()
    # The log lists the browser's errors twice (the browser's log, then the call's).
    said = list(dict.fromkeys(line.split("]", 2)[-1].strip() for line in lines if "][err]" in line))
    exits = [line.split("<", 1)[-1].rstrip(">") for line in lines if "<process did exit" in line]
    return "; ".join([lines[0], *said[-3:], *exits[-1:]])


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A new page in a context of its own: nothing carries over from another test."""
    context = browser.new_context()
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def shop(
    paycore_sandbox_server: ServeSandbox,
    paycore_services: MakeServices,
    http: httpx.Client,
) -> OpenShop:
    """``shop(gateway, **sandbox_options)``: a `Shop` on that provider's fresh sandbox."""

    def open_shop(gateway: str, **sandbox_options: Any) -> Shop:
        return Shop.open(
            gateway,
            serve=paycore_sandbox_server,
            make_services=paycore_services,
            client=http,
            **sandbox_options,
        )

    return open_shop


@pytest.fixture
def checkout_shop(
    paycore_sandbox_server: ServeSandbox,
    paycore_services: MakeServices,
    paycore_ledger: Store,
    http: httpx.Client,
) -> Iterator[OpenCheckoutShop]:
    """``checkout_shop(gateway, **sandbox_options)``: a `CheckoutShop` on that provider's
    fresh sandbox, in the currency its page takes; checkouts sell where the provider
    only sells (a gift card paying part of them is sold too), else they authorize."""
    servers: list[SandboxServer] = []

    def serve_app(app: ASGIApp, port: int) -> SandboxServer:
        servers.append(SandboxServer(app, port=port).start())
        return servers[-1]

    def open_shop(gateway: str, **sandbox_options: Any) -> CheckoutShop:
        hosted = HOSTED_PAGES[gateway]
        return CheckoutShop.open(
            gateway,
            currency=hosted.currency,
            capture="authorize" if hosted.authorizes else "sale",
            ledger=ledger_url(paycore_ledger),
            serve=paycore_sandbox_server,
            serve_app=serve_app,
            make_services=paycore_services,
            client=http,
            **sandbox_options,
        )

    yield open_shop
    for server in servers:
        server.request_stop()
    for server in servers:
        server.stop()
