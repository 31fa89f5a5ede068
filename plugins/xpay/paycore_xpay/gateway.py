"""XPAY (xpay.com.ua): one RPC endpoint, every request and answer an AES+RSA envelope.

A sale is a checkout link (10005) paid on XPAY's hosted page (a payment link is the
same page); 20003 reads a status by OperationID or by TransactionID + TerminalID (the
idempotency key); 30203 refunds, whole or in part, repeatedly. No authorization,
capture or void. Callbacks are unsigned GETs, each confirmed with 20003 before it
counts. Protocol notes: providers.md §2; [PROPOSAL]s are marked in the modules.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx

from paycore.errors import InvalidRequest
from paycore.gateways.base import (
    Capabilities,
    Exchange,
    Gateway,
    GatewayConfig,
    Operation,
    load_schema,
)
from paycore.money import Money
from paycore.transactions.model import (
    CheckoutKind,
    CheckoutSession,
    GatewayResult,
    PaymentMethodOption,
    PaymentRequest,
    TransactionType,
    WebhookHandling,
    WebhookRequest,
)
from paycore_xpay import callbacks, payloads
from paycore_xpay.answers import OperationState, read
from paycore_xpay.config import XpayConfig, config_problems
from paycore_xpay.messages import NAME, Answer, OperationType, read_answer, request_body
from paycore_xpay.methods import options_for
from paycore_xpay.results import (
    checkout_session,
    declined,
    link_result,
    not_refundable,
    payment_result,
    refund_result,
    refund_state_result,
    refused,
)

__all__ = ["XpayConfig", "XpayGateway"]

NOT_FOUND = "404"
# The operation paycore's transaction of each type made at XPAY.
OPERATION_TYPES = {
    TransactionType.SALE: OperationType.CHECKOUT_LINK,
    TransactionType.REFUND: OperationType.REFUND,
}


class XpayGateway(Gateway):
    name: ClassVar[str] = NAME
    display_name: ClassVar[str] = "XPAY"
    capabilities: ClassVar[Capabilities] = Capabilities(
        operations={
            Operation.PAYMENT_METHODS,
            Operation.CREATE_CHECKOUT,
            Operation.SALE,
            Operation.REFUND,
            Operation.FETCH_STATUS,
            Operation.HANDLE_WEBHOOK,
        },
        partial_refund=True,
        multiple_refund=True,
        idempotency_keys=True,  # TransactionID + TerminalID: a repeat answers as the first
        idempotency_window=None,
        currencies={payloads.CURRENCY},
        webhook_signing=None,  # unsigned: each callback is confirmed with 20003
        checkout_kinds={CheckoutKind.HOSTED_PAGE, CheckoutKind.PAYMENT_LINK},
    )
    config_type: ClassVar[type[GatewayConfig]] = XpayConfig
    config_schema: ClassVar[Mapping[str, Any]] = load_schema(__package__, "config.schema.json")
    config: XpayConfig

    @classmethod
    def config_problems_in(cls, mapping: Mapping[str, Any]) -> list[str]:
        """The schema's problems, the keys' and the rules across settings."""
        return config_problems(cls.config_schema, mapping)

    def payment_methods(
        self, amount: Money, *, country: str | None = None
    ) -> Exchange[tuple[PaymentMethodOption, ...]]:
        yield from ()  # the config lists them: nothing to ask XPAY
        return options_for(self.config.payment_methods, amount)

    def create_checkout(
        self, request: PaymentRequest, *, kind: CheckoutKind = CheckoutKind.HOSTED_PAGE
    ) -> Exchange[CheckoutSession]:
        # A payment link is the same hosted page, sent to the customer instead of opened.
        kind = CheckoutKind(kind)
        if kind not in self.capabilities.checkout_kinds:
            raise self.unsupported_checkout(kind)
        answer = yield from self._checkout_link(request)
        if not answer.ok:
            raise refused(answer, f"the {kind.value.replace('_', ' ')}")
        return checkout_session(read.checkout_link(answer.success_data(read, "10005")), kind)

    def sale(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        answer = yield from self._checkout_link(request)
        if not answer.ok:
            return declined(answer)
        return link_result(read.checkout_link(answer.success_data(read, "10005")))

    def refund(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        """30203 needs the payment's TxnID, which 20003 gives (with what is refundable).

        When some of the payment was refunded before, one of those refunds may be this
        one, sent before and its answer lost: 20003 by this refund's transaction id
        finds it, and it is not sent again (resent, its Sum could differ from the
        first's, which XPAY refuses as a conflict).
        """
        payloads.check_currency(request)
        operation = payloads.operation_id(request)
        answer = yield from self._status(payloads.status_of_operation(operation))
        if answer.code == NOT_FOUND:
            return declined(answer, request.gateway_reference)
        payment = self._state(answer, OperationType.CHECKOUT_LINK, operation_id=operation)
        if payment.refunded_sum:
            earlier = yield from self._state_of(request.transaction_id, OperationType.REFUND)
            if earlier is not None:
                if earlier.parent_operation_id != operation:
                    raise read.error("the refund found refunds another payment")
                return refund_state_result(earlier)
        refusal = not_refundable(payment, request.amount.minor_units)
        if refusal is not None:
            return refusal
        response = yield self._request(
            OperationType.REFUND,
            payloads.refund(self.config, request, payment, now=_now()),
            mutation=True,
        )
        answer = self._answer(response, mutation=True)
        if not answer.ok:
            return declined(answer, request.gateway_reference)
        refund = read.refund_answer(answer.success_data(read, "30203"))
        if refund.parent_operation_id not in (None, operation):
            raise read.error("the refund's ParentOperationID is not the payment refunded")
        return refund_result(refund, payment=operation)

    def fetch_status(self, request: PaymentRequest) -> Exchange[GatewayResult]:
        """Where ``request``'s sale or refund stands, found by its TransactionID +
        TerminalID, so an operation whose first answer was lost is found too.

        XPAY's 404 means it never made the operation: `GatewayResult.not_found`, final
        once no attempt of the original request can still be in flight.
        """
        expected = OPERATION_TYPES.get(request.transaction_type)
        if expected is None:
            raise InvalidRequest(
                f"XPAY makes sales and refunds only; there is no {request.transaction_type} "
                "to ask about"
            )
        state = yield from self._state_of(request.transaction_id, expected)
        if state is None:
            return GatewayResult.not_found(request)
        if expected is OperationType.REFUND:
            return refund_state_result(state)
        return payment_result(state)

    def handle_webhook(self, delivery: WebhookRequest) -> Exchange[WebhookHandling]:
        at = delivery.received_at or _now()
        callback = callbacks.parse_callback(delivery)
        if callback is None:  # a command paycore does not follow: acknowledged, no event
            return WebhookHandling(reply=callbacks.reply(delivery.query.get("txn_id"), at=at))
        callbacks.check_terminal(callback, self.config.terminal_id)
        if callback.command == callbacks.CHECK:
            check = callbacks.payment_check(callback, at=at)
            return WebhookHandling(check=check, reply=check.reject)
        answer = yield from self._status(payloads.status_of_operation(callback.operation_id))
        if answer.code == NOT_FOUND:
            raise callbacks.not_found(callback)
        event = callbacks.confirmed_event(callback, self._state(answer))
        return WebhookHandling(events=(event,), reply=callbacks.reply(callback.txn_id, at=at))

    # -- the steps operations share ------------------------------------------------------

    def _checkout_link(self, request: PaymentRequest) -> Exchange[Answer]:
        """10005 for ``request``: XPAY's answer, a success or a refusal."""
        payloads.check_payment(request, self.config)
        response = yield self._request(
            OperationType.CHECKOUT_LINK,
            payloads.checkout_link(self.config, request, now=_now()),
            mutation=True,
        )
        return self._answer(response, mutation=True)

    def _state_of(
        self, transaction_id: str, expected: OperationType
    ) -> Exchange[OperationState | None]:
        """The operation paycore's ``transaction_id`` made, of type ``expected``; None
        when XPAY has none."""
        answer = yield from self._status(
            payloads.status_of_transaction(self.config, transaction_id)
        )
        if answer.code == NOT_FOUND:
            return None
        state = self._state(answer, expected)
        if (state.transaction_id, state.terminal_id) != (transaction_id, self.config.terminal_id):
            raise read.error("XPAY answered about another transaction than the one asked")
        return state

    def _status(self, data: Mapping[str, Any]) -> Exchange[Answer]:
        """20003: a success, or 404 (no such operation); other refusals are errors."""
        response = yield self._request(OperationType.OPERATION_STATUS, data, mutation=False)
        answer = self._answer(response, mutation=False)
        if not (answer.ok or answer.code == NOT_FOUND):
            raise read.error(
                f"XPAY refused the status request (code {answer.code})",
                http_status=answer.http_status,
            )
        return answer

    def _state(
        self,
        answer: Answer,
        expected: OperationType | None = None,
        *,
        operation_id: int | None = None,
    ) -> OperationState:
        state = read.operation_state(answer.success_data(read, "20003"))
        if expected is not None and state.operation_type != expected:
            raise read.error(
                f"XPAY's operation is a {state.operation_type}, not the {int(expected)} asked about"
            )
        if operation_id is not None and state.operation_id != operation_id:
            raise read.error("XPAY answered about another operation than the one asked")
        return state

    def _answer(self, response: httpx.Response, *, mutation: bool) -> Answer:
        return read_answer(response, self.config, read, mutation=mutation)

    def _request(
        self, operation: OperationType, data: Mapping[str, Any], *, mutation: bool
    ) -> httpx.Request:
        """The one place requests are built: the endpoint, the Partner block, the
        sealed Data. A mutation is idempotent: XPAY answers a repeat of its
        TransactionID + TerminalID as it answered the first."""
        return self.build_request(
            "POST",
            self.config.url,
            json=request_body(self.config, operation, data),
            headers={"Accept": "application/json"},
            mutation=mutation,
            idempotent=True,
        )


def _now() -> datetime:
    return datetime.now(UTC)
