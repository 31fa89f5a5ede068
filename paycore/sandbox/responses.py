"""The JSON answers sandboxes give: amounts written exactly.

A provider that writes money as decimal major units (``"amount": 100.55``) keeps it in
its sandbox as `Decimal`; `ExactJSONResponse` writes such values as the exact numbers
they are (with `paycore.gateways.json_codec.encode_json`) and refuses a float, so no
answer can carry an amount a float has rounded.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from paycore.gateways.json_codec import encode_json

__all__ = ["ExactJSONResponse"]


class ExactJSONResponse(JSONResponse):
    """A JSON answer whose `Decimal` values are written exactly; a float is refused."""

    def render(self, content: Any) -> bytes:
        return encode_json(content)
