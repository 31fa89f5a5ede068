"""A forged signature header with a huge timestamp is a bad signature (400), not our failure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from paycore.gateways.dummy import SIGNATURE_HEADER
from tests.web.support import WebApp


def test_a_huge_signature_timestamp_is_refused_as_a_bad_signature(
    web_app: Callable[..., WebApp], http: httpx.Client, web_log: Callable[[], list[dict[str, Any]]]
) -> None:
    app = web_app(deliver=False)
    # No secret needed: anyone on the internet can send this.
    header = "t=" + "9" * 400 + ",v1=" + "0" * 64

    answer = http.post(app.webhook_url, content=b"{}", headers={SIGNATURE_HEADER: header})

    (line,) = web_log()
    assert (answer.status_code, line["reason"], line["level"], line["traceback"]) == (
        400,
        "bad_signature",
        "WARNING",
        False,
    ), (answer.status_code, line)
