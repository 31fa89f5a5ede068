"""Instructions as a batch reads them: typed, validated, keyed by the merchant's ids."""

from __future__ import annotations

from typing import Any

import pytest

from paycore.errors import InvalidAmount, InvalidRequest
from paycore.money import Money
from paycore.oms import Instruction, InstructionKind


@pytest.mark.parametrize(
    ("data", "key"),
    [
        (
            {"op": "capture", "order_id": "o1", "fulfillment_id": "s1", "amount": 250,
             "currency": "EUR"},
            "capture:s1",
        ),
        ({"op": "cancel", "order_id": "o1"}, "cancel:order:o1"),
        (
            {"op": "cancel", "order_id": "o1", "cancellation_id": "c1", "amount": 5,
             "currency": "EUR"},
            "cancel:c1",
        ),
        (
            {"op": "refund", "order_id": "o1", "return_id": "r1", "amount": 1, "currency": "JPY"},
            "refund:r1",
        ),
    ],
)  # fmt: skip
def test_each_kind_reads_back_as_it_was_written_with_its_key(
    data: dict[str, Any], key: str
) -> None:
    instruction = Instruction.from_json(data)

    assert instruction.key == key
    assert instruction.as_json() == data
    assert Instruction.from_json(instruction.as_json()) == instruction


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        ([], InvalidRequest, "JSON object"),
        ({"op": "ship", "order_id": "o1"}, InvalidRequest, "op must be one of"),
        ({"order_id": "o1"}, InvalidRequest, "op must be one of"),
        ({"op": "capture", "order_id": "o1", "amount": 1, "currency": "EUR"}, InvalidRequest,
         "needs a fulfillment_id"),
        ({"op": "capture", "order_id": "o1", "fulfillment_id": "s1"}, InvalidRequest,
         "needs an amount"),
        ({"op": "capture", "order_id": "o1", "fulfillment_id": "s1", "amount": 2.5,
          "currency": "EUR"}, InvalidAmount, "integer of minor units"),
        ({"op": "capture", "order_id": "o1", "fulfillment_id": "s1", "amount": "250",
          "currency": "EUR"}, InvalidAmount, "integer of minor units"),
        ({"op": "capture", "order_id": "o1", "fulfillment_id": "s1", "amount": True,
          "currency": "EUR"}, InvalidAmount, "integer of minor units"),
        ({"op": "capture", "order_id": "o1", "fulfillment_id": "s1", "amount": 0,
          "currency": "EUR"}, InvalidAmount, "positive"),
        ({"op": "capture", "order_id": "o1", "fulfillment_id": "s1", "amount": 10**30,
          "currency": "EUR"}, InvalidAmount, ""),
        ({"op": "capture", "order_id": "o1", "fulfillment_id": "s1", "amount": 1,
          "currency": "XXQ"}, InvalidRequest, "XXQ"),
        ({"op": "capture", "order_id": "o1", "fulfillment_id": "s:1", "amount": 1,
          "currency": "EUR"}, InvalidRequest, "no ':'"),
        ({"op": "capture", "order_id": "o 1", "fulfillment_id": "s1", "amount": 1,
          "currency": "EUR"}, InvalidRequest, "order_id"),
        ({"op": "refund", "order_id": "o1", "fulfillment_id": "s1", "amount": 1,
          "currency": "EUR"}, InvalidRequest, "takes return_id"),
        ({"op": "refund", "order_id": "o1", "return_id": "r1", "amount": 1, "currency": "EUR",
          "final": True}, InvalidRequest, "only a capture"),
        ({"op": "cancel", "order_id": "o1", "drop_table": 1}, InvalidRequest, "unknown field"),
    ],
)  # fmt: skip
def test_a_bad_instruction_is_a_typed_error_saying_what_is_wrong(
    data: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message or None):
        Instruction.from_json(data)


def test_instructions_are_values() -> None:
    one = Instruction(
        kind=InstructionKind.CAPTURE, order_id="o1", reference="s1", amount=Money(5, "EUR")
    )
    assert one == Instruction.from_json(one.as_json())
    assert "capture" in repr(one)
