"""paycore's web app: provider webhooks, customers back from hosted pages, health.

`create_app` builds it (a Starlette app) from the settings; see `paycore.web.app`.
"""

from __future__ import annotations

from paycore.web.app import create_app

__all__ = ["create_app"]
