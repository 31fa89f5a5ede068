"""What the gateway contract suite (`paycore.testing.contract`) is built from.

- `ProviderTotals`: what a sandbox says a payment has captured and refunded;
- `needs`: marks a contract test with the capabilities and test methods it needs,
  so it is skipped, with the reason, for a gateway that lacks them;
- `submit_form`: a browser's click on one button of a plain HTML page;
- `ledger_text`: every row of every table of a ledger database, as text;
- `ExchangeRecorder`: a hook implementation keeping every scrubbed transcript.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urljoin

import httpx
from attrs import field, frozen

from paycore.hookspecs import hookimpl

if TYPE_CHECKING:
    from paycore.gateways.base import Operation
    from paycore.gateways.scrub import Transcript
    from paycore.transactions.store import Store

__all__ = [
    "ExchangeRecorder",
    "ProviderTotals",
    "Requirement",
    "ledger_text",
    "needs",
    "requirement_of",
    "submit_form",
]

F = TypeVar("F", bound=Callable[..., Any])

_REQUIREMENT = "_paycore_contract_needs"


@frozen(kw_only=True)
class ProviderTotals:
    """What the provider's sandbox says one payment has captured and refunded.

    Amounts are integers of minor units in the contract's currency. ``captures`` and
    ``refunds`` count the successful operations when the sandbox can tell (None when
    it cannot): they show that a capture retried after a lost answer happened once.
    """

    captured: int
    refunded: int
    captures: int | None = None
    refunds: int | None = None


@frozen
class Requirement:
    """What a contract test needs from the gateway and from the contract subclass.

    ``operations``: every one must be declared. ``any_of``: at least one of them.
    ``flags``: `Capabilities` attributes and the value they must have (``False``
    means the test is about gateways *without* that capability). ``methods``:
    contract attributes (`PaymentMethod` fields such as ``challenge``) that must be set.
    """

    operations: tuple[Operation, ...] = ()
    any_of: tuple[Operation, ...] = ()
    flags: Mapping[str, bool] = field(factory=dict)
    methods: tuple[str, ...] = ()


def needs(
    *operations: Operation,
    any_of: tuple[Operation, ...] = (),
    methods: tuple[str, ...] = (),
    **flags: bool,
) -> Callable[[F], F]:
    """Mark a contract test with its `Requirement` (read by the contract's autouse fixture)."""
    requirement = Requirement(operations, any_of, flags, methods)

    def mark(test: F) -> F:
        setattr(test, _REQUIREMENT, requirement)
        return test

    return mark


def requirement_of(test: Callable[..., Any]) -> Requirement | None:
    requirement = getattr(test, _REQUIREMENT, None)
    return requirement if isinstance(requirement, Requirement) else None


# -- the customer's browser --------------------------------------------------------------


class _Forms(HTMLParser):
    """Collects each form's method, action and fields (inputs and buttons)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(
                {
                    "method": attributes.get("method", "get").upper(),
                    "action": attributes.get("action", ""),
                    "fields": [],
                    "buttons": [],
                }
            )
        elif tag in ("input", "button") and self.forms:
            kind = attributes.get("type", "submit" if tag == "button" else "text").lower()
            entry = (attributes.get("name", ""), attributes.get("value", ""))
            if kind == "submit":
                self.forms[-1]["buttons"].append(entry)
            elif entry[0]:
                self.forms[-1]["fields"].append(entry)


def submit_form(
    http: httpx.Client, url: str, button: str, fields: Mapping[str, str] | None = None
) -> httpx.Response:
    """Open ``url`` like a browser, fill in ``fields``, click the button valued ``button``.

    The page must hold exactly one form. Its named fields (hidden ones included, with
    the values the page gave them, or ``fields``' where given) are sent with the
    button's own name and value, to the form's action (relative to the page). Raises
    `AssertionError` saying what the page lacked.
    """
    page = http.get(url, follow_redirects=True)
    assert page.is_success, f"GET {url} answered {page.status_code}, not a page with a form"
    parser = _Forms()
    parser.feed(page.text)
    assert len(parser.forms) == 1, (
        f"the page at {url} has {len(parser.forms)} forms, not one; override "
        "complete_action (or pay_checkout) to drive it"
    )
    (form,) = parser.forms
    names = [name for name, value in form["buttons"] if value == button]
    assert names, (
        f"the form at {url} has no submit button whose value is {button!r} "
        f"(it has {[value for _, value in form['buttons']]})"
    )
    data = dict(form["fields"])
    if missing := sorted(set(fields or {}) - set(data)):
        raise AssertionError(f"the form at {url} has no field named {', '.join(missing)}")
    data.update(fields or {})
    if names[0]:
        data[names[0]] = button
    target = urljoin(str(page.url), form["action"] or str(page.url))
    if form["method"] == "GET":
        answer = http.get(target, params=data)
    else:
        answer = http.post(target, data=data)
    assert answer.status_code < 400, f"{form['method']} {target} answered {answer.status_code}"
    return answer


# -- what came out -----------------------------------------------------------------------


def ledger_text(store: Store) -> str:
    """Every row of every table of ``store``'s database, one line each, as text."""
    import sqlalchemy as sa

    tables = sa.MetaData()
    tables.reflect(store.engine)
    lines = []
    with store.engine.connect() as connection:
        for table in tables.sorted_tables:
            for row in connection.execute(table.select()):
                lines.append(f"{table.name}: {tuple(row)!r}")
    return "\n".join(lines)


class ExchangeRecorder:
    """A ``paycore_gateway_exchange`` implementation keeping every transcript it gets."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._transcripts: list[Transcript] = []

    @hookimpl
    def paycore_gateway_exchange(
        self, gateway: str, operation: str, transcript: Transcript
    ) -> None:
        with self._lock:
            self._transcripts.append(transcript)

    @property
    def transcripts(self) -> tuple[Transcript, ...]:
        with self._lock:
            return tuple(self._transcripts)
