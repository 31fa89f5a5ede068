"""The gateway contract, part four: nothing sensitive comes out.

A card number is pushed through every flow (in a payment's description and metadata)
and the gateway's configured secrets are known; neither may appear in a transcript
handed to the ``paycore_gateway_exchange`` hook, in a log line, in any row of the
ledger, or in the message of an error raised on the way. See `paycore.testing.contract`.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import attrs
import httpx
import pytest

from paycore.errors import GatewayUnavailable, InvalidRequest, PaycoreError, WebhookSignatureError
from paycore.gateways.base import Gateway, Operation
from paycore.plugins import new_hook_manager
from paycore.testing.contract_base import WEBHOOK_WAIT, ContractBase
from paycore.testing.contract_support import ExchangeRecorder, ledger_text, needs
from paycore.testing.loopback import refused_address
from paycore.transactions.model import GatewayResult, TransactionType

if TYPE_CHECKING:
    from paycore.sandbox.base import Sandbox
    from paycore.sandbox.webhook_receiver import WebhookReceiver
    from paycore.testing.pytest_plugin import MakeServices
    from paycore.transactions.services import PaymentTransactionServices

__all__ = ["Scrubbing"]

OPENING = (Operation.AUTHORIZE, Operation.SALE)


class Scrubbing(ContractBase):
    """Card numbers and secrets never leave the flows they are pushed through."""

    @needs(any_of=OPENING)
    def test_no_card_number_or_secret_reaches_a_transcript_log_row_or_error(
        self,
        sandbox: Sandbox,
        gateway: Gateway,
        http: httpx.Client,
        webhook_receiver: WebhookReceiver,
        paycore_services: MakeServices,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG, logger="paycore")
        recorder = ExchangeRecorder()
        manager = new_hook_manager(load_entry_points=False)
        manager.register(recorder)
        hooks = manager.hook
        driver = self.driver_for(gateway, http, hooks=hooks)
        services = paycore_services({self.gateway_name: driver}, hooks=hooks)
        offline_gateway = self.build_gateway(sandbox, refused_address())
        offline = paycore_services(
            {self.gateway_name: self.driver_for(offline_gateway, http, hooks=hooks)}, hooks=hooks
        )
        errors: list[BaseException] = []

        self._through_the_services(services, errors)
        answer = self._through_the_gateway(gateway, offline_gateway, http, hooks, errors)
        self._open_marked(offline, errors)  # an exchange that fails, recorded
        if self.capabilities().supports(Operation.HANDLE_WEBHOOK):
            self._forged_webhook(sandbox, webhook_receiver, gateway, http, hooks, errors)

        assert len(recorder.transcripts) >= 4, "the exchanges were not handed to the hook"
        places = {
            "a transcript": json.dumps([t.as_dict() for t in recorder.transcripts], default=str),
            "the ledger": ledger_text(services.store),
            "an error message": "\n".join(f"{e!s}\n{e!r}" for e in errors),
            "the logs": caplog.text,
            # What the plugin itself hands back, whatever the core then keeps of it.
            "the gateway's result": repr(attrs.asdict(answer)),
        }
        secrets = {"the sentinel card number": self.sentinel_card_number}
        secrets.update(
            (f"config secret #{n}", value) for n, value in enumerate(gateway.secret_values(), 1)
        )
        leaks = [
            f"{label} in {place}"
            for label, value in secrets.items()
            for place, text in places.items()
            if value in text
        ]
        assert leaks == [], "; ".join(leaks)

    # -- flows -----------------------------------------------------------------------------

    def _marks(self) -> dict[str, Any]:
        number = self.sentinel_card_number
        return {
            "description": f"order paid with card {number}",
            "metadata": {"card_number": number, "note": f"customer typed {number}"},
        }

    def _open_marked(
        self,
        services: PaymentTransactionServices,
        errors: list[BaseException],
        method: Any = None,
    ) -> str | None:
        """Open a payment carrying the sentinel; its id, or None if paycore refused it."""
        try:
            payment = self.new_payment(services, method, **self._marks())
        except InvalidRequest as refused:  # refusing a card number is as good as hiding it
            errors.append(refused)
            return None
        try:
            self.open_payment(services, payment)
        except PaycoreError as error:
            errors.append(error)
        return payment.id

    def _through_the_services(
        self, services: PaymentTransactionServices, errors: list[BaseException]
    ) -> None:
        capabilities = self.capabilities()
        payment_id = self._open_marked(services, errors)
        self._open_marked(services, errors, self.declined)
        if payment_id is None:
            return
        follow_ups = [
            (Operation.CAPTURE, services.capture),
            (Operation.REFUND, services.refund),
        ]
        if self.opening_type() is TransactionType.SALE:
            follow_ups = follow_ups[1:]
        for operation, call in follow_ups:
            if capabilities.supports(operation):
                try:
                    call(payment_id)
                except PaycoreError as error:
                    errors.append(error)

    def _through_the_gateway(
        self,
        gateway: Gateway,
        offline: Gateway,
        http: httpx.Client,
        hooks: Any,
        errors: list[BaseException],
    ) -> GatewayResult:
        """The plugin's own part: a request carrying the sentinel, whatever paycore keeps."""
        kind = self.opening_type()
        request = self.direct_request(kind, "txn_contract_scrubbing", **self._marks())
        answer: GatewayResult = self.driver_for(gateway, http, hooks=hooks).run(
            getattr(gateway, kind.value)(request), operation=kind
        )
        with pytest.raises(GatewayUnavailable) as failed:
            self.driver_for(offline, http, hooks=hooks).run(
                getattr(offline, kind.value)(request), operation=kind
            )
        errors.append(failed.value)
        return answer

    def _forged_webhook(
        self,
        sandbox: Sandbox,
        receiver: WebhookReceiver,
        gateway: Gateway,
        http: httpx.Client,
        hooks: Any,
        errors: list[BaseException],
    ) -> None:
        assert sandbox.wait_for_webhooks(WEBHOOK_WAIT)
        if not receiver.received:
            return
        forged = attrs.evolve(receiver.received[0].as_request(), body=b'{"forged": true}')
        with pytest.raises(WebhookSignatureError) as refused:
            self.driver_for(gateway, http, hooks=hooks).run(
                gateway.handle_webhook(forged), operation=Operation.HANDLE_WEBHOOK
            )
        errors.append(refused.value)
