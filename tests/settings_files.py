"""A ``paycore.toml`` for tests that run the ``paycore`` command: a ledger and, when
given, the dummy gateway's config (as its sandbox's ``gateway_config`` returns it)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def write_settings(path: Path, database_url: str, gateway: Mapping[str, Any] | None = None) -> Path:
    """Write the settings file at ``path`` and return it."""
    text = f'database_url = "{database_url}"\n'
    if gateway is not None:
        text += textwrap.dedent(
            f"""
            [gateways.dummy]
            base_url = "{gateway["base_url"]}"
            api_key = "{gateway["api_key"]}"
            webhook_secret = "{gateway["webhook_secret"]}"
            """
        )
    path.write_text(text, encoding="utf-8")
    return path
