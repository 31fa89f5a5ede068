"""Order management: capture per fulfilment, cancel, refund per return; batch jobs.

See `paycore.oms.order_payments` for the API, `paycore.oms.model` for instructions.
"""

from paycore.oms.model import Instruction, InstructionKind, InstructionOutcome, InstructionResult
from paycore.oms.order_payments import AsyncOrderPayments, OrderPayments

__all__ = [
    "AsyncOrderPayments",
    "Instruction",
    "InstructionKind",
    "InstructionOutcome",
    "InstructionResult",
    "OrderPayments",
]
