"""A customer's browser, as far as sandboxes' pages need one: open a page, submit its form.

Sandboxes serve plain HTML pages (`paycore.sandbox.pages`): a hosted checkout, a 3-D
Secure challenge, a wallet's approval. `submit_form` does what a person does there,
over HTTP: it reads the page's single form, fills in the fields given, and clicks a
button. Tests, the plugin contract and the demo use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import httpx
from attrs import define

__all__ = ["PageError", "submit_form"]


class PageError(AssertionError):
    """A page was not what a customer could use: no form, no such button, an error answer.

    An `AssertionError`, so a test driving a sandbox's page fails with the reason.
    """


@define
class _Select:
    """A select being read: its name and the value a browser would send."""

    name: str
    value: str | None = None  # None until an option is seen


class _Forms(HTMLParser):
    """Collects each form's method, action and fields (inputs, selects and buttons).

    A select sends its selected option's value, or its first option's as a browser
    does; an option without a ``value`` attribute has its text as value.
    """

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._select: _Select | None = None
        self._option_text: list[str] | None = None  # an option without a value, read
        self._option_selected = False

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
        elif tag == "select" and self.forms:
            self._select = _Select(attributes.get("name", ""))
        elif tag == "option" and self._select is not None:
            self._end_option()  # an option's end tag may be left out
            selected = "selected" in attributes
            if "value" in attributes:
                self._choose(attributes["value"], selected)
            else:
                self._option_text, self._option_selected = [], selected

    def handle_data(self, data: str) -> None:
        if self._option_text is not None:
            self._option_text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "option":
            self._end_option()
        elif tag == "select" and self._select is not None:
            self._end_option()
            if self._select.name:
                self.forms[-1]["fields"].append((self._select.name, self._select.value or ""))
            self._select = None

    def _end_option(self) -> None:
        if self._option_text is not None:
            self._choose(" ".join("".join(self._option_text).split()), self._option_selected)
            self._option_text = None

    def _choose(self, value: str, selected: bool) -> None:
        assert self._select is not None
        if selected or self._select.value is None:  # the last selected one wins
            self._select.value = value


def submit_form(
    http: httpx.Client, url: str, button: str, fields: Mapping[str, str] | None = None
) -> httpx.Response:
    """Open ``url`` like a browser, fill in ``fields``, click the button valued ``button``.

    The page must hold exactly one form. Its named fields (hidden ones included, with
    the values the page gave them, or ``fields``' where given) are sent with the
    button's own name and value, to the form's action (relative to the page). Raises
    `PageError` saying what the page lacked or how the submission was answered.
    """
    page = http.get(url, follow_redirects=True)
    if not page.is_success:
        raise PageError(f"GET {url} answered {page.status_code}, not a page with a form")
    parser = _Forms()
    parser.feed(page.text)
    if len(parser.forms) != 1:
        raise PageError(f"the page at {url} has {len(parser.forms)} forms, not one")
    (form,) = parser.forms
    names = [name for name, value in form["buttons"] if value == button]
    if not names:
        raise PageError(
            f"the form at {url} has no submit button whose value is {button!r} "
            f"(it has {[value for _, value in form['buttons']]})"
        )
    data = dict(form["fields"])
    if missing := sorted(set(fields or {}) - set(data)):
        raise PageError(f"the form at {url} has no field named {', '.join(missing)}")
    data.update(fields or {})
    if names[0]:
        data[names[0]] = button
    target = urljoin(str(page.url), form["action"] or str(page.url))
    if form["method"] == "GET":
        answer = http.get(target, params=data)
    else:
        answer = http.post(target, data=data)
    if answer.status_code >= 400:
        raise PageError(f"{form['method']} {target} answered {answer.status_code}")
    return answer
