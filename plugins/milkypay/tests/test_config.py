"""MilkyPayConfig: the schema, the rules across keys, and secrets kept out of sight."""

from __future__ import annotations

from typing import Any

import pytest
from paycore_milkypay.config import MilkyPayConfig
from paycore_milkypay.gateway import MilkyPayGateway, PaytoneGateway

from paycore.errors import ConfigurationError
from paycore.plugins import gateway_class

from .conftest import ACCOUNT, API_KEY, BASE_URL, CONFIG, PUBLIC_KEY, SECRET_KEY

LIVE_KEY = "pk_live_SENTINEL_public"
OLD_SECRET_KEY = "SENTINEL_secret_key_old"
SECRETS = (API_KEY, SECRET_KEY, OLD_SECRET_KEY)


def problems_of(config: object, gateway: type[MilkyPayGateway] = MilkyPayGateway) -> list[str]:
    with pytest.raises(ConfigurationError) as caught:
        gateway.from_config(config)  # type: ignore[arg-type]
    text = str(caught.value)
    for secret in SECRETS:
        assert secret not in text
    return list(caught.value.problems)


def build(**changes: Any) -> MilkyPayConfig:
    gateway = MilkyPayGateway.from_config({**CONFIG, **changes})
    assert isinstance(gateway.config, MilkyPayConfig)
    return gateway.config


def without(*keys: str, **changes: Any) -> dict[str, Any]:
    return {key: value for key, value in {**CONFIG, **changes}.items() if key not in keys}


# -- valid configs -------------------------------------------------------------------------


def test_a_test_key_puts_the_gateway_in_test_mode_by_default():
    config = build()

    assert (config.base_url, config.public_key, config.commerce_account_id) == (
        BASE_URL,
        PUBLIC_KEY,
        ACCOUNT,
    )
    assert config.test_mode is True
    assert config.secret_key == (SECRET_KEY,)
    assert config.locale is None


def test_a_live_key_puts_the_gateway_in_live_mode_by_default():
    assert build(public_key=LIVE_KEY).test_mode is False


@pytest.mark.parametrize(("key", "test_mode"), [(PUBLIC_KEY, True), (LIVE_KEY, False)])
def test_a_test_mode_that_agrees_with_the_key_is_accepted(key, test_mode):
    assert build(public_key=key, test_mode=test_mode).test_mode is test_mode


def test_a_trailing_slash_of_the_base_url_is_dropped():
    assert build(base_url="http://127.0.0.1:8123/").base_url == "http://127.0.0.1:8123"


def test_a_tenant_host_with_a_path_a_locale_and_timeouts_is_accepted():
    config = build(
        base_url="https://tenant.example/corefy", locale="uk", timeouts={"read": 20, "total": 40}
    )

    assert (config.base_url, config.locale) == ("https://tenant.example/corefy", "uk")
    assert (config.timeouts.read, config.timeouts.total) == (20, 40)


def test_secrets_stay_out_of_the_repr_and_every_one_is_scrubbed():
    config = build(secret_key=[SECRET_KEY, OLD_SECRET_KEY])

    assert config.secret_key == (SECRET_KEY, OLD_SECRET_KEY)
    for secret in SECRETS:
        assert secret not in repr(config)
    assert set(config.secret_values()) == set(SECRETS)
    assert set(MilkyPayGateway(config).secret_values()) == set(SECRETS)


# -- problems ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "test_mode", "problem"),
    [
        (
            LIVE_KEY,
            True,
            "test_mode: is true but public_key is a live key (pk_live_…): "
            "use a test key, or test_mode false",
        ),
        (
            PUBLIC_KEY,
            False,
            "test_mode: is false but public_key is a test key (pk_test_…): "
            "use a live key, or test_mode true",
        ),
    ],
)
def test_a_test_mode_the_key_contradicts_is_refused(key, test_mode, problem):
    assert problems_of({**CONFIG, "public_key": key, "test_mode": test_mode}) == [problem]


def test_a_live_key_over_plain_http_is_refused():
    config = {**CONFIG, "public_key": LIVE_KEY, "base_url": "http://pay.example"}

    assert problems_of(config) == [
        "base_url: must be https with a live public_key (credentials travel)"
    ]


def test_every_problem_is_reported_at_once_naming_keys_never_values():
    config = {
        "base_url": "ftp://pay.example",
        "public_key": LIVE_KEY,
        "commerce_account_id": "coma:1",
        "secret_key": [SECRET_KEY, SECRET_KEY],
        "test_mode": True,
        "locale": "de",
        "colour": "blue",
    }

    assert problems_of(config) == [
        "(top level): unknown key(s) 'colour'",
        "api_key: is required",
        "base_url: does not have the expected format",
        "commerce_account_id: does not have the expected format",
        "locale: must be one of 'en', 'uk', 'ru'",
        "secret_key: breaks the 'uniqueItems' rule of the schema",
        "test_mode: is true but public_key is a live key (pk_live_…): "
        "use a test key, or test_mode false",
    ]


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        (without("base_url"), "base_url: is required"),
        (without("public_key"), "public_key: is required"),
        (without("commerce_account_id"), "commerce_account_id: is required"),
        (without("api_key"), "api_key: is required"),
        (without("secret_key"), "secret_key: is required"),
        (without(public_key="SENTINEL_no_prefix"), "public_key: does not have"),
        (without(public_key="sk_test_secret"), "public_key: does not have"),
        (without(api_key=""), "api_key: does not have"),
        (without(api_key="SENTINEL api key"), "api_key: does not have"),
        (without(secret_key=""), "secret_key: must be at least 1"),
        (without(secret_key=[]), "secret_key: breaks the 'minItems'"),
        (without(secret_key=7), "secret_key: must be of type"),
        (without(test_mode="yes"), "test_mode: must be of type boolean"),
        (without(base_url="pay.example"), "base_url: does not have"),
    ],
)
def test_a_value_the_schema_refuses_is_named_by_its_key(config, problem):
    (reported,) = problems_of(config)
    assert reported.startswith(problem)


def test_a_config_that_is_not_a_table_is_refused():
    assert problems_of(PUBLIC_KEY) == ["must be a table of settings, not str"]


def test_a_config_built_directly_keeps_the_same_rules():
    with pytest.raises(ConfigurationError) as caught:
        MilkyPayConfig(
            base_url="http://pay.example",
            public_key=LIVE_KEY,
            commerce_account_id=ACCOUNT,
            api_key=API_KEY,
            secret_key=(),
            test_mode=True,
            locale="de",
        )

    for secret in SECRETS:
        assert secret not in str(caught.value)
    assert list(caught.value.problems) == [
        "base_url: must be https with a live public_key (credentials travel)",
        "locale: must be one of en, uk, ru",
        "secret_key: must be one or more non-empty secrets",
        "test_mode: is true but public_key is a live key (pk_live_…): "
        "use a test key, or test_mode false",
    ]


# -- Paytone -------------------------------------------------------------------------------

PAYTONE = {
    "base_url": "https://pay.paytone.example",
    "public_key": "pk_test_paytone",
    "commerce_account_id": "coma_paytone",
    "api_key": API_KEY,
    "secret_key": SECRET_KEY,
}


def test_paytone_builds_from_its_own_config():
    gateway = gateway_class("paytone").from_config(PAYTONE)

    assert isinstance(gateway, PaytoneGateway)
    assert (gateway.name, gateway.display_name) == ("paytone", "Paytone")
    assert isinstance(gateway.config, MilkyPayConfig)
    assert gateway.config.base_url == "https://pay.paytone.example"
    assert gateway.config.test_mode is True
    assert gateway.capabilities is MilkyPayGateway.capabilities


def test_paytones_config_problems_name_paytone():
    with pytest.raises(ConfigurationError) as caught:
        PaytoneGateway.from_config({**PAYTONE, "test_mode": False})

    assert caught.value.subject == "gateway 'paytone' config"
    assert problems_of({**PAYTONE, "test_mode": False}, PaytoneGateway) == [
        "test_mode: is false but public_key is a test key (pk_test_…): "
        "use a live key, or test_mode true"
    ]
