"""What the sync driver adds per call over raw httpx, against the dummy sandbox.

Drives N authorizations through `GatewayDriver` and N raw `httpx.Client.post` calls
of the same bodies and headers to the same server, interleaved in small blocks so
both see the same machine, and prints both medians and their difference. The
sandbox runs in its own process (`paycore sandbox serve`), as a provider would, so
its work does not share this process's interpreter lock with what is measured.
Target: the driver adds at most 0.15 ms per call (median); over it, the script exits
with status 1, so `make bench` fails on a regression.

    python bench/driver_overhead.py [N]
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid

import httpx
from _sandbox import sandbox_process

from paycore.gateways.driver import GatewayDriver
from paycore.gateways.dummy import DummyGateway
from paycore.money import Money
from paycore.transactions.model import PaymentMethod, PaymentRequest

TARGET_MS = 0.15
BLOCK = 50


def authorization(number: int) -> PaymentRequest:
    return PaymentRequest(
        transaction_id=f"txn_{uuid.uuid4().hex}",
        transaction_type="authorize",
        payment_id=f"pay_bench_{number}",
        amount=Money(1000 + number % 500, "USD"),
        payment_method=PaymentMethod(type="card", token="tok_visa"),
    )


def main(n: int) -> int:
    with sandbox_process() as config:
        gateway = DummyGateway.from_config(config)
        # Both clients talk to loopback: never through a proxy from the environment.
        with (
            httpx.Client(trust_env=False) as client,
            httpx.Client(trust_env=False, follow_redirects=False) as driver_client,
        ):
            driver = GatewayDriver(gateway, client=driver_client)  # with the installed hooks
            via_driver, raw = measure(n, gateway, driver, client)
    driver_ms = statistics.median(via_driver) * 1000
    raw_ms = statistics.median(raw) * 1000
    overhead = driver_ms - raw_ms
    within = overhead <= TARGET_MS
    print(f"calls:            {n} through the driver, {n} raw")
    print(f"raw httpx median: {raw_ms:.3f} ms")
    print(f"driver median:    {driver_ms:.3f} ms")
    print(f"ratio:            {driver_ms / raw_ms:.3f}x")
    print(f"overhead:         {overhead:+.3f} ms per call (target <= {TARGET_MS} ms)")
    print("result:           " + ("within target" if within else "OVER TARGET"))
    return 0 if within else 1


def measure(
    n: int, gateway: DummyGateway, driver: GatewayDriver, client: httpx.Client
) -> tuple[list[float], list[float]]:
    """Seconds per call through the driver and raw, interleaved in blocks."""
    via_driver: list[float] = []
    raw: list[float] = []
    # Warm both connection pools and the server.
    for i in range(20):
        driver.run(gateway.authorize(authorization(i)), operation="authorize")
        probe = next(gateway.authorize(authorization(i)))
        client.post(str(probe.url), content=probe.content, headers=probe.headers)
    for start in range(0, n, BLOCK):
        count = min(BLOCK, n - start)
        requests = [authorization(start + i) for i in range(count)]
        for request in requests:
            began = time.perf_counter()
            result = driver.run(gateway.authorize(request), operation="authorize")
            via_driver.append(time.perf_counter() - began)
            assert result.approved, result
        # The raw calls send exactly what the plugin builds, with fresh keys.
        prepared = [next(gateway.authorize(authorization(start + i))) for i in range(count)]
        for probe in prepared:
            url, body, headers = str(probe.url), probe.content, dict(probe.headers)
            began = time.perf_counter()
            response = client.post(url, content=body, headers=headers)
            raw.append(time.perf_counter() - began)
            assert response.status_code in (200, 201), response.text
    return via_driver, raw


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
