"""Where the OMS's Celery tasks go: the settings' [celery] table, each key overridden by its
PAYCORE_CELERY_* variable; every problem named (no broker needed)."""

from __future__ import annotations

import pytest

from paycore.config import Settings
from paycore.errors import ConfigurationError
from paycore.oms.celery import CeleryConfig


def test_the_table_sets_the_config_and_a_variable_overrides_its_key() -> None:
    settings = Settings(
        celery={"broker_url": "redis://cache:6379/2", "queue": "oms", "max_retries": 3}
    )

    from_file = CeleryConfig.from_settings(settings, env={})
    overridden = CeleryConfig.from_settings(
        settings, env={"PAYCORE_CELERY_QUEUE": "oms-eu", "PAYCORE_CELERY_MAX_RETRIES": "1"}
    )

    assert (from_file.broker_url, from_file.queue, from_file.max_retries) == (
        "redis://cache:6379/2",
        "oms",
        3,
    )
    assert (overridden.broker_url, overridden.queue, overridden.max_retries) == (
        "redis://cache:6379/2",
        "oms-eu",
        1,
    )
    assert CeleryConfig.from_settings(Settings(), env={}) == CeleryConfig()


def test_a_bad_value_in_the_table_or_a_variable_is_named() -> None:
    with pytest.raises(ConfigurationError, match="celery: broker_url must be a URL"):
        CeleryConfig.from_settings(Settings(celery={"broker_url": "nowhere"}), env={})
    with pytest.raises(ConfigurationError, match="PAYCORE_CELERY_VISIBILITY_TIMEOUT"):
        CeleryConfig.from_settings(Settings(), env={"PAYCORE_CELERY_VISIBILITY_TIMEOUT": "soon"})
