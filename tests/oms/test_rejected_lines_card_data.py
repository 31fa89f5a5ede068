"""A rejected instruction line is reported without the card number it carried."""

from __future__ import annotations

import json

import pytest

from paycore.errors import InvalidRequest
from paycore.oms import Instruction
from paycore.oms.jobs import read_instructions

PAN = "4111111111111111"


@pytest.mark.parametrize(
    "line",
    [
        json.dumps({"op": "capture", "order_id": "o-1", PAN: 1}),
        json.dumps({"op": f"capture {PAN}", "order_id": "o-1"}),
        json.dumps(
            {"op": "refund", "order_id": "o-1", "return_id": "r", "amount": 1, "currency": PAN}
        ),
        "not json: card 4111 1111 1111 1111, cvv 737",
        f"not json, where a cut would fall in the number: {PAN}",
    ],
)
def test_a_rejected_line_masks_the_card_number_it_carried(line: str) -> None:
    (read,) = read_instructions([line])

    assert read.rejected and read.reason
    digits = "".join(char for char in read.reason if char.isdigit())
    assert PAN[:-4] not in digits and "737" not in read.reason


@pytest.mark.parametrize(
    "data",
    [
        {"op": "capture", "order_id": "o-1", PAN: 1},
        {"op": f"capture {PAN}", "order_id": "o-1"},
        {"op": "capture", "order_id": "o-1", "fulfillment_id": "s", "amount": 1, "currency": PAN},
    ],
)
def test_an_instruction_refused_names_no_card_number_nor_chains_one(
    data: dict[str, object],
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        Instruction.from_json(data)

    chain, error = [], refused.value
    while error is not None:
        chain.append(f"{error!s} {error!r}")
        error = error.__cause__ or error.__context__
    assert PAN[:-4] not in " ".join(chain)
