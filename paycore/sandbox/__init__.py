"""The kit every provider sandbox is built from (DESIGN §8).

`Sandbox` (base class: control routes, faults, webhooks), `FaultPlan` (what goes
wrong), `WebhookSender` (signed deliveries with retries), `SandboxServer` (uvicorn on
loopback, for tests and the demo), and the helpers in `state`, `idempotency` and
`pages`.
"""

from paycore.sandbox.base import Sandbox, SandboxError
from paycore.sandbox.faults import Fault, FaultInjector, FaultPlan, WebhookFault
from paycore.sandbox.server import SandboxServer, serve_forever
from paycore.sandbox.webhook_sender import DeliveryAttempt, WebhookSender

__all__ = [
    "DeliveryAttempt",
    "Fault",
    "FaultInjector",
    "FaultPlan",
    "Sandbox",
    "SandboxError",
    "SandboxServer",
    "WebhookFault",
    "WebhookSender",
    "serve_forever",
]
