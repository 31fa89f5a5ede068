"""The Celery app OMS workers and beat run, configured from the settings.

::

    PAYCORE_CONFIG=/etc/paycore.toml celery -A paycore.oms.celery_app worker -c 4
    PAYCORE_CONFIG=/etc/paycore.toml celery -A paycore.oms.celery_app beat

The settings file (``PAYCORE_CONFIG``, else ``paycore.toml`` here) names the
database, the gateways and, in its ``[celery]`` table, the broker and its options;
each ``PAYCORE_CELERY_*`` variable overrides its key
(`paycore.oms.celery.CeleryConfig.from_settings`). A bad file stops the worker at once.
"""

from __future__ import annotations

from paycore.config import load_settings
from paycore.oms.celery import make_celery

__all__ = ["app"]

app = make_celery(load_settings())
