"""The customer's side of the MilkyPay sandbox: the hosted payment page (HPP), its 3-D
Secure page, the payment link and the payment widget's script. Plain HTML forms a
browser (or `paycore.sandbox.browser.submit_form`) clicks through, without keys.

- ``GET /hpp/?cpi=cpi_…``: the invoice's page: a ``card_number`` input, a ``service``
  select when the invoice names no service, buttons ``action=pay|cancel``; the form
  posts back to the same URL. Paid (or held): 303 to ``return_urls.success`` (else
  ``return_url``); declined or canceled: 303 to ``return_urls.fail`` (else
  ``return_url``); without a URL, a page saying so. A card number the page refuses
  shows the form again (422); the number is never shown or kept.
- ``GET|POST /hpp/3ds/{cpi}``: approve or decline (``action=approve|decline``).
- ``GET /hpp/?public_key=…&amount=…&currency=…``: the payment link; the first visit
  creates the invoice (flow charge, source ``hpp``), a visit with a ``reference_id``
  already used shows that invoice again. A bad link is a 400 page.
- ``GET /widget/payment-widget.js``: reads ``window.HPPConfig`` (or
  ``payment_widget.init({...})``) and opens the link in an iframe or by redirect.
"""

from __future__ import annotations

import re
from decimal import Decimal
from html import escape
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from paycore.money import Money
from paycore.sandbox.base import SandboxError
from paycore.sandbox.forms import FormError, parse_form
from paycore.sandbox.pages import form_page, message_page, read_form
from paycore_milkypay.sandbox_documents import Invoice
from paycore_milkypay.sandbox_requests import Problems, Reader, invoice_spec, request_base_url
from paycore_milkypay.sandbox_services import Refusal, Service, card_outcome, services_for

if TYPE_CHECKING:
    from paycore_milkypay.sandbox import MilkyPaySandbox

__all__ = ["WIDGET_SCRIPT", "HostedPages"]

_DECIMAL = re.compile(r"-?\d{1,20}(\.\d{1,20})?")

WIDGET_SCRIPT = """\
(function () {
  "use strict";
  var KEYS = ["public_key", "amount", "currency", "reference_id", "description",
              "return_url", "locale", "service"];
  var OBJECTS = ["metadata", "service_fields", "customer"];
  function linkOf(config) {
    var query = [];
    KEYS.forEach(function (key) {
      if (config[key] !== undefined && config[key] !== null) {
        query.push(encodeURIComponent(key) + "=" + encodeURIComponent(config[key]));
      }
    });
    OBJECTS.forEach(function (name) {
      var object = config[name] || {};
      Object.keys(object).forEach(function (key) {
        query.push(encodeURIComponent(name + "[" + key + "]") + "=" +
                   encodeURIComponent(object[key]));
      });
    });
    return (config.base_url || "/hpp/") + "?" + query.join("&");
  }
  function init(config) {
    var url = linkOf(config);
    if (config.target === "redirect") {
      window.location.assign(url);
      return;
    }
    var host = document.getElementById(config.selector_id || "payment_widget");
    if (!host) {
      return;
    }
    var frame = document.createElement("iframe");
    frame.id = config.frame_id || "payment_widget_frame";
    frame.src = url;
    frame.style.border = "0";
    frame.style.width = "100%";
    frame.style.height = "640px";
    host.appendChild(frame);
  }
  window.payment_widget = {init: init};
  if (window.HPPConfig) {
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", function () { init(window.HPPConfig); });
    } else {
      init(window.HPPConfig);
    }
  }
})();
"""


class HostedPages:
    """The pages, over one sandbox (its public key and state)."""

    def __init__(self, sandbox: MilkyPaySandbox) -> None:
        self.sandbox = sandbox
        self.state = sandbox.state
        self.title = f"{sandbox.display_name} checkout"

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/hpp/", self.show, methods=["GET"]),
            Route("/hpp/", self.submit, methods=["POST"]),
            Route("/hpp/3ds/{id}", self.show_challenge, methods=["GET"]),
            Route("/hpp/3ds/{id}", self.answer_challenge, methods=["POST"]),
            Route("/widget/payment-widget.js", self.widget, methods=["GET"]),
        ]

    # -- the hosted page -------------------------------------------------------------------

    async def show(self, request: Request) -> Response:
        if "cpi" in request.query_params:
            invoice = self._invoice(request.query_params["cpi"])
            return self._page(invoice) if invoice else self._missing()
        if "public_key" in request.query_params:
            return self._link(request)
        return message_page(
            self.title, ["Open this page with ?cpi=… or a payment link."], status_code=400
        )

    async def submit(self, request: Request) -> Response:
        form = await read_form(request)
        invoice = self._invoice(request.query_params.get("cpi", ""))
        if invoice is None:
            return self._missing()
        if not invoice.payable:
            return self._page(invoice, status_code=409)
        action = form.get("action")
        if action == "cancel":
            try:
                self.state.terminate(invoice.id)
            except SandboxError as error:
                return message_page(self.title, [error.message], status_code=409)
            return self._back(invoice, paid=False, said="You canceled the payment.")
        if action != "pay":
            return self._page(invoice, notice="Choose Pay or Cancel.", status_code=400)
        offered = {service.code for service in self._services(invoice)}
        service = (
            invoice.service or form.get("service") or f"payment_card_{invoice.currency.lower()}_hpp"
        )
        if service not in offered:
            return self._page(invoice, notice="Choose a payment service.", status_code=422)
        try:
            outcome = card_outcome(form.get("card_number", ""))
        except Refusal as refusal:
            return self._page(invoice, notice=refusal.detail, status_code=422)
        try:
            invoice = self.state.pay(invoice.id, service=service, outcome=outcome)
        except SandboxError as error:
            return message_page(self.title, [error.message], status_code=409)
        if invoice.challenged:
            return RedirectResponse(f"/hpp/3ds/{invoice.id}", status_code=303)
        return self._result(invoice)

    # -- 3-D Secure ------------------------------------------------------------------------

    async def show_challenge(self, request: Request) -> Response:
        invoice = self._invoice(request.path_params["id"])
        if invoice is None:
            return self._missing()
        if not invoice.challenged:
            return message_page("3-D Secure", [f"This payment is {invoice.status}."])
        return form_page(
            "3-D Secure",
            [f"{self.sandbox.display_name} sandbox: approve the payment of {_money(invoice)}?"],
            action=f"/hpp/3ds/{invoice.id}",
            field="action",
            buttons=[("approve", "Approve"), ("decline", "Decline")],
        )

    async def answer_challenge(self, request: Request) -> Response:
        action = (await read_form(request)).get("action")
        invoice = self._invoice(request.path_params["id"])
        if invoice is None:
            return self._missing()
        if action not in ("approve", "decline"):
            return message_page("3-D Secure", ["Choose Approve or Decline."], status_code=400)
        try:
            invoice = self.state.authenticate(invoice.id, approved=action == "approve")
        except SandboxError as error:
            return message_page("3-D Secure", [error.message], status_code=409)
        return self._result(invoice)

    # -- the payment link and the widget ---------------------------------------------------

    def _link(self, request: Request) -> Response:
        title = "Payment link"
        try:
            query = parse_form(request.url.query)
        except FormError as error:
            return message_page(title, [f"The link is malformed: {error}"], status_code=400)
        if not self.sandbox.public_key_matches(query.pop("public_key", None)):
            return message_page(title, ["The link's public_key is unknown."], status_code=400)
        if not self.sandbox.public_creation:
            return message_page(
                title, ["This account forbids public payment links."], status_code=403
            )
        query.pop("display", None)  # how the page looks: the sandbox has one look
        options = query.pop("options", None)
        if isinstance(options, dict) and isinstance(options.get("return_url"), str):
            query.setdefault("return_url", options["return_url"])
        amount, expires = query.get("amount"), query.get("expires")
        if isinstance(amount, str) and _DECIMAL.fullmatch(amount):
            query["amount"] = Decimal(amount)
        if isinstance(expires, str) and expires.isascii() and expires.isdigit():
            query["expires"] = int(expires)
        query.pop("flow", None)  # a link charges at once
        spec, problems = invoice_spec(
            Reader(query, Problems(), ""), now=self.state.now(), public=True
        )
        if spec is None:
            details = [f"{p['pointer'] or 'link'}: {p['detail']}" for p in problems.items]
            return message_page(title, ["The link is not valid.", *details], status_code=400)
        try:
            invoice = self.state.link(spec, base_url=request_base_url(request))
        except SandboxError as error:
            return message_page(title, [error.message], status_code=400)
        return self._page(invoice)

    async def widget(self, request: Request) -> Response:
        return Response(WIDGET_SCRIPT, media_type="application/javascript")

    # -- shared ----------------------------------------------------------------------------

    def _invoice(self, cpi: str) -> Invoice | None:
        try:
            return self.state.invoice(cpi)
        except SandboxError:
            return None

    def _missing(self) -> Response:
        return message_page(self.title, ["There is no such payment invoice."], status_code=404)

    def _services(self, invoice: Invoice) -> list[Service]:
        amount = Money(invoice.amount, invoice.currency)
        services = services_for(invoice.currency, amount)
        return [s for s in services if s.on_hosted_page and invoice.service in (None, s.code)]

    def _page(
        self, invoice: Invoice, *, notice: str | None = None, status_code: int = 200
    ) -> Response:
        if invoice.challenged:
            return message_page(
                self.title, ["This payment waits for 3-D Secure."], status_code=status_code
            )
        if not invoice.payable:
            return message_page(
                self.title, [f"This payment invoice is {invoice.status}."], status_code=status_code
            )
        lines = [
            f"{self.sandbox.display_name} sandbox checkout {invoice.id}",
            f"Amount: {_money(invoice)}",
        ]
        if invoice.description:
            lines.append(invoice.description)
        services = self._services(invoice)
        if not services:
            lines.append("No payment service accepts this amount; you may cancel.")
        if notice:
            lines.append(notice)
        return _pay_form(
            self.title,
            lines,
            action=f"/hpp/?cpi={invoice.id}",
            services=[] if invoice.service else services,
            card=bool(services),
            status_code=status_code,
        )

    def _result(self, invoice: Invoice) -> Response:
        paid = invoice.status == "processed" or invoice.held
        said = (
            "Thank you: the payment is done."
            if paid
            else f"The payment failed ({invoice.resolution})."
        )
        return self._back(invoice, paid=paid, said=said)

    def _back(self, invoice: Invoice, *, paid: bool, said: str) -> Response:
        """To the merchant's success (or fail) URL; a page saying ``said`` without one."""
        urls = invoice.return_urls or {}
        url = urls.get("success" if paid else "fail") or invoice.return_url
        if url:
            return RedirectResponse(url, status_code=303)
        return message_page(self.title, [said, "You may close this page."])


def _money(invoice: Invoice) -> Money:
    return Money(invoice.amount, invoice.currency)


def _pay_form(
    title: str,
    lines: list[str],
    *,
    action: str,
    services: list[Service],
    card: bool,
    status_code: int,
) -> HTMLResponse:
    """The hosted page's form (`paycore.sandbox.pages.form_page`'s look, with a select)."""
    paragraphs = "\n".join(f"<p>{escape(line)}</p>" for line in lines)
    fields = ""
    if services:
        options = "".join(
            f'<option value="{escape(s.code)}"{" selected" if not i else ""}>'
            f"{escape(s.name)}</option>"
            for i, s in enumerate(services)
        )
        fields += f'  <p><label>Pay with <select name="service">{options}</select></label></p>\n'
    if card:
        fields += (
            '  <p><label>Card number <input type="text" name="card_number" '
            'autocomplete="off"></label></p>\n'
        )
    buttons = [("pay", "Pay")] if card else []
    button_html = "\n".join(
        f'  <button type="submit" name="action" value="{value}">{label}</button>'
        for value, label in [*buttons, ("cancel", "Cancel")]
    )
    form = f'<form method="post" action="{escape(action)}">\n{fields}{button_html}\n</form>'
    body = f"{paragraphs}\n{form}"
    page = (
        '<!doctype html>\n<html lang="en">\n<head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head>\n<body>\n<h1>{escape(title)}</h1>\n{body}\n</body>\n</html>\n"
    )
    return HTMLResponse(page, status_code=status_code)
