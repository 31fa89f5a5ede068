"""The ``paycore`` command: plugins, settings, the database, reconciliation, sandboxes, the demo.

A mistake (an unknown gateway, a bad settings file, a bad option) prints one
``error: …`` line on stderr (a settings file's problems one per line beneath it) and
exits non-zero: 1 for paycore errors, 2 for usage errors. Heavy modules are imported
by the commands that need them, so ``paycore --help`` starts quickly.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from errno import EADDRINUSE
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlsplit

import click

from paycore import __version__
from paycore.errors import ConfigurationError, PaycoreError, PluginError

if TYPE_CHECKING:
    from datetime import timedelta

    from rich.console import Console

    from paycore.gateways.base import Capabilities
    from paycore.transactions.reconcile import ReconcileReport
    from paycore.transactions.store import Store

__all__ = ["cli", "main"]


class _Failure(click.ClickException):
    """A failure shown as ``error: …`` on stderr, without usage text or traceback."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.message}", err=True)


class _UsageFailure(_Failure):
    """A mistake in the command line itself."""

    exit_code = 2


def _usage_failure(error: click.UsageError) -> _Failure:
    message = error.format_message()
    if error.ctx is not None:
        message = f"{message} (see '{error.ctx.command_path} --help')"
    return _UsageFailure(" ".join(message.split()))


class _PaycoreGroup(click.Group):
    """The root group: turns every expected failure into a `_Failure`."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as error:
            raise _usage_failure(error) from error

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _Failure:
            raise
        except click.UsageError as error:
            raise _usage_failure(error) from error
        except click.ClickException as error:
            raise _Failure(error.format_message()) from error
        except PaycoreError as error:
            raise _Failure(str(error)) from error


class _State:
    """What the root options leave for the commands."""

    def __init__(self, config_path: Path | None) -> None:
        self.config_path = config_path


def _console() -> Console:
    from rich.console import Console

    return Console(highlight=False)


@click.group("paycore", cls=_PaycoreGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="paycore", message="%(prog)s %(version)s")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Settings file (default: $PAYCORE_CONFIG, else ./paycore.toml if present).",
)
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """Take payments through many providers with one API."""
    ctx.obj = _State(config_path)


def main() -> None:
    """Run the ``paycore`` command."""
    cli.main(prog_name="paycore")


# -- gateways ------------------------------------------------------------------------


@cli.group()
def gateways() -> None:
    """Installed gateway plugins."""


@gateways.command("list")
def gateways_list() -> None:
    """List the installed gateway plugins and what they offer."""
    from rich.table import Table
    from rich.text import Text

    from paycore import plugins

    installed = plugins.available_gateways()
    console = _console()
    if not installed:
        console.print("No gateway plugins are installed.")
        return
    table = Table("name", "display name", "distribution", "operations")
    failures: list[PluginError] = []
    for name, info in installed.items():
        try:
            cls = plugins.gateway_class(name)
        except PluginError as error:
            failures.append(error)
            table.add_row(name, Text("failed to load", style="red"), info.provider, "")
        else:
            table.add_row(
                name,
                Text(getattr(cls, "display_name", name)),
                info.provider,
                _operations_summary(cls.capabilities),
            )
    console.print(table)
    if len(failures) == 1:
        raise failures[0]
    if failures:
        raise PluginError(
            f"{len(failures)} gateway plugins failed to load: "
            + "; ".join(str(failure) for failure in failures)
        )


@gateways.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def gateways_show(name: str, as_json: bool) -> None:
    """Show a gateway plugin's capabilities and config schema."""
    from paycore import plugins

    cls = plugins.gateway_class(name)
    info = plugins.available_gateways()[name]
    document: dict[str, Any] = {
        "name": cls.name,
        "display_name": getattr(cls, "display_name", cls.name),
        "entry_point": info.target,
        "distribution": info.distribution,
        "version": info.version,
        "capabilities": cls.capabilities.as_dict(),
        "config_schema": cls.full_config_schema(),
    }
    if as_json:
        click.echo(json.dumps(document, indent=2, default=_jsonable))
        return

    from rich.table import Table
    from rich.text import Text

    console = _console()
    console.print(Text(f"{document['display_name']} ({name})", style="bold"))
    console.print(f"{info.target}, from {info.provider}")
    table = Table("capability", "value", title="Capabilities", title_justify="left")
    for key, value in document["capabilities"].items():
        label, shown = _capability_row(key, value)
        table.add_row(label, Text(shown))
    console.print(table)
    console.print(Text("Config schema", style="bold"))
    console.print_json(json.dumps(document["config_schema"], default=_jsonable))


def _operations_summary(capabilities: Capabilities) -> str:
    from paycore.gateways.base import Operation

    flags = {
        Operation.CAPTURE: (capabilities.partial_capture, capabilities.multiple_capture),
        Operation.REFUND: (capabilities.partial_refund, capabilities.multiple_refund),
    }
    words = []
    for operation in Operation:
        if operation not in capabilities.operations:
            continue
        partial, multiple = flags.get(operation, (False, False))
        detail = [word for word, on in (("partial", partial), ("multiple", multiple)) if on]
        words.append(f"{operation.value} ({', '.join(detail)})" if detail else operation.value)
    return ", ".join(words) or "none"


def _capability_row(key: str, value: Any) -> tuple[str, str]:
    label = key.removesuffix("_seconds").replace("_", " ")
    if isinstance(value, bool):
        return label, "yes" if value else "no"
    if value is None:
        return label, "-"
    if isinstance(value, list):
        return label, ", ".join(map(str, value)) or "none"
    if key.endswith("_seconds") and isinstance(value, int):
        return label, _duration(value)
    return label, str(value)


def _duration(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# -- settings ------------------------------------------------------------------------


@cli.group("config")
def config_group() -> None:
    """The settings file and the gateways it configures."""


@config_group.command("check")
@click.pass_obj
def config_check(state: _State) -> None:
    """Check the settings and build every configured gateway."""
    from paycore.config import build_gateways, load_settings, redact_url

    settings = load_settings(state.config_path)
    build_gateways(settings)
    console = _console()
    console.print(f"settings: {settings.source or 'defaults (no settings file)'}")
    console.print(f"database: {redact_url(settings.database_url)}")
    console.print(f"webhook base URL: {settings.webhook_base_url or '-'}")
    configured = [
        name if gateway.plugin == name else f"{name} ({gateway.plugin})"
        for name, gateway in settings.gateways.items()
    ]
    console.print(f"gateways: {', '.join(configured) or 'none'}")
    console.print("ok")


# -- database ------------------------------------------------------------------------


@cli.group("db")
def db_group() -> None:
    """The ledger's database schema (the database_url setting)."""


@db_group.command("upgrade")
@click.option(
    "--revision",
    default="head",
    show_default=True,
    metavar="REV",
    help="The revision to migrate to.",
)
@click.pass_obj
def db_upgrade(state: _State, revision: str) -> None:
    """Create or migrate the ledger's tables.

    Safe to run again, and from several processes at once: each waits for the one
    migrating, then finds nothing left to do.
    """
    from paycore.transactions.migrate import head_revision, upgrade

    with _ledger(state) as (store, shown_url):
        before, after = upgrade(store.engine, revision)
    head = " (head)" if after == head_revision() else ""
    click.echo(f"database: {shown_url}")
    if before == after:
        click.echo(f"revision: {after or 'none'}{head}, unchanged")
    else:
        click.echo(f"revision: {before or 'none'} -> {after}{head}")


@db_group.command("current")
@click.pass_obj
def db_current(state: _State) -> None:
    """Show the database's schema revision.

    Says whether it is the head: the newest revision this version of paycore knows,
    which 'paycore db upgrade' migrates to.
    """
    from paycore.transactions.migrate import head_revision, known_revisions

    with _ledger(state) as (store, shown_url):
        current = store.current_revision()
    head = head_revision()
    click.echo(f"database: {shown_url}")
    if current == head:
        click.echo(f"revision: {current} (head)")
    elif current is None or current in known_revisions():
        click.echo(f"revision: {current or 'none'} (not the head {head}: run 'paycore db upgrade')")
    else:
        click.echo(f"revision: {current} (unknown to this paycore, whose head is {head})")


@contextmanager
def _ledger(state: _State) -> Iterator[tuple[Store, str]]:
    """The settings' database, opened, and its URL redacted for display.

    Its failures become one-line errors naming it: a driver's message is quoted on
    one line, with the URL's password masked should the driver ever repeat it.
    """
    import sqlalchemy as sa
    from alembic.util import CommandError

    from paycore.config import load_settings, redact_url
    from paycore.transactions.store import Store

    url = load_settings(state.config_path).database_url
    shown_url = redact_url(url)

    def failure(message: object) -> _Failure:
        text = " ".join(str(message).split())
        try:
            password = sa.engine.make_url(url).password
        except sa.exc.ArgumentError:
            password = None
        if password:
            text = text.replace(str(password), "***")
        return _Failure(f"database {shown_url}: {text}")

    try:
        store = Store.connect(url)
    except ConfigurationError as error:
        raise failure("; ".join(error.problems)) from error
    except ImportError as error:
        raise failure(
            f"its driver is not installed (no module {error.name!r}); "
            "for PostgreSQL, install paycore[postgres]"
        ) from error
    try:
        yield store, shown_url
    except sa.exc.DBAPIError as error:
        raise failure(error.orig) from error
    except (sa.exc.SQLAlchemyError, CommandError) as error:
        raise failure(error) from error
    finally:
        store.close()


# -- reconciliation ------------------------------------------------------------------


def _older_than(ctx: click.Context, param: click.Parameter, value: str | None) -> timedelta | None:
    """A duration: a whole number and a unit, ``30s``, ``5m``, ``1h`` or ``2d``."""
    from paycore.errors import InvalidRequest
    from paycore.transactions.reconcile import parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value)
    except InvalidRequest as error:
        raise click.BadParameter(str(error)) from error


@cli.command()
@click.option(
    "--older-than",
    metavar="DURATION",
    callback=_older_than,
    help="Check transactions older than DURATION (30s, 5m, 1h, 2d) instead of 5m.",
)
@click.option("--dry-run", is_flag=True, help="List what is due; ask no gateway, record nothing.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    metavar="N",
    help="Check at most N transactions, oldest first.",
)
@click.pass_context
def reconcile(
    ctx: click.Context, older_than: timedelta | None, dry_run: bool, limit: int | None
) -> None:
    """Ask the gateways about transactions whose outcome the ledger does not know.

    Checks the pending, unknown and processing transactions older than the grace
    period (5 minutes) whose next check is due, and records what their gateways
    answer. One that a gateway cannot settle yet (still processing, no record yet, the
    gateway down) is left as it is, listed, and checked again 1 hour later, then
    daily: nothing is marked failed by guesswork. Then completes the checkouts still
    waiting past the grace period (their payments may just have been settled), and
    delivers the hook notifications a stopped process left behind. Uses the
    settings' database and gateways; run it every few minutes.

    \b
    Exit status:
      0  every transaction due was resolved, or none was due (always with --dry-run)
      1  some transactions stay unresolved (listed), or an error
      2  a usage error
    """
    from paycore.config import load_settings
    from paycore.transactions.reconcile import Reconciler
    from paycore.transactions.services import PaymentTransactionServices

    state: _State = ctx.obj
    settings = _with_gateways(load_settings(state.config_path), "none can be asked")
    with _ledger(state) as (store, _):
        services = PaymentTransactionServices.from_settings(settings, store=store)
        try:
            report = Reconciler(services).run(older_than=older_than, dry_run=dry_run, limit=limit)
            finished = None if dry_run else _finish_checkouts(services, settings, older_than)
        finally:
            services.close()
    _print_reconciliation(report)
    if finished:
        from rich.text import Text

        _console().print(Text(_checkouts_line(finished)))
    if report.unresolved and not report.dry_run:
        ctx.exit(1)


def _with_gateways(settings: Any, so: str) -> Any:
    """``settings``, or a one-line failure saying what cannot be done without a gateway."""
    if not settings.gateways:
        raise _Failure(
            f"{settings.subject}: no gateway is configured, so {so}; add a [gateways.NAME] table"
        )
    return settings


def _finish_checkouts(services: Any, settings: Any, older_than: timedelta | None) -> list[Any]:
    """Complete the checkouts waiting past the grace period (their payments may just
    have been settled): those whose customer never came back and whose webhook never
    came."""
    from paycore.checkout import CheckoutService
    from paycore.transactions.reconcile import DEFAULT_GRACE

    checkout = CheckoutService(
        services, capture=settings.checkout.capture, return_base_url=settings.webhook_base_url
    )
    return checkout.complete_unfinished(older_than=older_than or DEFAULT_GRACE)


def _checkouts_line(finished: list[Any]) -> str:
    counts = dict.fromkeys(("completed", "failed", "submitted"), 0)
    for checkout in finished:
        counts[str(checkout.status)] = counts.get(str(checkout.status), 0) + 1
    return (
        f"checkouts waiting past the grace period: {len(finished)}; "
        f"{counts['completed']} completed, {counts['failed']} failed, "
        f"{counts['submitted']} still waiting"
    )


def _print_reconciliation(report: ReconcileReport) -> None:
    from rich.table import Table
    from rich.text import Text

    console = _console()
    if report.rows:
        table = Table("transaction", "type", "amount", "status", "note")
        for row in report.rows:
            if report.dry_run:
                status = Text(row.before.value)
            else:
                style = "green" if row.resolved else "red" if row.error else "yellow"
                status = Text(f"{row.before.value} → {row.after.value}", style=style)
            table.add_row(
                Text(row.transaction_id, no_wrap=True),
                row.type.value,
                Text(str(row.amount), no_wrap=True),
                status,
                Text(row.note),
            )
        console.print(table)
    console.print(Text(report.summary()))


# -- sandboxes -----------------------------------------------------------------------


def _check_webhook_url(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is not None:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise click.BadParameter("must be an absolute http(s) URL")
    return value


@cli.group()
def sandbox() -> None:
    """Local servers that speak a provider's protocol."""


@sandbox.command("serve")
@click.argument("name")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8100, show_default=True, help="Port."
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="KNOB=VALUE",
    help="Inject a fault (repeatable), e.g. --fault latency=0.5 --fault error_rate=0.1.",
)
@click.option(
    "--webhook-url",
    metavar="URL",
    callback=_check_webhook_url,
    help="Where the sandbox delivers webhooks or callbacks.",
)
def sandbox_serve(
    name: str, host: str, port: int, faults: tuple[str, ...], webhook_url: str | None
) -> None:
    """Serve the sandbox NAME in the foreground until interrupted.

    Prints its URL and the gateway settings that talk to it (the sandbox's published
    test credentials), ready to paste into paycore.toml. --port 0 picks a free port.
    """
    from paycore import plugins
    from paycore.sandbox.faults import FaultPlan

    try:
        plan = FaultPlan.parse(list(faults))
    except ConfigurationError as error:
        raise click.BadParameter("; ".join(error.problems), param_hint="'--fault'") from error
    sandbox_type = plugins.sandbox_class(name)
    from paycore.sandbox.server import base_url, listen_on, serve_forever

    instance = sandbox_type(faults=plan, webhook_url=webhook_url)
    try:
        sock = listen_on(host, port)
    except OSError as error:
        address = base_url(host, port).removeprefix("http://")
        hint = "; choose another --port (0 picks a free one)" if error.errno == EADDRINUSE else ""
        raise _Failure(f"cannot listen on {address}: {error.strerror or error}{hint}") from error
    url = base_url(host, sock.getsockname()[1])
    click.echo(f"{name} sandbox on {url} (Ctrl-C to stop)")
    if faults:
        click.echo(f"faults: {', '.join(faults)}")
    click.echo("\nIts published test credentials, for paycore.toml:\n")
    click.echo(_toml_table(f"gateways.{name}", instance.gateway_config(url)))
    serve_forever(instance.app(), sock)


def _toml_table(name: str, values: Mapping[str, Any]) -> str:
    """``values`` as a TOML table named ``name`` (a dotted key)."""
    lines = [f"[{name}]"]
    lines += [f"{_toml_key(key)} = {_toml_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def _toml_key(key: str) -> str:
    bare = key and all(c.isascii() and (c.isalnum() or c in "-_") for c in key)
    return key if bare else _toml_value(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = "".join(
            f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c
            for c in value.replace("\\", "\\\\").replace('"', '\\"')
        )
        return f'"{escaped}"'
    if isinstance(value, Mapping):
        pairs = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return f"{{ {pairs} }}" if pairs else "{}"
    if isinstance(value, list | tuple):
        return f"[{', '.join(_toml_value(item) for item in value)}]"
    raise TypeError(f"{type(value).__name__} has no TOML form")


# -- the web app ---------------------------------------------------------------------


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port (0 picks a free one).",
)
@click.pass_obj
def serve(state: _State, host: str, port: int) -> None:
    """Serve paycore's web app in the foreground until interrupted.

    Providers' webhooks at /webhooks/GATEWAY, customers back from hosted pages at
    /return/GATEWAY, and /health; one log line per request. Uses the settings'
    database (run 'paycore db upgrade' first), gateways, [web] and [checkout];
    webhook_base_url should be the address providers and customers reach it at.
    """
    from paycore.config import load_settings
    from paycore.sandbox.server import base_url, listen_on, serve_forever
    from paycore.transactions.migrate import head_revision
    from paycore.web import create_app

    settings = _with_gateways(load_settings(state.config_path), "no webhook can be taken")
    with _ledger(state) as (store, shown_url):
        current = store.current_revision()
    if current != head_revision():
        raise _Failure(
            f"database {shown_url} is at revision {current or 'none'}, not "
            f"{head_revision()}: run 'paycore db upgrade'"
        )
    try:
        sock = listen_on(host, port)
    except OSError as error:
        address = base_url(host, port).removeprefix("http://")
        hint = "; choose another --port (0 picks a free one)" if error.errno == EADDRINUSE else ""
        raise _Failure(f"cannot listen on {address}: {error.strerror or error}{hint}") from error
    try:
        app = create_app(settings)
    except BaseException:
        sock.close()
        raise
    url = base_url(host, sock.getsockname()[1])
    click.echo(f"paycore on {url} (Ctrl-C to stop)")
    click.echo(f"gateways: {', '.join(settings.gateways)}")
    if settings.webhook_base_url is None:
        click.echo("note: webhook_base_url is not set, so checkouts cannot send customers back")
    _log_requests()
    serve_forever(app, sock)


def _log_requests() -> None:
    """Show paycore's log lines (one per request, gateway failures) on stderr."""
    import logging

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("paycore")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


# -- order payments ------------------------------------------------------------------


@cli.group("oms")
def oms_group() -> None:
    """Order payments: batches of captures, cancels and refunds; expiring authorizations."""


@oms_group.command("run")
@click.argument("file", type=click.File("rb"))
@click.option(
    "--concurrency",
    type=click.IntRange(1, 1024),
    default=16,
    show_default=True,
    metavar="N",
    help="How many instructions are carried out at once.",
)
@click.option(
    "--dry-run", is_flag=True, help="Show what each instruction would do; send and write nothing."
)
@click.option("--celery", is_flag=True, help="Run on the Celery workers, not in this process.")
@click.pass_context
def oms_run(
    ctx: click.Context, file: BinaryIO, concurrency: int, dry_run: bool, celery: bool
) -> None:
    """Carry out the instructions of FILE (JSON Lines; - reads standard input).

    One instruction per line, for orders whose payments the ledger holds:

    \b
      {"op": "capture", "order_id": "ord_1", "fulfillment_id": "shp_1",
       "amount": 2500, "currency": "EUR", "final": false}
      {"op": "cancel", "order_id": "ord_2"}
      {"op": "refund", "order_id": "ord_1", "return_id": "ret_1",
       "amount": 1200, "currency": "EUR"}

    Amounts are integers of minor units. A bad line is reported with its number and
    skipped. Instructions about one order run one after the other, in file order.
    Running a batch again, after a crash or Ctrl-C, is safe: what was done is skipped,
    what was sent without an answer is asked about, the rest is done once. Ctrl-C
    starts nothing more, waits for what is in flight, and prints the summary.

    \b
    Exit status:
      0    every instruction done, now or before
      1    some declined, failed or unknown, a rejected line, or an error
      2    a usage error
      130  interrupted (Ctrl-C)
    """
    from paycore.config import load_settings
    from paycore.oms.jobs import read_instructions
    from paycore.oms.progress import reporter_for

    if celery and dry_run:
        raise _UsageFailure("--dry-run plans in this process; leave out --celery")
    state: _State = ctx.obj
    settings = load_settings(state.config_path)
    if not celery:  # on Celery, the workers' settings name the gateways
        _with_gateways(settings, "no instruction can be done")
    total = _lines_in(file)
    entries = read_instructions(_read_lines(file))
    reporter = reporter_for(_console())
    with _stop_on_interrupt() as stop:
        if celery:
            from paycore.oms.celery import run_batch_on_celery

            explicit = (
                ctx.get_parameter_source("concurrency") is click.core.ParameterSource.COMMANDLINE
            )
            summary = run_batch_on_celery(
                settings,
                entries,
                reporter=reporter,
                concurrency_limit=concurrency if explicit else None,
                total=total,
                stop=stop,
            )
        else:
            summary = _run_here(
                state, settings, entries, concurrency, dry_run, total, stop, reporter
            )
    if stop.is_set():
        ctx.exit(130)
    if not summary.ok:
        ctx.exit(1)


def _run_here(
    state: _State,
    settings: Any,
    entries: Iterator[Any],
    concurrency: int,
    dry_run: bool,
    total: int | None,
    stop: threading.Event,
    reporter: Any,
) -> Any:
    """Run a batch in this process, on the settings' ledger and gateways."""
    import httpx

    from paycore.config import build_gateways
    from paycore.gateways.driver import GatewayDriver
    from paycore.gateways.transport import ShardedTransport
    from paycore.oms import OrderPayments
    from paycore.oms.jobs import run_batch
    from paycore.transactions.migrate import head_revision
    from paycore.transactions.services import PaymentTransactionServices

    with _ledger(state) as (store, shown_url):
        current = store.current_revision()
        if current != head_revision():
            raise _Failure(
                f"database {shown_url} is at revision {current or 'none'}, not "
                f"{head_revision()}: run 'paycore db upgrade'"
            )
        # One kept-alive connection per slot and gateway: no reconnecting under load.
        clients = {
            name: httpx.Client(transport=ShardedTransport(connections=concurrency))
            for name in settings.gateways
        }
        drivers = {
            name: GatewayDriver(gateway, client=clients[name])
            for name, gateway in build_gateways(settings).items()
        }
        services = PaymentTransactionServices(store, drivers)
        try:
            return run_batch(
                OrderPayments(services),
                entries,
                concurrency=concurrency,
                dry_run=dry_run,
                reporter=reporter,
                total=total,
                stop=stop,
            )
        finally:
            services.close()
            for client in clients.values():
                client.close()


def _read_lines(file: BinaryIO) -> Iterator[bytes]:
    """The lines of ``file``; failing to read it midway is one ``error:`` line (after
    the summary of what was done)."""
    try:
        yield from file
    except OSError as error:
        name = getattr(file, "name", "the input")
        raise _Failure(f"cannot read {name}: {error.strerror or error}") from error


def _lines_in(file: BinaryIO) -> int | None:
    """How many lines of ``file`` are not blank, when it can be read twice (not a pipe)."""
    try:
        if not file.seekable():
            return None
        start = file.tell()
        count = sum(1 for raw in file if raw.strip())
        file.seek(start)
    except OSError:
        return None
    return count


@contextmanager
def _stop_on_interrupt() -> Iterator[threading.Event]:
    """An event the first Ctrl-C (SIGINT) sets, instead of interrupting; a second
    Ctrl-C interrupts as usual."""
    import signal

    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.getsignal(signal.SIGINT)
    restore = previous if previous is not None else signal.default_int_handler

    def first(signum: int, frame: Any) -> None:
        stop.set()
        signal.signal(signal.SIGINT, restore)

    signal.signal(signal.SIGINT, first)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, restore)


def _within(ctx: click.Context, param: click.Parameter, value: str | None) -> timedelta | None:
    """A duration, as --older-than takes it."""
    return _older_than(ctx, param, value)


@oms_group.command("expiring")
@click.option(
    "--within",
    metavar="DURATION",
    default="2d",
    show_default=True,
    callback=_within,
    help="List authorizations expiring within DURATION (30s, 5m, 1h, 2d).",
)
@click.pass_obj
def oms_expiring(state: _State, within: timedelta) -> None:
    """List the authorizations that expire soon, soonest first.

    Each still holds money the order has not captured: capture it before it expires,
    or authorize it again. Uses the settings' database.
    """
    from rich.table import Table
    from rich.text import Text

    from paycore.config import load_settings
    from paycore.oms import OrderPayments
    from paycore.transactions.services import PaymentTransactionServices

    settings = load_settings(state.config_path)
    with _ledger(state) as (store, _):
        services = PaymentTransactionServices.from_settings(settings, store=store)
        try:
            found = OrderPayments(services).expiring(within)
            now = services.clock()
        finally:
            services.close()
    console = _console()
    shown = _duration(int(within.total_seconds()))
    if not found:
        console.print(f"No authorization expires within {shown}.")
        return
    table = Table("payment", "order", "gateway", "holds", "expires", "in")
    for payment in found:
        expires = payment.authorization_expires_at
        table.add_row(
            Text(payment.id, no_wrap=True),
            Text(payment.owner or "-"),
            Text(payment.gateway),
            Text(str(payment.capturable), no_wrap=True),
            Text(expires.strftime("%Y-%m-%d %H:%M UTC") if expires else "-", no_wrap=True),
            Text(_time_left(expires - now) if expires else "-", no_wrap=True),
        )
    console.print(table)
    count = len(found)
    console.print(Text(f"{count} authorization{'s' if count != 1 else ''} expiring within {shown}"))


def _time_left(left: timedelta) -> str:
    """``left`` roughly, in its two largest units (``1 d 4 h``); ``expired`` when past."""
    seconds = int(left.total_seconds())
    if seconds <= 0:
        return "expired"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size} {unit}")
            seconds %= size
        if len(parts) == 2:
            break
    return " ".join(parts)


# -- demo ----------------------------------------------------------------------------


@cli.command()
def demo() -> None:
    """Run the five-minute tour against local sandboxes."""
    from paycore.demo import run_demo

    run_demo(_console())
