"""The XPAY sandbox's refunds [30203] over real HTTP: whole and partial, repeated until
nothing is left, refused (422) beyond what is left or for a payment not paid, found by
[20003], idempotent by their pair."""

from __future__ import annotations

from typing import Any

import pytest

from plugins.xpay.tests.sandbox_client import REFUND, Partner, serve


@pytest.fixture
def partner(paycore_sandbox_server, http, clock) -> Partner:
    return serve(paycore_sandbox_server, http, clock=clock)


def refunded(partner: Partner, paid: dict[str, Any]) -> int:
    total: int = partner.operation(paid["OperationID"])["RefundedSum"]
    return total


def test_a_partial_refund_is_done_at_once(partner, clock):
    paid = partner.paid(PaymentSum=10_000)
    clock.now += 60

    refund = partner.refund(paid["TxnID"], 2_500).ok

    assert refund["OperationStatus"] == "10"
    assert (refund["Sum"], refund["ParentOperationID"]) == (2_500, paid["OperationID"])
    assert refund["TxnID"].isdigit() and refund["TxnID"] != paid["TxnID"]
    assert refund["OperationID"] != paid["OperationID"]
    assert refunded(partner, paid) == 2_500
    payment = partner.operation(paid["OperationID"])
    assert (payment["OperationStatus"], payment["Sum"]) == ("10", 10_000)


def test_partial_refunds_repeat_until_nothing_is_left(partner):
    paid = partner.paid(PaymentSum=10_000)

    sums = [partner.refund(paid["TxnID"], amount).ok["Sum"] for amount in (1_000, 4_000, 5_000)]
    after = partner.refund(paid["TxnID"], 1)

    assert sums == [1_000, 4_000, 5_000]
    assert refunded(partner, paid) == 10_000
    assert (after.code, after.message) == ("422", "nothing is left to refund of this payment")
    assert after.data is None


def test_a_refund_without_sum_refunds_the_whole_payment(partner):
    paid = partner.paid(PaymentSum=7_777)

    refund = partner.refund(paid["TxnID"]).ok

    assert refund["Sum"] == 7_777
    assert refunded(partner, paid) == 7_777


def test_a_refund_without_sum_after_a_partial_one_refunds_the_rest(partner):
    paid = partner.paid(PaymentSum=10_000)
    partner.refund(paid["TxnID"], 3_000)

    assert partner.refund(paid["TxnID"]).ok["Sum"] == 7_000
    assert refunded(partner, paid) == 10_000


def test_a_refund_of_more_than_is_left_is_422_and_nothing_changes(partner):
    paid = partner.paid(PaymentSum=10_000)
    partner.refund(paid["TxnID"], 6_000)
    before = partner.state()["operations"]

    answer = partner.refund(paid["TxnID"], 4_001)

    assert (answer.code, answer.message) == ("422", "Sum exceeds the 4000 kopecks left to refund")
    assert partner.state()["operations"] == before


def test_a_refund_of_a_payment_not_paid_is_422(partner):
    link = partner.link()
    partner.pay(link["URI"], "4000000000000002")
    declined = partner.operation(link["OperationID"])

    answer = partner.refund(declined["TxnID"], 100)

    assert (answer.code, answer.message) == ("422", "the payment is not paid (OperationStatus 21)")
    assert refunded(partner, declined) == 0


def test_a_refund_naming_a_refund_is_422_and_an_unknown_txn_id_404(partner):
    paid = partner.paid()
    refund = partner.refund(paid["TxnID"], 100).ok

    of_refund = partner.refund(refund["TxnID"], 50)
    unknown = partner.refund("99999999", 50)

    assert (of_refund.code, of_refund.message) == ("422", "TxnID names a refund, not a payment")
    assert (unknown.code, unknown.message) == ("404", "there is no payment of this TxnID")
    assert refunded(partner, paid) == 100


def test_a_refused_refund_leaves_its_pair_free(partner):
    paid = partner.paid(PaymentSum=1_000)

    refused = partner.refund(paid["TxnID"], 2_000, transaction_id="refund_1")
    accepted = partner.refund(paid["TxnID"], 500, transaction_id="refund_1")

    assert (refused.code, accepted.code) == ("422", "200")


def test_a_refund_is_found_by_its_operation_id_and_its_pair(partner, clock):
    paid = partner.paid()
    clock.now += 90
    refund = partner.refund(paid["TxnID"], 1_500, transaction_id="refund_7").ok

    by_id = partner.operation(refund["OperationID"])
    by_pair = partner.status(TransactionID="refund_7", TerminalID="1").ok

    assert (
        by_id
        == by_pair
        == {
            "OperationID": refund["OperationID"],
            "OperationType": REFUND,
            "TransactionID": "refund_7",
            "TerminalID": "1",
            "OperationStatus": "10",
            "Sum": 1_500,
            "DateTime": "2026-01-01 00:01:30",
            "TxnID": refund["TxnID"],
            "ParentOperationID": paid["OperationID"],
        }
    )


def test_a_refund_sent_again_is_done_once_and_answered_the_same(partner):
    paid = partner.paid(PaymentSum=10_000)
    data = {"Transaction": partner.transaction("refund_9"), "TxnID": paid["TxnID"], "Sum": 4_000}

    first = partner.call(REFUND, data).ok
    later = {**data, "Transaction": {**data["Transaction"], "DateTime": "2026-01-01 01:00:00"}}
    again = partner.call(REFUND, later).ok
    other = partner.call(REFUND, {**data, "Sum": 3_000})

    assert again == first
    assert other.code == "409"
    assert refunded(partner, paid) == 4_000


def test_a_replayed_refund_answers_the_first_answer_even_when_nothing_is_left(partner):
    paid = partner.paid(PaymentSum=2_000)
    data = {"Transaction": partner.transaction(), "TxnID": paid["TxnID"]}

    first = partner.call(REFUND, data).ok

    assert partner.call(REFUND, data).ok == first
    assert refunded(partner, paid) == 2_000


def test_the_state_lists_a_payments_refunds(partner):
    paid = partner.paid(PaymentSum=5_000)
    ids = [partner.refund(paid["TxnID"], 1_000).ok["OperationID"] for _ in range(2)]

    operations = partner.state()["operations"]

    payment = operations[str(paid["OperationID"])]
    assert (payment["refunds"], payment["refunded_sum"]) == (ids, 2_000)
    assert [operations[str(i)]["parent_operation_id"] for i in ids] == [paid["OperationID"]] * 2
    assert all(operations[str(i)]["operation_type"] == REFUND for i in ids)


def test_refunds_of_two_payments_are_kept_apart(partner):
    first, second = partner.paid(PaymentSum=1_000), partner.paid(PaymentSum=2_000)

    partner.refund(first["TxnID"], 1_000)
    partner.refund(second["TxnID"], 500)

    assert (refunded(partner, first), refunded(partner, second)) == (1_000, 500)
