"""Every exception paycore raises on purpose.

The tree::

    PaycoreError
     ├── ConfigurationError        a settings file or gateway config is wrong (lists every problem)
     ├── PluginError               a plugin is missing or failed to load (carries the real cause)
     ├── UnsupportedOperation      the gateway does not offer this operation
     ├── InvalidRequest            bad input to the API; nothing was changed
     │    ├── InvalidAmount        a float, a non-integer, too many decimals, not positive …
     │    ├── CurrencyMismatch     money of two currencies combined or compared
     │    └── NotFound             no payment or transaction has the id given
     ├── StateError                the payment's state forbids the operation
     ├── IdempotencyConflict       the key was used before for a different request
     ├── PaymentBusy               another mutation of the payment is pending or unknown
     └── GatewayError              talking to a provider went wrong
          ├── GatewayUnavailable   not sent, or refused before processing: safe to retry
          ├── OutcomeUnknown       sent, no definitive answer: reconcile, never blind-retry
          ├── GatewayProtocolError the provider's answer could not be understood
          ├── GatewayAuthError     the provider rejected our credentials
          ├── GatewayRefused       the provider answered that it will not: nothing was done
          └── WebhookSignatureError a webhook or callback failed verification

A decline is not an exception: it is a `GatewayResult` with outcome ``declined``.

Every error pickles with its details, so it survives a trip through a job queue.
Messages say what was wrong and what to do about it. They never contain card data,
secrets or credential headers: exchanges are scrubbed before anything is quoted.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "ConfigurationError",
    "CurrencyMismatch",
    "GatewayAuthError",
    "GatewayError",
    "GatewayProtocolError",
    "GatewayRefused",
    "GatewayUnavailable",
    "IdempotencyConflict",
    "InvalidAmount",
    "InvalidRequest",
    "NotFound",
    "OutcomeUnknown",
    "PaycoreError",
    "PaymentBusy",
    "PluginError",
    "StateError",
    "UnsupportedOperation",
    "WebhookSignatureError",
]


class PaycoreError(Exception):
    """Base of every exception paycore raises on purpose."""


class ConfigurationError(PaycoreError):
    """A settings file or a gateway config is invalid.

    ``problems`` lists every problem found, not only the first, each as one line
    naming where it is (``gateways.dummy.api_key: is required``).
    """

    def __init__(self, subject: str, problems: Iterable[str]) -> None:
        self.subject = subject
        self.problems: tuple[str, ...] = tuple(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{subject}: {count} {noun}\n{lines}" if count else subject)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.subject, self.problems), self.__dict__)


class PluginError(PaycoreError):
    """A plugin could not be found or loaded; ``__cause__`` holds the real error."""


class UnsupportedOperation(PaycoreError):
    """The gateway does not offer the operation (see its capabilities)."""

    def __init__(self, gateway: str, operation: str) -> None:
        self.gateway = gateway
        self.operation = operation
        super().__init__(
            f"gateway {gateway!r} does not support {operation!r}; "
            f"`paycore gateways show {gateway}` lists what it supports"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.gateway, self.operation), self.__dict__)


class InvalidRequest(PaycoreError):
    """Bad input to the API. Nothing was changed; fix the input and call again."""


class InvalidAmount(InvalidRequest):
    """An amount is not an exact, integral number of minor units of its currency."""


class CurrencyMismatch(InvalidRequest):
    """Money of two different currencies was combined or compared."""


class NotFound(InvalidRequest):
    """No payment or transaction has the id given (``kind`` says which was looked up)."""

    def __init__(self, kind: str, identifier: str) -> None:
        self.kind = kind
        self.identifier = identifier
        super().__init__(f"no {kind} {identifier[:64]!r}: check the id")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.kind, self.identifier), self.__dict__)


class StateError(PaycoreError):
    """The payment's current state forbids the operation (e.g. capture after void)."""


class IdempotencyConflict(PaycoreError):
    """The idempotency key was already used for a different request."""


class PaymentBusy(PaycoreError):
    """Another mutation of the same payment is pending or has an unknown outcome.

    Retry after it resolves (reconciliation resolves unknown outcomes).
    """


class GatewayError(PaycoreError):
    """Talking to a payment provider went wrong.

    ``gateway`` names the plugin, ``http_status`` and ``request_id`` identify the
    provider's answer when there was one. ``transcript`` is the scrubbed record of the
    exchange (a `paycore.gateways.scrub.Transcript`) when the driver raised it.
    """

    transcript: Any = None

    def __init__(
        self,
        message: str,
        *,
        gateway: str,
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        self.gateway = gateway
        self.http_status = http_status
        self.request_id = request_id
        details = [f"gateway {gateway!r}"]
        if http_status is not None:
            details.append(f"HTTP {http_status}")
        if request_id:
            details.append(f"request id {request_id}")
        self.message = message
        super().__init__(f"{message} ({', '.join(details)})")

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross process boundaries (job workers): keep the kind and the details.
        details = (self.message, self.gateway, self.http_status, self.request_id)
        return (_rebuild_gateway_error, (type(self), *details), self.__dict__)


class GatewayUnavailable(GatewayError):
    """The request was not sent, or the provider refused it before processing.

    Nothing happened at the provider: the operation is safe to retry.
    """


class OutcomeUnknown(GatewayError):
    """The request was sent but no definitive answer came back.

    The operation may or may not have happened. Do not retry blindly: reconcile
    by asking the provider for the status.
    """


class GatewayProtocolError(GatewayError):
    """The provider's answer could not be understood (malformed body, missing fields).

    When it answers a request that changed something, the driver reports it as
    `OutcomeUnknown` instead, with this error as the cause.
    """


class GatewayAuthError(GatewayError):
    """The provider rejected paycore's credentials; check the gateway's config."""


class GatewayRefused(GatewayError):
    """The provider answered, definitely, that it will not do what was asked.

    Nothing was done, so asking again unchanged will be refused again. For the
    operations whose refusal is not a payment decline: a checkout page or a saved
    method the provider will not create. A plugin raises it only on an answer that
    says so (a 4xx with the provider's reason), never for a lost or unreadable one;
    ``code`` is the provider's own reason code. The driver lets it through as it is.
    """

    def __init__(
        self,
        message: str,
        *,
        gateway: str,
        http_status: int | None = None,
        request_id: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, gateway=gateway, http_status=http_status, request_id=request_id)
        self.code = code


class WebhookSignatureError(GatewayError):
    """A webhook or callback failed verification; it was not applied."""


def _rebuild_gateway_error(
    kind: type[GatewayError],
    message: str,
    gateway: str,
    http_status: int | None,
    request_id: str | None,
) -> GatewayError:
    return kind(message, gateway=gateway, http_status=http_status, request_id=request_id)
