"""Plain HTML pages for the customer's side of a sandbox (3-D Secure, hosted payment).

No scripts and no styling a browser needs to fetch: a heading, a few lines, and a
form whose buttons post one field, after the text inputs it may have (a card number
on a hosted payment page). Tests submit the forms with httpx.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse

__all__ = ["form_page", "message_page", "read_form"]

_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{title}</title></head>
<body>
<h1>{title}</h1>
{body}
</body>
</html>
"""

# A form body is a few short fields; anything larger is not a sandbox page's.
_MAX_FORM_BYTES = 16 * 1024


def message_page(title: str, lines: Sequence[str], *, status_code: int = 200) -> HTMLResponse:
    """A page that only says something."""
    body = "\n".join(f"<p>{escape(line)}</p>" for line in lines)
    return HTMLResponse(_PAGE.format(title=escape(title), body=body), status_code=status_code)


def form_page(
    title: str,
    lines: Sequence[str],
    *,
    action: str,
    field: str,
    buttons: Sequence[tuple[str, str]],
    inputs: Sequence[tuple[str, str]] = (),
    status_code: int = 200,
) -> HTMLResponse:
    """A page with one form posting to ``action``; each button is (value, label) of ``field``.

    ``inputs`` are (name, label) of empty text inputs the form posts too. What is typed
    in them is never echoed back: a page shown again after a refusal starts empty.
    """
    paragraphs = "\n".join(f"<p>{escape(line)}</p>" for line in lines)
    input_html = "".join(
        f'  <p><label>{escape(label)} <input type="text" name="{escape(name)}" '
        f'autocomplete="off"></label></p>\n'
        for name, label in inputs
    )
    button_html = "\n".join(
        f'  <button type="submit" name="{escape(field)}" value="{escape(value)}">'
        f"{escape(label)}</button>"
        for value, label in buttons
    )
    form = f'<form method="post" action="{escape(action)}">\n{input_html}{button_html}\n</form>'
    return HTMLResponse(
        _PAGE.format(title=escape(title), body=f"{paragraphs}\n{form}"), status_code=status_code
    )


async def read_form(request: Request) -> dict[str, str]:
    """The fields of a posted ``application/x-www-form-urlencoded`` form (last value wins)."""
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES:
        return {}
    return dict(parse_qsl(body.decode("utf-8", "replace")))
