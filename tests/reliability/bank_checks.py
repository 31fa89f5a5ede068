"""The bank check's verdict: the invariants that must hold once the workers stopped and
reconciliation ran, and a short summary of what the run did.

Every check returns the problems it found as sentences (empty when it holds), so one
failed run reports every broken invariant at once, not only the first.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from paycore.sandbox.base import Sandbox
from paycore.transactions import states
from paycore.transactions.reconcile import ReconcileReport
from paycore.transactions.records import UNRESOLVED, PaymentTransaction
from paycore.transactions.schema import webhook_events
from paycore.transactions.services import PaymentTransactionServices
from tests.reliability.bank_workers import PoolPayment, WorkerSummary

# A transaction status the worker saw that nothing may change afterwards.
FINAL_ONCE_SEEN = {"succeeded", "declined"}
# At most this many examples of one problem are quoted.
EXAMPLES = 3

# What a provider's sandbox says a payment captured and refunded, in minor units:
# ``totals(name, state, gateway_reference, currency)``.
ProviderTotals = Callable[[str, Mapping[str, Any], str, str], tuple[int, int]]


def read_attempts(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Every attempt the workers wrote down, in worker then time order."""
    return [
        json.loads(line) for path in paths for line in path.read_text(encoding="utf-8").splitlines()
    ]


def _quoted(problems: Sequence[str], what: str) -> list[str]:
    if not problems:
        return []
    more = f" (and {len(problems) - EXAMPLES} more)" if len(problems) > EXAMPLES else ""
    return [f"{what}: {'; '.join(problems[:EXAMPLES])}{more}"]


def workers_accounted_for(
    summaries: Sequence[WorkerSummary], attempts: Sequence[dict[str, Any]], workers: int
) -> list[str]:
    """Every worker answered, and wrote down every attempt it counted; none met an
    exception the API does not promise."""
    problems = []
    if sorted(summary.worker for summary in summaries) != list(range(workers)):
        problems.append(f"workers answered: {sorted(s.worker for s in summaries)}")
    written = Counter(attempt["worker"] for attempt in attempts)
    for summary in summaries:
        if written[summary.worker] != summary.attempts:
            problems.append(
                f"worker {summary.worker} counted {summary.attempts} attempts and wrote "
                f"down {written[summary.worker]}"
            )
    unexpected = [
        f"{a['op']} {a.get('key', '')}: {a['error']}: {a['message']}\n{a['traceback']}"
        for a in attempts
        if a["outcome"] == "unexpected"
    ]
    return problems + _quoted(unexpected, "exceptions the workers could not handle")


def attempts_in_the_ledger(
    attempts: Sequence[dict[str, Any]], transactions: Mapping[str, PaymentTransaction]
) -> list[str]:
    """Each transaction a worker was handed is in the ledger, under the worker's key,
    payment and operation; what it saw settled stayed so; every transaction the
    workers made was handed to one of them; a key always gave the same transaction."""
    missing, wrong, changed = [], [], []
    handed: dict[str, set[str]] = defaultdict(set)  # key -> transaction ids
    for attempt in attempts:
        transaction_id = attempt.get("transaction_id")
        if transaction_id is None:
            continue
        handed[attempt["key"]].add(transaction_id)
        recorded = transactions.get(transaction_id)
        if recorded is None:
            missing.append(f"{attempt['key']} -> {transaction_id}")
            continue
        seen = (attempt["key"], attempt["payment_id"], attempt["op"])
        if (recorded.idempotency_key, recorded.payment_id, str(recorded.type)) != seen:
            wrong.append(f"{seen} -> {recorded.type} {recorded.idempotency_key}")
        if attempt["outcome"] in FINAL_ONCE_SEEN and str(recorded.status) != attempt["outcome"]:
            changed.append(f"{transaction_id} seen {attempt['outcome']}, now {recorded.status}")
    two = [f"{key}: {sorted(ids)}" for key, ids in handed.items() if len(ids) > 1]
    given = {transaction_id for ids in handed.values() for transaction_id in ids}
    made = {
        transaction.id
        for transaction in transactions.values()
        if str(transaction.type) in ("capture", "refund", "void")
    }
    unknown_to_workers = sorted(made - given)
    return [
        *_quoted(missing, "transactions handed to workers but not in the ledger"),
        *_quoted(wrong, "transactions recorded otherwise than asked"),
        *_quoted(changed, "settled transactions that changed afterwards"),
        *_quoted(two, "keys that gave two transactions"),
        *_quoted(unknown_to_workers, "transactions no worker was handed"),
    ]


def keys_unique(transactions: Iterable[PaymentTransaction]) -> list[str]:
    """No idempotency key has two transactions (the workers' keys name their payment)."""
    counts = Counter(transaction.idempotency_key for transaction in transactions)
    return _quoted(
        [key for key, count in counts.items() if count > 1], "keys with two transactions"
    )


def nothing_unresolved(
    transactions: Iterable[PaymentTransaction], report: ReconcileReport
) -> list[str]:
    """Reconciliation left no transaction pending, unknown or processing."""
    notes = {row.transaction_id: row.note for row in report.rows}
    left = [
        f"{t.id} ({t.type} {t.status}: {notes.get(t.id, 'not checked')})"
        for t in transactions
        if t.status in UNRESOLVED
    ]
    return _quoted(left, "transactions unresolved after reconciliation")


def payments_agree(
    services: PaymentTransactionServices,
    pool: Sequence[PoolPayment],
    sandboxes: Mapping[str, Sandbox],
    provider_totals: ProviderTotals,
) -> list[str]:
    """Each payment's totals hold (captured <= authorized, refunded <= captured, equal
    to a replay of its transactions) and equal what its provider's sandbox says."""
    snapshots = {name: sandbox.snapshot() for name, sandbox in sandboxes.items()}
    broken: list[str] = []
    apart: list[str] = []
    for member in pool:
        payment = services.get_payment(member.payment_id)
        found = states.problems(payment, services.list_transactions(payment.id))
        broken.extend(f"{payment.id} ({payment.gateway}): {problem}" for problem in found)
        provider = provider_totals(
            payment.gateway,
            snapshots[payment.gateway],
            payment.gateway_reference or "",
            payment.amount.currency.code,
        )
        ledger = (payment.captured.minor_units, payment.refunded.minor_units)
        if ledger != provider:
            apart.append(
                f"{payment.id} ({payment.gateway}): captured, refunded {ledger} in the ledger, "
                f"{provider} at the provider"
            )
    return [
        *_quoted(broken, "payments whose totals break an invariant"),
        *_quoted(apart, "payments the ledger and the provider disagree on"),
    ]


def webhooks_applied_once(
    services: PaymentTransactionServices, sandboxes: Mapping[str, Sandbox]
) -> list[str]:
    """Every event a sandbox sent was delivered in the end, duplicates included; the
    ledger stored each event once, and matched each to the transaction it reports."""
    problems = []
    for name, sandbox in sandboxes.items():
        delivered = {a.event_id for a in sandbox.webhook_attempts if a.delivered}
        attempted = {a.event_id for a in sandbox.webhook_attempts}
        if lost := sorted(attempted - delivered):
            problems.extend(_quoted(lost, f"{name} events never delivered"))
    events = webhook_events.c
    with services.store.reading() as session:
        twice = session.connection.execute(
            sa.select(events.gateway, events.event_id)
            .group_by(events.gateway, events.event_id)
            .having(sa.func.count() > 1)
        ).all()
        unmatched = session.connection.execute(
            sa.select(events.gateway, events.event_id, events.disposition).where(
                events.disposition.in_(("unmatched", "mismatch"))
            )
        ).all()
    return [
        *problems,
        *_quoted([f"{g} {e}" for g, e in twice], "events stored twice"),
        *_quoted([f"{g} {e} ({d})" for g, e, d in unmatched], "events matched to nothing"),
    ]


def webhook_dispositions(services: PaymentTransactionServices) -> dict[str, int]:
    """What the web app did with the events it stored, by disposition."""
    with services.store.reading() as session:
        rows = session.connection.execute(
            sa.select(webhook_events.c.disposition, sa.func.count()).group_by(
                webhook_events.c.disposition
            )
        ).all()
    return {str(disposition): int(count) for disposition, count in rows}


def summary(
    attempts: Sequence[dict[str, Any]],
    seconds: float,
    *,
    reconciled: int,  # transactions checked after the run
    deliveries: Mapping[str, int],
    dispositions: Mapping[str, int],
    phases: Mapping[str, float],
) -> str:
    """A few lines: operations by outcome, per gateway, per second; the webhooks."""
    operations = [a for a in attempts if a["op"] != "reconcile"]
    by_outcome = Counter(a["outcome"] for a in operations)
    by_gateway: dict[str, Counter[str]] = defaultdict(Counter)
    for attempt in operations:
        by_gateway[attempt["gateway"]][attempt["outcome"]] += 1
    replays = sum(1 for a in operations if a["replay"])
    runs = sum(1 for a in attempts if a["op"] == "reconcile")

    def counted(counter: Mapping[str, int]) -> str:
        return ", ".join(f"{outcome} {count}" for outcome, count in sorted(counter.items()))

    lines = [
        f"bank: {len(operations)} operations in {seconds:g} s "
        f"({len(operations) / seconds:.1f}/s), {replays} of them replays by their worker; "
        f"{runs} reconcile runs during, {reconciled} transactions checked after",
        f"  by outcome: {counted(by_outcome)}",
        *(
            f"  {gateway}: {sum(counter.values())} ({counted(counter)})"
            for gateway, counter in sorted(by_gateway.items())
        ),
        f"  webhook deliveries: {counted(deliveries)}; events stored: {counted(dispositions)}",
        "  seconds: " + ", ".join(f"{phase} {took:.1f}" for phase, took in phases.items()),
    ]
    return "\n".join(lines)


def delivery_counts(sandboxes: Mapping[str, Sandbox]) -> dict[str, int]:
    """The sandboxes' delivery attempts: sent, delivered, duplicates, failed."""
    attempts = [a for sandbox in sandboxes.values() for a in sandbox.webhook_attempts]
    return {
        "attempts": len(attempts),
        "delivered": sum(a.delivered for a in attempts),
        "duplicates": sum(a.duplicate for a in attempts),
        "refused or failed": sum(not a.delivered for a in attempts),
    }
