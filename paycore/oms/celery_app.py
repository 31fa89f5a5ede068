"""The Celery app OMS workers and beat run, configured from the environment.

::

    PAYCORE_CONFIG=/etc/paycore.toml celery -A paycore.oms.celery_app worker -c 4
    PAYCORE_CONFIG=/etc/paycore.toml celery -A paycore.oms.celery_app beat

The broker and its options come from the ``PAYCORE_CELERY_*`` variables
(`paycore.oms.celery.CeleryConfig.from_env`); the database and gateways from the
settings file, read by each worker process when its first task arrives.
"""

from __future__ import annotations

from paycore.oms.celery import make_celery

__all__ = ["app"]

app = make_celery()
