"""The plugin contract: capabilities, config validation, unsupported operations."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from attrs import frozen

from paycore.errors import (
    ConfigurationError,
    GatewayProtocolError,
    InvalidAmount,
    PluginError,
    UnsupportedOperation,
)
from paycore.gateways.base import (
    Capabilities,
    Exchange,
    Gateway,
    GatewayConfig,
    Operation,
    RequestPolicy,
    Timeouts,
    read_json,
    secret,
)
from paycore.gateways.schema import config_problems
from paycore.money import Money
from paycore.transactions.model import (
    CheckoutKind,
    Customer,
    GatewayResult,
    Outcome,
    PaymentMethod,
    PaymentRequest,
    SavedMethod,
    SaveMethodRequest,
)

SECRET = "sk_test_SENTINEL_value_42"


@frozen(kw_only=True)
class ShopConfig(GatewayConfig):
    base_url: str
    api_key: str = secret()
    mode: str = "test"


class ShopGateway(Gateway):
    name = "shop"
    display_name = "Shop"
    capabilities = Capabilities(operations={"authorize"}, currencies={"usd", "EUR"})
    config_type = ShopConfig
    config_schema = {
        "type": "object",
        "required": ["base_url", "api_key"],
        "additionalProperties": False,
        "properties": {
            "base_url": {"type": "string", "format": "uri", "pattern": "^https?://"},
            "api_key": {"type": "string", "minLength": 20},
            "mode": {"enum": ["test", "live"]},
        },
    }

    def authorize(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        yield self.build_request("POST", "https://shop.example/pay", json={})
        return GatewayResult(outcome=Outcome.APPROVED)


def request() -> PaymentRequest:
    return PaymentRequest(
        transaction_id="tx_1",
        transaction_type="capture",
        payment_id="pay_1",
        amount=Money(100, "USD"),
    )


def test_a_valid_config_builds_the_gateway_with_timeouts() -> None:
    gateway = ShopGateway.from_config(
        {"base_url": "https://shop.example", "api_key": SECRET, "timeouts": {"read": 2}}
    )
    assert gateway.timeouts == Timeouts(connect=5.0, read=2, total=60.0)
    assert SECRET not in repr(gateway.config)
    assert gateway.secret_values() == (SECRET,)


def test_a_bad_config_lists_every_problem_and_never_the_values() -> None:
    with pytest.raises(ConfigurationError) as caught:
        ShopGateway.from_config(
            {"api_key": "short-SENTINEL", "mode": "prod", "colour": "red", "timeouts": {"read": -1}}
        )
    assert caught.value.problems == (
        "(top level): unknown key(s) 'colour'",
        "api_key: must be at least 20 characters long",
        "base_url: is required",
        "mode: must be one of 'test', 'live'",
        "timeouts.read: must be greater than 0",
    )
    assert "SENTINEL" not in str(caught.value)
    assert "prod" not in str(caught.value)


def test_each_missing_key_is_listed_once() -> None:
    with pytest.raises(ConfigurationError) as caught:
        ShopGateway.from_config({})
    assert caught.value.problems == ("api_key: is required", "base_url: is required")


def test_a_config_that_is_not_a_table_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="must be a table"):
        ShopGateway.from_config(["base_url"])  # type: ignore[arg-type]


def test_unsupported_operations_name_the_gateway_and_operation() -> None:
    gateway = ShopGateway.from_config({"base_url": "https://shop.example", "api_key": SECRET})
    with pytest.raises(UnsupportedOperation, match="'shop' does not support 'capture'") as caught:
        gateway.capture(request())
    assert (caught.value.gateway, caught.value.operation) == ("shop", "capture")


def test_declaring_an_operation_without_implementing_it_fails_at_class_creation() -> None:
    with pytest.raises(TypeError, match=r"declares \[<Operation.REFUND: 'refund'>\]"):

        class Liar(Gateway):
            name = "liar"
            capabilities = Capabilities(operations={"refund"})


def test_implementing_an_operation_without_declaring_it_fails_at_class_creation() -> None:
    with pytest.raises(TypeError, match="implements"):

        class Shy(Gateway):
            name = "shy"
            capabilities = Capabilities(operations=set())

            def void(self, request: PaymentRequest) -> Exchange[GatewayResult]:
                raise NotImplementedError
                yield


def test_capabilities_describe_themselves_in_canonical_order() -> None:
    caps = Capabilities(operations={"refund", "authorize", "capture"}, currencies={"usd"})
    assert caps.as_dict()["operations"] == ["authorize", "capture", "refund"]
    assert caps.supports("refund") and not caps.supports(Operation.VOID)
    assert caps.supports_currency("USD")
    assert caps.supports_currency("usd") and not caps.supports_currency("EUR")
    assert Capabilities(operations=()).supports_currency("XYZ")


class KeyedShop(ShopGateway):
    capabilities = Capabilities(operations={"authorize"}, idempotency_keys=True)


def keyed_shop() -> KeyedShop:
    return KeyedShop.from_config({"base_url": "https://shop.example", "api_key": SECRET})


def test_requests_carry_their_retry_policy() -> None:
    gateway = keyed_shop()
    post = gateway.build_request("post", "https://shop.example/p", json={"a": 1})
    keyed = gateway.build_request("POST", "https://shop.example/p", idempotent=True)
    get = gateway.build_request("GET", "https://shop.example/p")
    rpc_read = gateway.build_request("POST", "https://shop.example/rpc", mutation=False)
    assert RequestPolicy.of(post) == RequestPolicy(mutation=True, idempotent=False)
    assert RequestPolicy.of(keyed) == RequestPolicy(mutation=True, idempotent=True)
    assert RequestPolicy.of(get) == RequestPolicy(mutation=False, idempotent=True)
    assert RequestPolicy.of(rpc_read) == RequestPolicy(mutation=False, idempotent=True)


def test_a_mutation_is_idempotent_only_where_the_gateway_declares_idempotency_keys() -> None:
    gateway = ShopGateway.from_config({"base_url": "https://shop.example", "api_key": SECRET})
    with pytest.raises(PluginError, match="do not declare idempotency_keys"):
        gateway.build_request("POST", "https://shop.example/p", idempotent=True)


def test_json_bodies_are_exact_and_refuse_floats() -> None:
    gateway = keyed_shop()
    request = gateway.build_request("POST", "https://x/p", json={"amount": Decimal("100.55")})
    assert request.content == b'{"amount":100.55}'
    assert request.headers["content-type"] == "application/json"
    with pytest.raises(InvalidAmount):
        gateway.build_request("POST", "https://x/p", json={"amount": 100.55})


def test_decimal_answers_are_read_exactly() -> None:
    import httpx

    response = httpx.Response(200, content=b'{"amount": 1234567890123456.79}')
    assert read_json(response, "shop") == {"amount": Decimal("1234567890123456.79")}


def test_plain_httpx_requests_get_a_policy_from_their_method() -> None:
    import httpx

    assert RequestPolicy.of(httpx.Request("DELETE", "https://x")).mutation
    assert not RequestPolicy.of(httpx.Request("HEAD", "https://x")).mutation


def test_read_json_explains_what_it_got() -> None:
    import httpx

    response = httpx.Response(200, content=b"<html>", headers={"content-type": "text/html"})
    with pytest.raises(GatewayProtocolError, match=r"not JSON \(text/html, 6 bytes\)"):
        read_json(response, "shop")
    assert read_json(httpx.Response(200, json={"a": [1]}), "shop") == {"a": [1]}


def test_exchanges_are_plain_generators_fed_by_hand() -> None:
    import httpx

    gateway = ShopGateway.from_config({"base_url": "https://shop.example", "api_key": SECRET})
    exchange = gateway.authorize(request())
    sent: Any = next(exchange)
    assert sent.method == "POST"
    with pytest.raises(StopIteration) as done:
        exchange.send(httpx.Response(200, json={}))
    assert done.value.value.outcome is Outcome.APPROVED


def test_a_total_budget_shorter_than_the_read_timeout_is_listed_with_the_other_problems() -> None:
    with pytest.raises(ConfigurationError) as caught:
        ShopGateway.from_config({"api_key": SECRET, "timeouts": {"read": 50, "total": 10}})
    assert caught.value.problems == (
        "base_url: is required",
        "timeouts.total: must be at least timeouts.read (50 s)",
    )
    with pytest.raises(ConfigurationError, match=r"timeouts\.total"):
        ShopGateway.from_config(
            {"base_url": "https://s.example", "api_key": SECRET, "timeouts": {"read": 90}}
        )


def test_schemas_are_never_confused_with_one_another() -> None:
    from paycore.gateways.schema import config_problems

    for index in range(200):
        required = "a" if index % 2 else "b"
        schema = {"type": "object", "required": [required]}
        assert config_problems(schema, {}) == [f"{required}: is required"]


def test_a_vault_is_declared_whole_or_not_at_all() -> None:
    with pytest.raises(PluginError, match="save_method and delete_method together"):
        Capabilities(operations={"authorize", "save_method"})

    vault = Capabilities(operations={"save_method", "delete_method"})
    assert vault.vault and vault.as_dict()["vault"] is True
    assert not Capabilities(operations={"authorize"}).vault


def test_checkout_kinds_count_only_when_create_checkout_is_offered() -> None:
    offered = Capabilities(
        operations={"create_checkout"}, checkout_kinds={"payment_link", "hosted_page"}
    )
    assert offered.supports_checkout("payment_link")
    assert not offered.supports_checkout(CheckoutKind.WIDGET)
    assert offered.as_dict()["checkout_kinds"] == ["hosted_page", "payment_link"]

    without = Capabilities(operations={"authorize"})
    assert not without.supports_checkout("hosted_page")
    assert without.as_dict()["checkout_kinds"] == []
    with pytest.raises(ValueError, match="'kiosk' is not a valid CheckoutKind"):
        Capabilities(operations={"create_checkout"}, checkout_kinds={"kiosk"})


def test_vault_operations_a_gateway_lacks_are_unsupported() -> None:
    gateway = ShopGateway.from_config({"base_url": "https://shop.example", "api_key": SECRET})
    saved = SavedMethod(gateway="shop", token="pm_1", customer_reference="cus_1", type="card")
    save = SaveMethodRequest(
        idempotency_key="save_1",
        payment_method=PaymentMethod(type="card", token="pm_1"),
        customer=Customer(reference="c1"),
    )

    with pytest.raises(UnsupportedOperation, match="'save_method'"):
        gateway.save_method(save)
    with pytest.raises(UnsupportedOperation, match="'delete_method'"):
        gateway.delete_method(saved)
    with pytest.raises(UnsupportedOperation, match="'create_checkout'"):
        gateway.create_checkout(request(), kind=CheckoutKind.PAYMENT_LINK)
    assert "create_checkout (widget)" in str(gateway.unsupported_checkout(CheckoutKind.WIDGET))


@frozen(kw_only=True)
class RotatingConfig(GatewayConfig):
    webhook_secrets: tuple[str, ...] = secret()
    api_key: str = secret()


def test_every_item_of_a_list_of_secrets_is_scrubbed_on_its_own() -> None:
    config = RotatingConfig(webhook_secrets=("whsec_new", "", "whsec_old"), api_key=SECRET)

    assert config.secret_values() == ("whsec_new", "whsec_old", SECRET)


def test_a_composite_rule_is_reported_in_its_own_words() -> None:
    schema = {
        "type": "object",
        "not": {"required": ["mode", "base_url"], "description": "give mode or base_url"},
    }

    assert config_problems(schema, {"mode": "test", "base_url": "https://x"}) == [
        "(top level): give mode or base_url"
    ]
    assert config_problems({"type": "object", "not": {"required": ["a"]}}, {"a": 1}) == [
        "(top level): breaks the 'not' rule of the schema"
    ]
