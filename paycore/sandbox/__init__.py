"""The kit every provider sandbox is built from (DESIGN §8).

`Sandbox` (base class: control routes, faults, webhooks), `FaultPlan` (what goes
wrong), `WebhookSender` (signed deliveries with retries), `SandboxServer` (uvicorn on
loopback, for tests and the demo), `WebhookReceiver` (a merchant endpoint that
records deliveries), `ExactJSONResponse` (answers with exact decimal amounts), and
the helpers in `state`, `idempotency`, `pages` and `cards`.
"""

from paycore.sandbox.base import Sandbox, SandboxError
from paycore.sandbox.faults import Fault, FaultInjector, FaultPlan, WebhookFault
from paycore.sandbox.responses import ExactJSONResponse
from paycore.sandbox.server import SandboxServer, serve_forever
from paycore.sandbox.webhook_receiver import ReceivedWebhook, WebhookReceiver
from paycore.sandbox.webhook_sender import DeliveryAttempt, WebhookSender

__all__ = [
    "DeliveryAttempt",
    "ExactJSONResponse",
    "Fault",
    "FaultInjector",
    "FaultPlan",
    "ReceivedWebhook",
    "Sandbox",
    "SandboxError",
    "SandboxServer",
    "WebhookFault",
    "WebhookReceiver",
    "WebhookSender",
    "serve_forever",
]
