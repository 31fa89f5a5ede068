"""What a customer does on each provider sandbox's hosted payment page, in a browser.

One `HostedPage` per provider plugin: what paycore asks of the page (an authorization,
or a sale where the provider only sells; in the currency it takes), how the page is
paid (`HostedPage.pay`: the card number typed into its field, its pay button clicked,
through Playwright's locators on the real form), and where it sends a customer whose
card was declined. The checkout tests through paycore's web app reuse them.
"""

from __future__ import annotations

from attrs import frozen
from playwright.sync_api import Page

# The sandboxes' test cards (SANDBOX ONLY: never a real card), the same on all three.
PAYING_CARD = "4242424242424242"
DECLINING_CARD = "4000000000000002"


@frozen(kw_only=True)
class HostedPage:
    """One sandbox's hosted page, as a customer sees it.

    ``pay_button`` is the label of the button that pays by card, ``cancel_button`` of
    the one that leaves without paying (XPAY's says Fail). ``declined_stays``:
    the provider keeps a declined customer on its page to try another card (the
    payment waits), rather than sending them back to the shop (the payment is declined).
    """

    gateway: str
    pay_button: str = "Pay"
    cancel_button: str = "Cancel"
    currency: str = "USD"
    authorizes: bool = True
    declined_stays: bool = False

    def pay(self, page: Page, url: str, card: str) -> None:
        """Open the page at ``url``, type ``card`` as the card number, click pay.

        Returns once clicked: the page answers by sending the browser on (to the shop,
        a 3-D Secure page) or by showing itself again; the caller waits for what it
        expects with Playwright's ``expect``.
        """
        if page.url != url:
            page.goto(url)
        page.get_by_label("Card number").fill(card)
        page.get_by_role("button", name=self.pay_button, exact=True).click()

    def cancel(self, page: Page) -> None:
        """Leave the page open in ``page`` without paying."""
        page.get_by_role("button", name=self.cancel_button, exact=True).click()


HOSTED_PAGES: dict[str, HostedPage] = {
    "wooshpay": HostedPage(gateway="wooshpay", pay_button="Pay by card", declined_stays=True),
    "milkypay": HostedPage(gateway="milkypay"),
    # XPAY takes hryvnias only, and sells: there is no authorization to capture later.
    "xpay": HostedPage(gateway="xpay", cancel_button="Fail", currency="UAH", authorizes=False),
}


def pay_on_hosted_page(page: Page, gateway: str, url: str, card: str) -> None:
    """Pay on ``gateway``'s hosted page at ``url`` with ``card`` (see `HostedPage.pay`)."""
    HOSTED_PAGES[gateway].pay(page, url, card)
