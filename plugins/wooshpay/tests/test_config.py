"""WooshPayConfig: the schema, the rules across keys, and secrets kept out of sight."""

from __future__ import annotations

import attrs
import pytest
from paycore_wooshpay.config import WooshPayConfig
from paycore_wooshpay.gateway import WooshPayGateway

from paycore.errors import ConfigurationError
from paycore.gateways.webhooks import DEFAULT_TOLERANCE

TEST_KEY = "sk_test_SENTINEL_key_1"
LIVE_KEY = "sk_live_SENTINEL_key_3"
WEBHOOK_SECRET = "whsec_SENTINEL_secret_2"
OLD_WEBHOOK_SECRET = "whsec_SENTINEL_secret_old"


def problems_of(config: object) -> list[str]:
    with pytest.raises(ConfigurationError) as caught:
        WooshPayGateway.from_config(config)  # type: ignore[arg-type]
    text = str(caught.value)
    for secret in (TEST_KEY, LIVE_KEY, WEBHOOK_SECRET, OLD_WEBHOOK_SECRET):
        assert secret not in text
    return list(caught.value.problems)


def build(**config: object) -> WooshPayConfig:
    gateway = WooshPayGateway.from_config(config)
    assert isinstance(gateway.config, WooshPayConfig)
    return gateway.config


@pytest.mark.parametrize(
    ("key", "url", "live"),
    [
        (TEST_KEY, "https://apitest.wooshpay.com", False),
        (LIVE_KEY, "https://api.wooshpay.com", True),
    ],
)
def test_the_secret_keys_prefix_picks_the_host_when_no_mode_is_given(key, url, live):
    config = build(secret_key=key, webhook_secret=WEBHOOK_SECRET)

    assert (config.api_url, config.live, config.mode) == (url, live, None)


def test_a_mode_that_agrees_with_the_key_is_accepted():
    assert build(secret_key=LIVE_KEY, webhook_secret="w", mode="live").api_url == (
        "https://api.wooshpay.com"
    )


def test_a_base_url_replaces_the_host_whatever_the_key():
    config = build(secret_key=TEST_KEY, webhook_secret="w", base_url="http://127.0.0.1:8123/")

    assert config.api_url == "http://127.0.0.1:8123"


@pytest.mark.parametrize(
    ("key", "mode", "problem"),
    [
        (
            LIVE_KEY,
            "test",
            "mode: says test but secret_key is a live key (sk_live_…): "
            "use a test key, or mode live",
        ),
        (
            TEST_KEY,
            "live",
            "mode: says live but secret_key is a test key (sk_test_…): "
            "use a live key, or mode test",
        ),
    ],
)
def test_a_key_of_the_other_mode_is_refused_naming_the_keys_not_the_values(key, mode, problem):
    assert problems_of({"secret_key": key, "webhook_secret": "w", "mode": mode}) == [problem]


def test_mode_and_base_url_together_are_refused():
    config = {"secret_key": TEST_KEY, "webhook_secret": "w", "mode": "test", "base_url": "http://x"}

    assert problems_of(config) == [
        "(top level): give one of mode and base_url, not both (base_url replaces the host)"
    ]


def test_a_publishable_key_of_the_other_mode_is_refused():
    config = {"secret_key": TEST_KEY, "webhook_secret": "w", "publishable_key": "pk_live_abc"}

    assert problems_of(config) == [
        "publishable_key: is a live key but secret_key is a test key",
    ]


def test_every_problem_is_reported_at_once():
    config = {
        "secret_key": LIVE_KEY,
        "mode": "test",
        "webhook_tolerance": 0,
        "colour": "blue",
    }

    assert problems_of(config) == [
        "(top level): unknown key(s) 'colour'",
        "mode: says test but secret_key is a live key (sk_live_…): use a test key, or mode live",
        "webhook_secret: is required",
        "webhook_tolerance: must be at least 1",
    ]


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"webhook_secret": "w"}, "secret_key: is required"),
        ({"secret_key": "SENTINEL_no_prefix", "webhook_secret": "w"}, "secret_key: does not have"),
        ({"secret_key": "sk_test_x\n", "webhook_secret": "w"}, "secret_key: does not have"),
        ({"secret_key": TEST_KEY, "webhook_secret": ""}, "webhook_secret: must be at least 1"),
        ({"secret_key": TEST_KEY, "webhook_secret": []}, "webhook_secret: breaks the 'minItems'"),
        ({"secret_key": TEST_KEY, "webhook_secret": 7}, "webhook_secret: must be of type"),
        ({"secret_key": TEST_KEY, "webhook_secret": "w", "mode": "prod"}, "mode: must be one of"),
        ({"secret_key": TEST_KEY, "webhook_secret": "w", "base_url": "ftp://x"}, "base_url: does"),
    ],
)
def test_a_value_the_schema_refuses_is_named_by_its_key(config, problem):
    (reported,) = problems_of(config)
    assert reported.startswith(problem)


def test_a_config_that_is_not_a_table_is_refused():
    assert problems_of("sk_test_SENTINEL_key_1") == ["must be a table of settings, not str"]


def test_secrets_stay_out_of_the_repr_and_every_one_is_scrubbed():
    config = build(secret_key=TEST_KEY, webhook_secret=[WEBHOOK_SECRET, OLD_WEBHOOK_SECRET])

    assert config.webhook_secret == (WEBHOOK_SECRET, OLD_WEBHOOK_SECRET)
    for secret in (TEST_KEY, WEBHOOK_SECRET, OLD_WEBHOOK_SECRET):
        assert secret not in repr(config)
    assert set(config.secret_values()) == {TEST_KEY, WEBHOOK_SECRET, OLD_WEBHOOK_SECRET}


def test_a_config_built_directly_keeps_the_same_rules():
    with pytest.raises(ConfigurationError) as caught:
        WooshPayConfig(secret_key=LIVE_KEY, webhook_secret=(), mode="test")

    assert LIVE_KEY not in str(caught.value)
    assert sorted(caught.value.problems) == [
        "mode: says test but secret_key is a live key (sk_live_…): use a test key, or mode live",
        "webhook_secret: must be one or more non-empty secrets",
    ]


def test_the_schema_documents_the_webhook_tolerance_the_config_defaults_to():
    documented = WooshPayGateway.config_schema["properties"]["webhook_tolerance"]["default"]

    assert documented == attrs.fields(WooshPayConfig).webhook_tolerance.default == DEFAULT_TOLERANCE
    assert build(secret_key=TEST_KEY, webhook_secret="w").webhook_tolerance == 300
