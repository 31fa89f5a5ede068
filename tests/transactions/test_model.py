"""The shared vocabulary guards its own invariants."""

from __future__ import annotations

import attrs
import pytest

from paycore.errors import InvalidAmount, InvalidRequest
from paycore.money import Money
from paycore.transactions.model import (
    CheckoutKind,
    CheckoutSession,
    Customer,
    DeclineReason,
    GatewayResult,
    NextAction,
    Outcome,
    PaymentMethod,
    PaymentRequest,
    SavedMethod,
    SaveMethodRequest,
    TransactionStatus,
    TransactionType,
    WebhookRequest,
)


def make_request(**changes: object) -> PaymentRequest:
    fields: dict[str, object] = {
        "transaction_id": "tx_1",
        "transaction_type": "authorize",
        "payment_id": "pay_1",
        "amount": Money(100, "USD"),
    }
    fields.update(changes)
    return PaymentRequest(**fields)  # type: ignore[arg-type]


def test_the_provider_idempotency_key_derives_from_the_transaction_id() -> None:
    assert make_request(transaction_id="tx_42").idempotency_key == "tx_42"


@pytest.mark.parametrize("amount", [Money(0, "USD"), Money(-1, "USD")])
def test_requests_need_a_positive_amount(amount: Money) -> None:
    with pytest.raises(InvalidAmount, match="positive"):
        make_request(amount=amount)


def test_requests_refuse_amounts_that_are_not_money() -> None:
    with pytest.raises(InvalidAmount):
        make_request(amount=100)


def test_requests_refuse_unknown_transaction_types_and_empty_ids() -> None:
    with pytest.raises(InvalidRequest, match="must be one of authorize, sale") as caught:
        make_request(transaction_type="teleport")
    assert "'teleport'" in str(caught.value)
    with pytest.raises(InvalidRequest):
        make_request(transaction_id="")


def test_payment_method_tokens_stay_out_of_reprs() -> None:
    method = PaymentMethod(type="card", token="tok_SENTINEL")
    assert "tok_SENTINEL" not in repr(make_request(payment_method=method))


def test_metadata_is_read_only() -> None:
    request = make_request(metadata={"order": "A1"})
    with pytest.raises(TypeError):
        request.metadata["order"] = "B2"  # type: ignore[index]


def test_a_decline_needs_a_reason_and_only_a_decline_has_one() -> None:
    with pytest.raises(InvalidRequest):
        GatewayResult(outcome=Outcome.DECLINED)
    with pytest.raises(InvalidRequest):
        GatewayResult(outcome=Outcome.APPROVED, decline_reason=DeclineReason.OTHER)
    declined = GatewayResult(outcome="declined", decline_reason=DeclineReason.INSUFFICIENT_FUNDS)
    assert not declined.approved


def test_action_required_needs_a_next_action() -> None:
    with pytest.raises(InvalidRequest):
        GatewayResult(outcome=Outcome.ACTION_REQUIRED)
    result = GatewayResult(
        outcome=Outcome.ACTION_REQUIRED, next_action=NextAction.redirect("https://3ds.example/x")
    )
    assert result.next_action is not None and result.next_action.method == "GET"


def test_statuses_know_which_are_final() -> None:
    assert {s for s in TransactionStatus if s.is_final} == {"succeeded", "declined", "failed"}
    assert TransactionType("sale") is TransactionType.SALE


def test_webhook_requests_have_lower_case_header_names() -> None:
    delivery = WebhookRequest(method="POST", headers={"X-Signature": "abc"}, body=b"{}")
    assert delivery.header("x-signature") == delivery.header("X-SIGNATURE") == "abc"


def test_value_objects_change_only_through_evolve() -> None:
    request = make_request()
    assert attrs.evolve(request, transaction_id="tx_2").transaction_id == "tx_2"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        request.transaction_id = "tx_3"  # type: ignore[misc]


def test_an_unknown_outcome_is_a_typed_error() -> None:
    with pytest.raises(InvalidRequest, match="outcome must be one of"):
        GatewayResult(outcome="maybe")


def test_webhook_arrival_times_must_be_timezone_aware() -> None:
    from datetime import UTC, datetime

    with pytest.raises(InvalidRequest, match="timezone-aware"):
        WebhookRequest(method="POST", headers={}, received_at=datetime(2026, 1, 1))
    WebhookRequest(method="POST", headers={}, received_at=datetime(2026, 1, 1, tzinfo=UTC))


def test_ids_must_be_safe_in_headers_and_urls() -> None:
    for bad in ("tx 1", "tx\n1", "tx_é", "x" * 256):
        with pytest.raises(InvalidRequest, match="visible ASCII"):
            make_request(transaction_id=bad)


def test_decline_reasons_and_event_types_are_closed_lists() -> None:
    from datetime import UTC, datetime

    from paycore.transactions.model import GatewayEvent

    with pytest.raises(InvalidRequest, match="decline_reason must be one of"):
        GatewayResult(outcome="declined", decline_reason="totally_bogus")
    assert GatewayResult(outcome="declined", decline_reason="expired_card").decline_reason is (
        DeclineReason.EXPIRED_CARD
    )
    event = {
        "gateway": "g",
        "event_id": "e",
        "event_type": "t",
        "occurred_at": datetime(2026, 1, 1, tzinfo=UTC),
        "outcome": "approved",
    }
    with pytest.raises(InvalidRequest, match="transaction_type must be one of"):
        GatewayEvent(**event, transaction_type="nonsense")
    with pytest.raises(InvalidRequest, match="timezone-aware"):
        GatewayEvent(**{**event, "occurred_at": datetime(2026, 1, 1)}, transaction_type="sale")


def test_a_webhook_requests_repr_shows_neither_headers_nor_body() -> None:
    delivery = WebhookRequest(
        method="POST", headers={"X-Signature": "SENTINEL_SIG"}, body=b'{"SENTINEL_BODY": 1}'
    )
    assert "SENTINEL" not in repr(delivery)


@pytest.mark.parametrize("last4", ["424", "42424", "4242424242424242", "abcd", 4242])
def test_a_saved_method_shows_four_digits_of_a_card_and_no_more(last4: object) -> None:
    with pytest.raises(InvalidRequest, match="last4 must be exactly four digits"):
        SavedMethod(
            gateway="shop",
            token="pm_1",
            customer_reference="cus_1",
            type="card",
            last4=last4,  # type: ignore[arg-type]
        )


def test_a_saved_method_pays_as_a_payment_method_on_or_off_session() -> None:
    saved = SavedMethod(
        gateway="shop", token="pm_1", customer_reference="cus_1", type="card", last4="4242"
    )

    assert saved.as_payment_method() == PaymentMethod(type="card", token="pm_1")
    assert saved.as_payment_method(off_session=True).off_session


def test_a_methods_fields_are_a_read_only_map_of_strings_kept_out_of_its_repr() -> None:
    method = PaymentMethod(type="wallet_uah", fields={"phone": "+380501234567"})

    assert dict(method.fields) == {"phone": "+380501234567"}
    assert "380501234567" not in repr(method)
    with pytest.raises(TypeError):
        method.fields["phone"] = "other"  # type: ignore[index]
    assert PaymentMethod(type="card").fields == {}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rate": 100}, "field 'rate' must be a string"),
        ({"": "x"}, "field names are strings of 1 to 64 characters"),
        ({"k" * 65: "x"}, "field names are strings of 1 to 64 characters"),
        ({"note": "x" * 1025}, "at most 1024 characters"),
        ({f"f{i}": "x" for i in range(51)}, "at most 50 fields"),
    ],
)
def test_a_methods_fields_refuse_what_is_not_a_short_string(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        PaymentMethod(type="wallet_uah", fields=fields)  # type: ignore[arg-type]


def test_a_checkout_session_knows_its_kind_and_may_not_know_the_payment_yet() -> None:
    link = CheckoutSession(
        reference="plink_1",
        next_action=NextAction.redirect("https://pay.example/link/1"),
        kind="payment_link",
    )

    assert link.kind is CheckoutKind.PAYMENT_LINK
    assert link.gateway_reference is None
    with pytest.raises(ValueError, match="'kiosk' is not a valid CheckoutKind"):
        attrs.evolve(link, kind="kiosk")


def test_a_save_request_needs_a_key_safe_in_headers() -> None:
    with pytest.raises(InvalidRequest, match="idempotency_key"):
        SaveMethodRequest(
            idempotency_key="two words",
            payment_method=PaymentMethod(type="card", token="pm_1"),
            customer=Customer(),
        )
