"""XpayConfig: the schema, the keys loaded and checked, the rules across settings, and
secrets kept out of sight."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from paycore_xpay.config import XpayConfig
from paycore_xpay.gateway import XpayGateway
from paycore_xpay.keys import generate_private_key, private_pem, public_pem

from paycore.errors import ConfigurationError

from .conftest import BASE_URL, PARTNER_TOKEN, config, keys


@cache
def ec_private_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@cache
def ec_public_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@cache
def small_key() -> Any:
    return generate_private_key(1024)


def pkcs1(key: Any) -> tuple[str, str]:
    """A key pair's PEM in PKCS#1 (``BEGIN RSA PRIVATE KEY`` / ``RSA PUBLIC KEY``)."""
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
        .decode()
    )
    return private, public


def body_line(pem: str) -> str:
    """A line of a PEM's base64 body: what a message quoting the key would show."""
    return pem.splitlines()[1]


def problems_of(mapping: object, *quoted: str) -> list[str]:
    """The problems ``mapping`` is refused for; none of ``quoted`` (nor a secret) in them."""
    with pytest.raises(ConfigurationError) as caught:
        XpayGateway.from_config(mapping)  # type: ignore[arg-type]
    text = str(caught.value)
    for secret in (PARTNER_TOKEN, body_line(keys().partner_pem), *quoted):
        assert secret not in text
    assert caught.value.subject == "gateway 'xpay' config"
    return list(caught.value.problems)


def build(**changes: Any) -> XpayConfig:
    gateway = XpayGateway.from_config(config(**changes))
    assert isinstance(gateway.config, XpayConfig)
    return gateway.config


def without(*names: str, **changes: Any) -> dict[str, Any]:
    return {key: value for key, value in config(**changes).items() if key not in names}


# -- valid configs -------------------------------------------------------------------------


def test_a_config_with_the_required_settings_takes_the_defaults():
    settings = without("terminal_id", "base_url")

    gateway = XpayGateway.from_config(settings)

    config_ = gateway.config
    assert isinstance(config_, XpayConfig)
    assert (config_.terminal_id, config_.locale, config_.page_ttl) == ("1", "uk", 15)
    assert (config_.payment_methods, config_.callback_url) == (("card",), None)
    assert config_.url == "https://stage-papi.xpay.com.ua:488/xpay"
    assert config_.partner_key.private_numbers() == keys().partner.private_numbers()
    assert config_.xpay_key.public_numbers() == keys().xpay.public_key().public_numbers()


def test_live_mode_posts_to_xpays_live_endpoint():
    config_ = XpayGateway.from_config(without("base_url", mode="live")).config

    assert isinstance(config_, XpayConfig)
    assert config_.live
    assert config_.url == "https://papi.xpaydirect.com/xpay"


@pytest.mark.parametrize(
    ("mode", "base_url"),
    [("test", "http://127.0.0.1:8123/xpay/"), ("live", "https://xpay.example/xpay")],
)
def test_a_base_url_replaces_the_modes_endpoint(mode, base_url):
    assert build(mode=mode, base_url=base_url).url == base_url.rstrip("/")


def test_every_optional_setting_is_taken():
    config_ = build(
        terminal_id="T-01",
        locale="en",
        callback_url="https://shop.example/xpay?site=2",
        page_ttl=1440,
        payment_methods=["google_pay", "card", "apple_pay"],
        timeouts={"read": 20, "total": 40},
    )

    assert (config_.terminal_id, config_.locale, config_.page_ttl) == ("T-01", "en", 1440)
    assert config_.callback_url == "https://shop.example/xpay?site=2"
    assert config_.payment_methods == ("google_pay", "card", "apple_pay")
    assert (config_.timeouts.read, config_.timeouts.total) == (20, 40)


def test_keys_are_read_from_pem_files(tmp_path):
    partner = tmp_path / "partner.pem"
    partner.write_text(keys().partner_pem)
    xpay = tmp_path / "xpay.pub.pem"
    xpay.write_text(keys().xpay_public_pem)

    config_ = build(partner_private_key=str(partner), xpay_public_key=str(xpay))

    assert config_.partner_key.private_numbers() == keys().partner.private_numbers()
    assert config_.xpay_key.public_numbers() == keys().xpay.public_key().public_numbers()
    assert set(config_.secret_values()) == {PARTNER_TOKEN, str(partner), keys().partner_pem}


def test_pkcs1_pem_is_read_too():
    private, public = pkcs1(keys().partner)
    _, xpay_public = pkcs1(keys().xpay)

    config_ = build(partner_private_key=private, xpay_public_key=xpay_public)

    assert config_.partner_key.private_numbers() == keys().partner.private_numbers()
    assert public.startswith("-----BEGIN RSA PUBLIC KEY-----")


def test_secrets_stay_out_of_the_repr_and_are_scrubbed():
    config_ = build()

    text = repr(config_)
    for secret in (PARTNER_TOKEN, body_line(keys().partner_pem), "BEGIN"):
        assert secret not in text
    assert set(config_.secret_values()) == {PARTNER_TOKEN, keys().partner_pem}
    assert set(XpayGateway(config_).secret_values()) == {PARTNER_TOKEN, keys().partner_pem}


# -- the keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "pem", "problem"),
    [
        ("partner_private_key", ec_private_pem, "is an elliptic-curve key, not an RSA key"),
        ("xpay_public_key", ec_public_pem, "is an elliptic-curve key, not an RSA key"),
        (
            "partner_private_key",
            lambda: private_pem(small_key()),
            "is a 1024-bit RSA key; XPAY's keys are 2048 bits or more",
        ),
        (
            "xpay_public_key",
            lambda: public_pem(small_key().public_key()),
            "is a 1024-bit RSA key; XPAY's keys are 2048 bits or more",
        ),
        (
            "partner_private_key",
            lambda: "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
            "is not an unencrypted PEM private key",
        ),
        (
            "xpay_public_key",
            lambda: "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n",
            "is not a PEM public key",
        ),
        (
            "partner_private_key",
            lambda: keys().xpay_public_pem,
            "is not an unencrypted PEM private key",
        ),
        ("xpay_public_key", lambda: keys().partner_pem, "is not a PEM public key"),
    ],
    ids=[
        "ec-private",
        "ec-public",
        "small-private",
        "small-public",
        "garbage-private",
        "garbage-public",
        "public-as-private",
        "private-as-public",
    ],
)
def test_a_key_that_cannot_serve_is_named_never_quoted(name, pem, problem):
    text = pem()

    assert problems_of(config(**{name: text}), body_line(text)) == [f"{name}: {problem}"]


def test_an_encrypted_private_key_is_refused():
    encrypted = (
        keys()
        .partner.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"SENTINEL-passphrase"),
        )
        .decode()
    )

    assert problems_of(config(partner_private_key=encrypted), body_line(encrypted)) == [
        "partner_private_key: is not an unencrypted PEM private key"
    ]


def test_a_path_that_holds_no_file_is_refused_without_quoting_it(tmp_path):
    missing = str(tmp_path / "SENTINEL-missing.pem")

    assert problems_of(config(xpay_public_key=missing), missing) == [
        "xpay_public_key: is neither PEM text nor the path of a readable PEM file"
    ]


def test_a_pem_file_holding_garbage_is_refused(tmp_path):
    path = tmp_path / "partner.pem"
    path.write_bytes(b"\xff\xfe not a key")

    assert problems_of(config(partner_private_key=str(path))) == [
        "partner_private_key: is neither PEM text nor the path of a readable PEM file"
    ]


def test_the_partners_own_public_key_is_not_taken_for_xpays():
    own = public_pem(keys().partner.public_key())

    assert problems_of(config(xpay_public_key=own)) == [
        "xpay_public_key: is the public half of partner_private_key; it must be XPAY's key"
    ]


# -- other problems ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["partner_token", "partner_private_key", "xpay_public_key", "mode"]
)
def test_a_missing_setting_is_named(name):
    assert problems_of(without(name)) == [f"{name}: is required"]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"partner_token": ""}, "partner_token: does not have the expected format"),
        ({"partner_token": "a token"}, "partner_token: does not have the expected format"),
        ({"partner_private_key": ""}, "partner_private_key: must be at least 1"),
        ({"xpay_public_key": 2048}, "xpay_public_key: must be of type string"),
        ({"terminal_id": 1}, "terminal_id: must be of type string"),
        ({"mode": "sandbox"}, "mode: must be one of 'test', 'live'"),
        ({"base_url": "xpay.example"}, "base_url: does not have the expected format"),
        ({"locale": "ru"}, "locale: must be one of 'uk', 'en'"),
        ({"callback_url": "ftp://shop.example"}, "callback_url: does not have"),
        ({"page_ttl": 0}, "page_ttl: must be at least 1"),
        ({"page_ttl": 1441}, "page_ttl: must be at most 1440"),
        ({"page_ttl": 15.5}, "page_ttl: must be of type integer"),
        ({"payment_methods": []}, "payment_methods: breaks the 'minItems'"),
        ({"payment_methods": ["card", "card"]}, "payment_methods: breaks the 'uniqueItems'"),
        ({"payment_methods": ["cash"]}, "payment_methods.0: must be one of"),
        ({"timeouts": {"read": 90, "total": 60}}, "timeouts.total: must be at least"),
    ],
)
def test_a_value_the_schema_refuses_is_named_by_its_setting(changes, problem):
    (reported,) = problems_of(config(**changes))

    assert reported.startswith(problem)


@pytest.mark.parametrize("base_url", ["http://xpay.example/xpay", "http://127.0.0.1:8000/xpay"])
def test_live_mode_over_plain_http_is_refused(base_url):
    assert problems_of(config(mode="live", base_url=base_url)) == [
        "base_url: must be https in live mode (the partner token travels in requests)"
    ]


def test_every_problem_is_reported_at_once_naming_settings_never_values():
    settings = {
        "partner_private_key": ec_private_pem(),
        "xpay_public_key": public_pem(small_key().public_key()),
        "mode": "live",
        "base_url": "http://xpay.example/xpay",
        "locale": "de",
        "page_ttl": 0,
        "payment_methods": ["cash"],
        "colour": "blue",
    }

    assert problems_of(settings, body_line(ec_private_pem())) == [
        "(top level): unknown key(s) 'colour'",
        "base_url: must be https in live mode (the partner token travels in requests)",
        "locale: must be one of 'uk', 'en'",
        "page_ttl: must be at least 1",
        "partner_private_key: is an elliptic-curve key, not an RSA key",
        "partner_token: is required",
        "payment_methods.0: must be one of 'card', 'google_pay', 'apple_pay'",
        "xpay_public_key: is a 1024-bit RSA key; XPAY's keys are 2048 bits or more",
    ]


def test_a_config_that_is_not_a_table_is_refused():
    assert problems_of(BASE_URL) == ["must be a table of settings, not str"]


def test_a_config_built_directly_keeps_the_same_rules():
    with pytest.raises(ConfigurationError) as caught:
        XpayConfig(
            partner_token=PARTNER_TOKEN,
            partner_private_key=ec_private_pem(),
            xpay_public_key=keys().xpay_public_pem,
            mode="live",
            base_url="http://xpay.example/xpay",
            locale="de",
            page_ttl=0,
            payment_methods=["cash"],
        )

    assert body_line(ec_private_pem()) not in str(caught.value)
    assert PARTNER_TOKEN not in str(caught.value)
    assert list(caught.value.problems) == [
        "base_url: must be https in live mode (the partner token travels in requests)",
        "locale: must be one of uk, en",
        "page_ttl: must be a whole number of minutes from 1 to 1440",
        "partner_private_key: is an elliptic-curve key, not an RSA key",
        "payment_methods: must list some of card, google_pay, apple_pay",
    ]
