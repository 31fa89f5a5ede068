"""Settings from paycore.toml and the environment."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import ClassVar

import pytest
from attrs import frozen

from paycore import plugins
from paycore.config import (
    DEFAULT_DATABASE_URL,
    DEFAULT_MAX_BODY_BYTES,
    CheckoutSettings,
    GatewaySettings,
    Settings,
    WebSettings,
    build_gateways,
    load_settings,
    redact_url,
)
from paycore.errors import ConfigurationError
from paycore.gateways.base import Capabilities, Gateway, GatewayConfig, secret
from paycore.gateways.dummy import DummyGateway

SENTINEL = "sk_live_SENTINEL_d41d8cd98f00b204"
# The gateway plugins installed here, as the messages list them.
INSTALLED = ", ".join(plugins.available_gateways())


@frozen(kw_only=True)
class ShopConfig(GatewayConfig):
    api_key: str = secret()
    mode: str = "test"


class ShopGateway(Gateway):
    name = "shop"
    display_name = "Shop test gateway"
    capabilities = Capabilities(operations=[])
    config_type: ClassVar[type[GatewayConfig]] = ShopConfig
    config_schema = {
        "type": "object",
        "properties": {
            "api_key": {"type": "string", "minLength": 12},
            "mode": {"enum": ["test", "live"]},
        },
        "required": ["api_key"],
        "additionalProperties": False,
    }


def lookup(name: str) -> type[Gateway]:
    """The test's own gateway, or whatever is really installed."""
    return ShopGateway if name == "shop" else plugins.gateway_class(name)


def write(tmp_path: Path, text: str, name: str = "paycore.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(path: Path | None, env: dict[str, str]) -> tuple[str, ...]:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(path, env, gateway_class=lookup)
    return caught.value.problems


# -- where the settings come from ----------------------------------------------------


def test_without_a_settings_file_the_defaults_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    settings = load_settings(env={})

    assert settings == Settings()
    assert settings.database_url == DEFAULT_DATABASE_URL == "sqlite:///paycore.db"
    assert settings.webhook_base_url is None
    assert settings.gateways == {}
    assert settings.source is None


def test_paycore_toml_in_the_working_directory_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, 'database_url = "sqlite:///shop.db"\n')
    monkeypatch.chdir(tmp_path)

    settings = load_settings(env={})

    assert settings.database_url == "sqlite:///shop.db"
    assert settings.source == Path("paycore.toml")


def test_paycore_config_names_the_settings_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'database_url = "sqlite:///elsewhere.db"\n', "elsewhere.toml")

    settings = load_settings(env={"PAYCORE_CONFIG": str(path)})

    assert settings.database_url == "sqlite:///elsewhere.db"
    assert settings.source == path


def test_an_explicit_path_wins_over_paycore_config(tmp_path: Path) -> None:
    chosen = write(tmp_path, 'database_url = "sqlite:///chosen.db"\n', "chosen.toml")
    ignored = write(tmp_path, 'database_url = "sqlite:///ignored.db"\n', "ignored.toml")

    settings = load_settings(chosen, {"PAYCORE_CONFIG": str(ignored)})

    assert settings.database_url == "sqlite:///chosen.db"


def test_a_settings_file_that_does_not_exist_is_an_error_when_named(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"

    assert problems_of(missing, {}) == ("the file does not exist",)
    assert problems_of(None, {"PAYCORE_CONFIG": str(missing)}) == (
        "the file does not exist (named by PAYCORE_CONFIG)",
    )


def test_paycore_database_url_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'database_url = "sqlite:///from-file.db"\n')

    settings = load_settings(path, {"PAYCORE_DATABASE_URL": "postgresql://db.internal/pay"})

    assert settings.database_url == "postgresql://db.internal/pay"


# -- ${ENV_VAR} interpolation --------------------------------------------------------


def test_environment_variables_are_substituted_in_every_string(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        database_url = "postgresql://pay:${DB_PASSWORD}@${DB_HOST}/pay"
        webhook_base_url = "https://${SHOP_HOST}/paycore"

        [gateways.shop]
        api_key = "${SHOP_API_KEY}"
        mode = "${SHOP_MODE}"
        """,
    )
    env = {
        "DB_PASSWORD": "pw",
        "DB_HOST": "db.internal",
        "SHOP_HOST": "shop.example",
        "SHOP_API_KEY": SENTINEL,
        "SHOP_MODE": "live",
    }

    settings = load_settings(path, env, gateway_class=lookup)

    assert settings.database_url == "postgresql://pay:pw@db.internal/pay"
    assert settings.webhook_base_url == "https://shop.example/paycore"
    assert settings.gateways["shop"].config == {"api_key": SENTINEL, "mode": "live"}


def test_variables_are_substituted_inside_nested_tables_and_arrays(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        [gateways.other]
        plugin = "shop"
        api_key = "key-${SUFFIX}"
        nested = { list = ["${A}", "plain", 3], inner = { value = "${B}" } }
        """,
    )

    with pytest.raises(ConfigurationError):  # "nested" is not in ShopGateway's schema
        load_settings(path, {"SUFFIX": "x", "A": "a", "B": "b"}, gateway_class=lookup)
    settings = load_settings(path, {"SUFFIX": "x", "A": "a", "B": "b"}, gateway_class=_lenient)

    assert settings.gateways["other"].config == {
        "api_key": "key-x",
        "nested": {"list": ["a", "plain", 3], "inner": {"value": "b"}},
    }


def _lenient(name: str) -> type[Gateway]:
    class AnythingGoes(Gateway):
        name = "shop"
        display_name = "accepts any config"
        capabilities = Capabilities(operations=[])

    return AnythingGoes


def test_a_doubled_dollar_brace_is_a_literal_dollar_brace(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        [gateways.shop]
        api_key = "$${NOT_A_VARIABLE}-and-${KEY}"
        mode = "test"
        """,
    )

    settings = load_settings(path, {"KEY": "abcdef"}, gateway_class=lookup)

    assert settings.gateways["shop"].config["api_key"] == "${NOT_A_VARIABLE}-and-abcdef"


def test_a_lone_dollar_is_left_alone(tmp_path: Path) -> None:
    path = write(tmp_path, '[gateways.shop]\napi_key = "costs $5 and $$ too"\n')

    settings = load_settings(path, {}, gateway_class=lookup)

    assert settings.gateways["shop"].config["api_key"] == "costs $5 and $$ too"


def test_a_substituted_value_is_never_substituted_again(tmp_path: Path) -> None:
    path = write(tmp_path, '[gateways.shop]\napi_key = "${OUTER}"\n')

    settings = load_settings(path, {"OUTER": "${INNER}-long-enough"}, gateway_class=lookup)

    assert settings.gateways["shop"].config["api_key"] == "${INNER}-long-enough"


def test_a_missing_variable_names_the_key_and_the_variable(tmp_path: Path) -> None:
    path = write(tmp_path, '[gateways.shop]\napi_key = "${SHOP_API_KEY}"\n')

    assert problems_of(path, {}) == (
        "gateways.shop.api_key: environment variable SHOP_API_KEY is not set",
    )


def test_malformed_references_are_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        [gateways.shop]
        api_key = "${UNCLOSED"
        mode = "${not a name}"
        """,
    )

    assert problems_of(path, {}) == (
        "gateways.shop.api_key: has '${' without a closing '}' (write '$${' for a literal '${')",
        "gateways.shop.mode: has a '${…}' that does not hold an environment variable name",
    )


# -- every problem at once -----------------------------------------------------------


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        database_url = 42
        webhook_base_url = "ftp://shop.example"
        databse_url = "sqlite:///typo.db"

        [gateways.shop]
        api_key = "short"
        mode = "sandbox"
        colour = "blue"

        [gateways.eu]
        plugin = "shop"
        mode = "${EU_MODE}"

        [gateways.nosuchpay]

        [gateways.Bad]
        """,
    )

    assert problems_of(path, {}) == (
        "database_url: must be a string, not an integer",
        "databse_url: unknown setting (known: database_url, webhook_base_url, gateways, web, "
        "checkout, celery); did you mean 'database_url'?",
        "gateways.Bad: a gateway name is lowercase letters, digits, '_' and '-', starting "
        "with a letter or digit (it appears in webhook URLs)",
        "gateways.eu.api_key: is required",
        "gateways.eu.mode: environment variable EU_MODE is not set",
        "gateways.nosuchpay: no gateway plugin named 'nosuchpay' is installed (installed "
        f"gateway plugins: {INSTALLED}); install the distribution that provides it (the table "
        "name is the plugin name unless `plugin` is set)",
        "gateways.shop.api_key: must be at least 12 characters long",
        "gateways.shop.mode: must be one of 'test', 'live'",
        "gateways.shop: unknown key(s) 'colour'",
        "webhook_base_url: must be an absolute http(s) URL such as https://shop.example/paycore",
    )


def test_the_error_names_the_file_and_counts_the_problems(tmp_path: Path) -> None:
    path = write(tmp_path, "database_url = 1\nwebhook_base_url = 2\n")

    with pytest.raises(ConfigurationError) as caught:
        load_settings(path, {})

    assert str(caught.value).splitlines() == [
        f"settings file {path}: 2 problems",
        "  - database_url: must be a string, not an integer",
        "  - webhook_base_url: must be a string, not an integer",
    ]


def test_malformed_toml_is_reported_with_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, 'database_url = "sqlite:///a.db"\n[gateways.shop\n')

    (problem,) = problems_of(path, {})

    assert problem.startswith("is not valid TOML: ")
    assert "line 2, column" in problem


def test_an_invalid_database_url_from_the_environment_is_named_by_its_variable(
    tmp_path: Path,
) -> None:
    assert problems_of(None, {"PAYCORE_DATABASE_URL": "paycore.db", "PAYCORE_CONFIG": ""}) == (
        "PAYCORE_DATABASE_URL: must be a database URL such as sqlite:///paycore.db",
    )


# -- secrets -------------------------------------------------------------------------


def test_no_secret_value_ever_appears_in_an_error(tmp_path: Path) -> None:
    env = {"SECRET": SENTINEL}
    files = {
        "wrong everywhere": """\
            database_url = "${SECRET}"
            webhook_base_url = "${SECRET}"
            "${SECRET}" = 1

            [gateways.shop]
            api_key = "${SECRET}"
            mode = "${SECRET}"
            extra = "${SECRET}"

            [gateways.${SECRET}]
            """.replace("[gateways.${SECRET}]", '[gateways."${SECRET}x"]'),
        "literal secret before a syntax error": f'api_key = "{SENTINEL}"\n{SENTINEL[:3]} = = 1\n',
        "literal secret as a bad character": f'database_url = "{SENTINEL}"\n{SENTINEL} = = 1\n',
        "secret as a plugin name": '[gateways.shop]\nplugin = "${SECRET}"\n',
    }
    for label, text in files.items():
        path = write(tmp_path, text, f"{label.replace(' ', '-')}.toml")
        with pytest.raises(ConfigurationError) as caught:
            load_settings(path, env, gateway_class=lookup)
        error = caught.value
        shown = [str(error), repr(error), *error.problems, str(error.__cause__)]
        assert not [line for line in shown if SENTINEL in line], label


def test_no_secret_value_appears_in_the_repr_of_settings(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        database_url = "postgresql://pay:${SECRET}@db.internal/pay"

        [gateways.shop]
        api_key = "${SECRET}"
        """,
    )

    settings = load_settings(path, {"SECRET": SENTINEL}, gateway_class=lookup)

    assert SENTINEL not in repr(settings)
    assert SENTINEL not in str(settings)
    assert "postgresql://pay:***@db.internal/pay" in repr(settings)
    assert "'api_key': …" in repr(settings)
    assert SENTINEL not in repr(build_gateways(settings, gateway_class=lookup))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://pay:pw@db/pay", "postgresql://pay:***@db/pay"),
        ("postgresql://h/db?password=s3cr3t", "postgresql://h/db?password=***"),
        (
            "postgresql://pay@h/db?sslmode=require&sslpassword=k3y#x",
            "postgresql://pay@h/db?sslmode=require&sslpassword=***#x",
        ),
        (
            "postgresql://pay:pw@h/db?application_name=shop;pass%77ord=s3cr3t",
            "postgresql://pay:***@h/db?application_name=shop;pass%77ord=***",
        ),
        ("libsql://db.example?authToken=t0k3n", "libsql://db.example?authToken=***"),
        ("postgresql://h/db?sslmode=require&connect_timeout=5", None),
        ("sqlite:///paycore.db", None),
        ("sqlite:///paycore.db?mode=ro", None),
    ],
)
def test_redact_url_hides_passwords_in_the_userinfo_and_the_query(
    url: str, shown: str | None
) -> None:
    assert redact_url(url) == (shown or url)


def test_no_query_password_appears_in_the_repr_of_settings(tmp_path: Path) -> None:
    path = write(tmp_path, 'database_url = "postgresql://db/pay?sslpassword=${SECRET}"\n')
    from_file = load_settings(path, {"SECRET": SENTINEL})
    from_env = load_settings(
        path,
        {"SECRET": "x", "PAYCORE_DATABASE_URL": f"postgresql://db/pay?password={SENTINEL}"},
    )

    assert from_file.database_url == f"postgresql://db/pay?sslpassword={SENTINEL}"
    assert from_env.database_url == f"postgresql://db/pay?password={SENTINEL}"
    assert SENTINEL not in repr(from_file)
    assert SENTINEL not in repr(from_env)
    assert "postgresql://db/pay?sslpassword=***" in repr(from_file)


# -- gateways ------------------------------------------------------------------------


def test_the_plugin_defaults_to_the_table_name(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        [gateways.shop]
        api_key = "key-for-shop-1"

        [gateways.shop_eu]
        plugin = "shop"
        api_key = "key-for-shop-eu"
        mode = "live"
        """,
    )

    settings = load_settings(path, {}, gateway_class=lookup)

    assert settings.gateways == {
        "shop": GatewaySettings(name="shop", plugin="shop", config={"api_key": "key-for-shop-1"}),
        "shop_eu": GatewaySettings(
            name="shop_eu", plugin="shop", config={"api_key": "key-for-shop-eu", "mode": "live"}
        ),
    }


def test_build_gateways_builds_each_configured_gateway(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        [gateways.shop]
        api_key = "${SHOP_API_KEY}"

        [gateways.shop_eu]
        plugin = "shop"
        api_key = "key-for-shop-eu"
        timeouts = { connect = 2, read = 10 }
        """,
    )
    settings = load_settings(path, {"SHOP_API_KEY": SENTINEL}, gateway_class=lookup)

    gateways = build_gateways(settings, gateway_class=lookup)

    assert set(gateways) == {"shop", "shop_eu"}
    assert isinstance(gateways["shop"], ShopGateway)
    assert gateways["shop"].config == ShopConfig(api_key=SENTINEL)
    assert gateways["shop_eu"].timeouts.connect == 2
    assert SENTINEL in gateways["shop"].secret_values()


def test_build_gateways_lists_every_gateway_s_problems() -> None:
    settings = Settings(
        gateways={
            "shop": GatewaySettings(name="shop", plugin="shop", config={}),
            "eu": GatewaySettings(name="eu", plugin="shop", config={"api_key": 5}),
            "gone": GatewaySettings(name="gone", plugin="nosuchpay"),
        }
    )

    with pytest.raises(ConfigurationError) as caught:
        build_gateways(settings, gateway_class=lookup)

    assert caught.value.subject == "settings"
    assert caught.value.problems[:2] == (
        "gateways.eu.api_key: must be of type string",
        "gateways.gone.plugin: no gateway plugin named 'nosuchpay' is installed "
        f"(installed gateway plugins: {INSTALLED}); install the distribution that provides it",
    )
    assert caught.value.problems[2] == "gateways.shop.api_key: is required"


def test_an_installed_plugin_is_configured_from_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        [gateways.dummy]
        base_url = "http://127.0.0.1:8100"
        api_key = "${DUMMY_API_KEY}"
        webhook_secret = "${DUMMY_WEBHOOK_SECRET}"
        """,
    )
    env = {"DUMMY_API_KEY": SENTINEL, "DUMMY_WEBHOOK_SECRET": "whsec_test"}

    gateways = build_gateways(load_settings(path, env))

    assert isinstance(gateways["dummy"], DummyGateway)
    assert SENTINEL in gateways["dummy"].secret_values()


def test_an_installed_plugin_s_schema_problems_are_listed(tmp_path: Path) -> None:
    path = write(tmp_path, '[gateways.dummy]\nbase_url = "not a url"\n')

    assert problems_of(path, {}) == (
        "gateways.dummy.api_key: is required",
        "gateways.dummy.base_url: does not have the expected format",
        "gateways.dummy.webhook_secret: is required",
    )


# -- [web] and [checkout] ------------------------------------------------------------


def test_without_web_and_checkout_tables_their_defaults_apply(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, 'database_url = "sqlite:///shop.db"\n'), {})

    assert settings.web == WebSettings()
    assert (settings.web.success_url, settings.web.failure_url, settings.web.waiting_url) == (
        None,
        None,
        None,
    )
    assert settings.web.max_body_bytes == DEFAULT_MAX_BODY_BYTES == 1024 * 1024
    assert settings.checkout == CheckoutSettings(capture="authorize", options_timeout=5.0)


def test_web_and_checkout_tables_are_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        [web]
        success_url = "https://shop.example/thanks?lang=${SHOP_LANG}"
        failure_url = "https://shop.example/cart"
        max_body_bytes = 65536

        [checkout]
        capture = "sale"
        options_timeout = 2
        """,
    )

    settings = load_settings(path, {"SHOP_LANG": "de"})

    assert settings.web == WebSettings(
        success_url="https://shop.example/thanks?lang=de",
        failure_url="https://shop.example/cart",
        max_body_bytes=65536,
    )
    assert settings.web.waiting_url == "https://shop.example/thanks?lang=de"
    assert settings.checkout == CheckoutSettings(capture="sale", options_timeout=2.0)
    assert isinstance(settings.checkout.options_timeout, float)


def test_a_pending_url_is_where_waiting_customers_go(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        [web]
        success_url = "https://shop.example/thanks"
        pending_url = "http://shop.example/waiting"
        """,
    )

    assert load_settings(path, {}).web.waiting_url == "http://shop.example/waiting"


def test_every_problem_of_the_web_and_checkout_tables_is_listed_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        [web]
        success_url = "/thanks"
        failure_url = "javascript:alert(1)"
        pending_url = 3
        max_body_bytes = 0
        sucess_url = "https://shop.example/thanks"

        [checkout]
        capture = "later"
        options_timeout = true
        """,
    )

    assert problems_of(path, {}) == (
        'checkout.capture: must be "authorize" or "sale"',
        "checkout.options_timeout: must be a positive number of seconds",
        "web.failure_url: must be an absolute http(s) URL such as https://shop.example/thanks",
        "web.max_body_bytes: must be a positive whole number of bytes",
        "web.pending_url: must be a string, not an integer",
        "web.success_url: must be an absolute http(s) URL such as https://shop.example/thanks",
        "web.sucess_url: unknown setting (known: success_url, failure_url, pending_url, "
        "max_body_bytes); did you mean 'success_url'?",
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('web = "on"', "web: must be a table of settings, not a string"),
        ("checkout = 1", "checkout: must be a table of settings, not an integer"),
        (
            '[web]\nsuccess_url = "https://shop.example/a\\nLocation: https://evil.example"',
            "web.success_url: must not contain spaces or control characters",
        ),
        ("[web]\nmax_body_bytes = 1.5", "web.max_body_bytes: must be a positive whole number"),
        ("[checkout]\noptions_timeout = -1", "checkout.options_timeout: must be a positive"),
        ("[checkout]\noptions_timeout = inf", "checkout.options_timeout: must be a positive"),
    ],
    ids=[
        "web not a table",
        "checkout not a table",
        "header injection",
        "fraction",
        "negative",
        "inf",
    ],
)
def test_a_bad_web_or_checkout_setting_is_named(tmp_path: Path, text: str, problem: str) -> None:
    (found,) = problems_of(write(tmp_path, text + "\n"), {})

    assert found.startswith(problem)


def test_the_celery_table_is_checked_and_kept(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(
        '[celery]\nbroker_url = "redis://127.0.0.1:6379/3"\nqueue = "oms"\n'
        "visibility_timeout = 120\nmax_retries = 2\n",
        encoding="utf-8",
    )
    settings = load_settings(good, env={})
    assert dict(settings.celery) == {
        "broker_url": "redis://127.0.0.1:6379/3",
        "queue": "oms",
        "visibility_timeout": 120.0,
        "max_retries": 2,
    }
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[celery]\nqueue = 3\nvisibility_timeout = -1\nmax_retries = 1.5\nbrokr_url = "x"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigurationError) as raised:
        load_settings(bad, env={})
    problems = "\n".join(raised.value.problems)
    for where in ("celery.queue", "celery.visibility_timeout", "celery.max_retries"):
        assert where in problems
    assert "celery.brokr_url: unknown setting" in problems and "broker_url" in problems
