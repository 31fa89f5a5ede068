"""The MilkyPay sandbox's status machine over real HTTP: capture and void of a delayed
charge, terminate, refunds (pending too), chargebacks and expiry."""

from __future__ import annotations

from decimal import Decimal

import pytest

from plugins.milkypay.tests.sandbox_client import (
    Merchant,
    body_of,
    by_test_service,
    errors_of,
    serve,
)


@pytest.fixture
def merchant(paycore_sandbox_server, http, clock) -> Merchant:
    return serve(paycore_sandbox_server, http, clock=clock)


@pytest.fixture
def pending(paycore_sandbox_server, http, clock) -> Merchant:
    return serve(paycore_sandbox_server, http, clock=clock, refunds_pending=True)


# -- capture and void ------------------------------------------------------------------


def test_a_partial_capture_releases_the_rest(merchant):
    held = merchant.held(Decimal("100.00"))
    attributes = held["attributes"]
    assert attributes["reserve_expires"] == 1_767_225_600 + 7 * 24 * 3600

    captured = body_of(merchant.process(held["id"], "capture", Decimal("40.00")))

    after = captured["data"]["attributes"]
    assert (after["status"], after["resolution"]) == ("processed", "ok")
    assert after["processed_amount"] == Decimal("40.00") and after["reserved_amount"] == 0
    assert after["unreserved"] is True and after["amount"] == Decimal("100.00")
    again = merchant.process(held["id"], "capture", Decimal("10.00"))
    assert errors_of(again) == (422, ["invalid_status"])


def test_a_capture_without_an_amount_takes_the_whole_reserve(merchant):
    held = merchant.held(Decimal("1.005"), currency="KWD", **by_test_service(100, "KWD"))

    after = body_of(merchant.process(held["id"], "capture"))["data"]["attributes"]

    assert after["processed_amount"] == Decimal("1.005") and after["unreserved"] is False


def test_a_capture_resent_is_a_duplicate_and_changes_nothing(merchant):
    held = merchant.held()
    merchant.process(held["id"], "capture", Decimal("30.00"), reference_id="cap-1")

    again = merchant.process(held["id"], "capture", Decimal("30.00"), reference_id="cap-1")

    assert errors_of(again) == (422, ["duplicate_reference_id"])
    assert merchant.read(held["id"])["processed_amount"] == Decimal("30.00")


def test_a_capture_above_the_reserve_is_refused_and_the_hold_stays(merchant):
    held = merchant.held(Decimal("100.00"))

    over = merchant.process(held["id"], "capture", Decimal("100.01"))

    assert errors_of(over) == (422, ["amount_exceeds_reserved"])
    assert merchant.read(held["id"])["reserved_amount"] == Decimal("100.00")


def test_a_void_releases_the_whole_reserve(merchant):
    held = merchant.held()

    voided = body_of(merchant.process(held["id"], "void"))["data"]["attributes"]

    assert (voided["status"], voided["resolution"]) == ("terminated", "voided")
    assert voided["reserved_amount"] == 0 and voided["processed_amount"] == 0
    assert errors_of(merchant.process(held["id"], "capture")) == (422, ["invalid_status"])


@pytest.mark.parametrize("make", ["paid", "created"])
def test_only_a_held_invoice_is_captured_or_voided(merchant, make):
    invoice = merchant.paid() if make == "paid" else merchant.invoice(flow="delayed_charge")

    for action in ("capture", "void"):
        assert errors_of(merchant.process(invoice["id"], action)) == (422, ["invalid_status"])


@pytest.mark.parametrize(
    ("attributes", "code"),
    [
        ({"action": "settle", "reference_id": "x"}, "invalid_value"),
        ({"action": "capture"}, "required"),
        ({"action": "void", "reference_id": "x", "amount": 1}, "invalid_value"),
        (
            {"action": "capture", "reference_id": "x", "amount": Decimal("1.001")},
            "invalid_amount_precision",
        ),
    ],
)
def test_a_bad_process_request_is_refused(merchant, attributes, code):
    held = merchant.held()
    body = {"data": {"type": "payment-invoices", "attributes": attributes}}

    answer = merchant.post(f"/api/payment-invoices/{held['id']}/process", body)

    assert errors_of(answer) == (422, [code])
    assert merchant.read(held["id"])["status"] == "processing"


def test_a_capture_after_the_reserve_window_is_refused(merchant, clock):
    held = merchant.held()
    clock.now += 7 * 24 * 3600 + 1

    assert errors_of(merchant.process(held["id"], "capture")) == (422, ["invalid_status"])
    assert body_of(merchant.process(held["id"], "void"))["data"]["attributes"]["status"] == (
        "terminated"
    )


def test_operations_on_an_unknown_invoice_are_404(merchant):
    for path in ("process", "refund", "terminate"):
        answer = merchant.post(f"/api/payment-invoices/cpi_missing/{path}", {"data": {}})
        assert errors_of(answer) == (404, ["not_found"])


def test_terminate_closes_an_unpaid_invoice_only(merchant):
    invoice = merchant.invoice()
    paid = merchant.paid()

    closed = body_of(merchant.post(f"/api/payment-invoices/{invoice['id']}/terminate"))
    refused = merchant.post(f"/api/payment-invoices/{paid['id']}/terminate")

    after = closed["data"]["attributes"]
    assert (after["status"], after["resolution"]) == ("terminated", "terminated")
    assert errors_of(refused) == (422, ["invalid_status"])


# -- refunds ---------------------------------------------------------------------------


def test_refunds_are_partial_and_repeatable_until_nothing_is_left(merchant):
    paid = merchant.paid(Decimal("100.55"))

    first = merchant.refund(paid["id"], Decimal("40.00"), description="returned one")
    second = merchant.refund(paid["id"], Decimal("60.55"))
    over = merchant.refund(paid["id"], Decimal("0.01"))

    refund = body_of(first, 201)
    assert refund["data"]["type"] == "refunds" and refund["data"]["id"].startswith("rfd_")
    assert refund["data"]["attributes"] | {"reference_id": None} == {
        "invoice_id": paid["id"],
        "reference_id": None,
        "amount": Decimal("40.00"),
        "currency": "USD",
        "status": "processed",
        "resolution": "ok",
        "description": "returned one",
        "created": 1_767_225_600,
        "updated": 1_767_225_600,
    }
    assert refund["data"]["relationships"]["payment-invoice"]["data"]["id"] == paid["id"]
    assert refund["included"][0]["attributes"]["status"] == "partially_refunded"
    assert body_of(second, 201)["included"][0]["attributes"]["status"] == "refunded"
    assert errors_of(over) == (422, ["amount_exceeds_refundable"])
    invoice = body_of(merchant.get(f"/api/payment-invoices/{paid['id']}"))
    assert invoice["data"]["attributes"]["refunded_amount"] == Decimal("100.55")
    assert [r["id"] for r in invoice["included"]] == [
        r["id"] for r in invoice["data"]["relationships"]["refunds"]["data"]
    ]
    assert [r["attributes"]["amount"] for r in invoice["included"]] == [
        Decimal("40.00"),
        Decimal("60.55"),
    ]


def test_a_refund_without_an_amount_takes_what_is_left(merchant):
    paid = merchant.paid(Decimal("1000"), currency="JPY", **by_test_service(100, "JPY"))
    merchant.refund(paid["id"], 300)

    rest = body_of(merchant.refund(paid["id"]), 201)

    assert rest["data"]["attributes"]["amount"] == 700
    assert rest["included"][0]["attributes"]["status"] == "refunded"


@pytest.mark.parametrize(
    ("more", "code"),
    [
        ({"reference_id": None}, "required"),
        ({"invoiceId": "cpi_other"}, "invalid_value"),
        ({"amount": Decimal("1.001")}, "invalid_amount_precision"),
        ({"amount": Decimal("100.01")}, "amount_exceeds_refundable"),
    ],
)
def test_a_bad_refund_is_refused_and_changes_nothing(merchant, more, code):
    paid = merchant.paid()
    attributes = {"invoiceId": paid["id"], "reference_id": "rf-1", "amount": 1, **more}
    body = {"data": {"type": "refund", "attributes": attributes}}

    answer = merchant.post(f"/api/payment-invoices/{paid['id']}/refund", body)

    assert errors_of(answer) == (422, [code])
    assert merchant.state()["refunds"] == {}
    assert merchant.read(paid["id"])["status"] == "processed"


def test_an_unpaid_invoice_is_not_refunded(merchant):
    for invoice in (merchant.invoice(), merchant.held(), merchant.invoice(**by_test_service(0))):
        assert errors_of(merchant.refund(invoice["id"], 1)) == (422, ["invalid_status"])


def test_a_refund_resent_is_a_duplicate_even_once_all_is_refunded(merchant):
    paid = merchant.paid()
    merchant.refund(paid["id"], reference_id="rf-all")

    again = merchant.refund(paid["id"], reference_id="rf-all")

    assert errors_of(again) == (422, ["duplicate_reference_id"])
    assert len(merchant.state()["refunds"]) == 1


def test_a_pending_refund_holds_its_amount_until_settled(pending, http):
    paid = pending.paid(Decimal("50.00"))
    first = body_of(pending.refund(paid["id"], Decimal("30.00")), 201)
    second = body_of(pending.refund(paid["id"], Decimal("20.00")), 201)

    assert first["data"]["attributes"]["status"] == "processing"
    assert pending.read(paid["id"])["status"] == "refunding"
    assert errors_of(pending.refund(paid["id"], Decimal("0.01"))) == (
        422,
        ["amount_exceeds_refundable"],
    )

    settled = body_of(
        pending.post(f"/_sandbox/refunds/{first['data']['id']}/settle", {"outcome": "processed"})
    )
    failed = body_of(
        pending.post(
            f"/_sandbox/refunds/{second['data']['id']}/settle", {"outcome": "process_failed"}
        )
    )

    assert settled["data"]["attributes"]["status"] == "processed"
    assert settled["included"][0]["attributes"]["status"] == "refunding"  # the second pends
    assert failed["data"]["attributes"] | {"updated": 0} == {
        **second["data"]["attributes"],
        "status": "process_failed",
        "resolution": "declined",
        "updated": 0,
    }
    after = pending.read(paid["id"])
    assert (after["status"], after["refunded_amount"]) == ("partially_refunded", Decimal("30.00"))
    again = pending.post(
        f"/_sandbox/refunds/{first['data']['id']}/settle", {"outcome": "processed"}
    )
    assert errors_of(again) == (422, ["invalid_status"])
    assert body_of(pending.refund(paid["id"]), 201)["data"]["attributes"]["amount"] == Decimal(
        "20.00"
    )


# -- chargebacks and expiry ------------------------------------------------------------


def test_a_chargeback_takes_part_then_all_of_what_is_left(merchant):
    paid = merchant.paid(Decimal("100.00"))
    merchant.refund(paid["id"], Decimal("10.00"))

    part = body_of(merchant.post(f"/_sandbox/invoices/{paid['id']}/chargeback", {"amount": 40}))
    rest = body_of(merchant.post(f"/_sandbox/invoices/{paid['id']}/chargeback"))

    assert part["data"]["attributes"]["status"] == "partially_charged_back"
    after = rest["data"]["attributes"]
    assert (after["status"], after["charged_back_amount"]) == ("charged_back", Decimal("90.00"))
    assert errors_of(merchant.refund(paid["id"], 1)) == (422, ["invalid_status"])


def test_an_unpaid_invoice_expires_when_read_after_its_lifetime(merchant, clock):
    invoice = merchant.invoice()
    soon = merchant.invoice(expires=1_767_225_600 + 60)
    clock.now += 61

    assert merchant.read(soon["id"])["status"] == "expired"
    assert merchant.read(invoice["id"])["status"] == "created"
    clock.now += 24 * 3600

    expired = merchant.read(invoice["id"])
    assert (expired["status"], expired["resolution"]) == ("expired", "expired")


def test_the_lifetime_is_an_option(paycore_sandbox_server, http, clock):
    merchant = serve(paycore_sandbox_server, http, clock=clock, invoice_lifetime=600)

    assert merchant.invoice()["attributes"]["expires"] == 1_767_225_600 + 600


def test_the_control_route_expires_an_unpaid_invoice_only(merchant):
    invoice = merchant.invoice()
    paid = merchant.paid()

    expired = body_of(merchant.post(f"/_sandbox/invoices/{invoice['id']}/expire"))

    assert expired["data"]["attributes"]["status"] == "expired"
    assert errors_of(merchant.post(f"/_sandbox/invoices/{paid['id']}/expire")) == (
        422,
        ["invalid_status"],
    )
