"""The ``exchange`` command: the server, workers and operations; the office-side verbs come from
:mod:`exchange.office.cli` and ``exchange demo`` from :mod:`exchange.demo.seeder`."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import click

from dossiers.vocab import AuditAction, AuditOutcome

from . import metrics_dir
from .clitools import echo_json as _echo_json
from .clitools import fail as _fail
from .office.cli import api_options, call, client, office, verify
from .processes import exit_on_sigterm, start_embedded_worker, stop_process
from .settings import Settings, SettingsError


class _SettingRefused(click.ClickException):
    exit_code = 2


class _Exchange(click.Group):
    """A setting that cannot be used ends any verb with one line naming it and exit status 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SettingsError as exc:
            raise _SettingRefused(str(exc)) from None


@click.group(cls=_Exchange)
@click.version_option(package_name="patent-exchange")
def main() -> None:
    """Patent examination worksharing exchange."""


# --- server and workers ---------------------------------------------------------------------

@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="API processes (the API is stateless; on PostgreSQL use one per core)")
def serve(host: str, port: int, workers: int) -> None:
    """Run the API. On the embedded default (SQLite) the schema is migrated first and a Celery
    worker runs beside it, restarted if it dies."""
    # A served exchange is ready only while some worker consumes its events (a heartbeat), unless
    # the operator says otherwise; the API processes of --workers N read it from the environment.
    os.environ.setdefault("EXCHANGE_READY_REQUIRES_WORKER", "true")
    settings = Settings.from_env()
    # One set of figures from the N processes (before any of them imports prometheus_client).
    metrics_dir.prepare(settings.home)
    log_config = _configure_logging(settings)
    embedded = None
    if settings.embedded:
        _prepare_embedded(settings)
        embedded = start_embedded_worker(settings)
    try:
        with exit_on_sigterm():
            _serve(settings, host, port, workers, log_config, embedded_worker=embedded)
    finally:
        if embedded is not None:
            stop_process(embedded)


def _serve(settings: Settings, host: str, port: int, workers: int, log_config: dict | None = None,
           embedded_worker=None) -> None:
    import uvicorn

    from .app import create_app
    from .timeouts import H11Protocol

    # uvicorn applies log_config in each of its processes: every line in the chosen format. The
    # HTTP protocol is uvicorn's h11 one with a time limit on the request headers.
    options: dict[str, Any] = dict(host=host, port=port, log_level=settings.log_level.lower(), http=H11Protocol)
    if log_config is not None:
        options["log_config"] = log_config
    if workers > 1:
        # A child that starts slowly on a busy machine (the app's import) is not taken for a hung one.
        uvicorn.run("exchange.app:create_app", factory=True, workers=workers, timeout_worker_healthcheck=60,
                    **options)
    else:
        app = create_app(settings)
        app.state.embedded_worker = embedded_worker  # /readyz asks it whether the worker runs
        uvicorn.run(app, **options)


def _configure_logging(settings: Settings) -> dict:
    """Logging as ``EXCHANGE_LOG_FORMAT`` (json, the default, or text) and
    ``EXCHANGE_LOG_LEVEL`` say; returns the configuration for uvicorn."""
    from . import logs

    try:
        fmt = logs.format_from_env()
    except ValueError as exc:
        _fail(str(exc))
    return logs.configure(fmt, settings.log_level)


def _prepare_embedded(settings: Settings) -> None:
    import migrations

    settings.home.mkdir(parents=True, exist_ok=True)
    migrations.upgrade(settings.database_url)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def demo(host: str, port: int) -> None:
    """The embedded exchange with sample offices, keys and signed dossiers, ready to use."""
    from .demo.seeder import run

    run(host, port)


@main.command()
@click.option("--concurrency", default=2, show_default=True, type=int)
@click.option("--beat", "with_beat", is_flag=True, help="also run the scheduler in this process")
@click.option("--pool", default="prefork", show_default=True, type=click.Choice(["prefork", "solo", "threads"]))
def worker(concurrency: int, with_beat: bool, pool: str) -> None:
    """Run a Celery worker: outbox relay, webhooks, e-mail, tracking, scrub, statistics."""
    from workers.app import configure

    from .logs import format_from_env

    settings = Settings.from_env()
    _configure_logging(settings)
    app = configure(settings)
    from .embedded import exit_with_parent

    exit_with_parent()  # when it is the embedded worker of an `exchange serve`: it ends with it
    args = ["worker", f"--loglevel={settings.log_level}", f"--concurrency={concurrency}", f"--pool={pool}",
            "--without-gossip", "--without-mingle", "-Q", "exchange"]
    if format_from_env() == "json":
        args.insert(0, "--quiet")  # no start-up banner: what the worker writes is JSON lines only
    if with_beat:
        args += ["--beat", f"--schedule={settings.home / 'celerybeat-schedule'}"]
        settings.home.mkdir(parents=True, exist_ok=True)
    app.worker_main(args)


@main.command()
def beat() -> None:
    """Run the Celery scheduler (one per deployment)."""
    from workers.app import configure

    settings = Settings.from_env()
    _configure_logging(settings)
    settings.home.mkdir(parents=True, exist_ok=True)
    configure(settings).start(["beat", "--loglevel=INFO", f"--schedule={settings.home / 'celerybeat-schedule'}"])


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration (alembic upgrade head)."""
    import migrations

    settings = Settings.from_env()
    if settings.embedded:
        settings.home.mkdir(parents=True, exist_ok=True)
    migrations.upgrade(settings.database_url)
    click.echo("database at head", err=True)


@db.command("check")
def db_check() -> None:
    """Fail if the models and the migrations disagree."""
    import migrations

    migrations.check(Settings.from_env().database_url)


# --- operations (directly on the configured database and storage) --------------------------

@contextmanager
def _database():
    """The configured database's session factory (the schema migrated first on the embedded
    default, as ``admin bootstrap`` does); database failures become clear CLI errors."""
    from sqlalchemy.exc import SQLAlchemyError

    from dossiers.db import make_engine, make_session_factory

    settings = Settings.from_env()
    try:
        if settings.embedded:
            _prepare_embedded(settings)
        engine = make_engine(settings.database_url)
    except SQLAlchemyError as exc:
        _fail(f"the database is not available: {_first_line(exc)}")
    try:
        yield settings, make_session_factory(engine)
    except SQLAlchemyError as exc:
        _fail(f"the database is not available: {_first_line(exc)}")
    finally:
        engine.dispose()


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@main.group()
def keys() -> None:
    """The exchange's own signing keys (access tokens and receipts)."""


@keys.command("rotate")
@click.option("--keep-published-days", type=click.IntRange(min=0), default=3650, show_default=True,
              help="how long the retired key stays in the JWKS; receipts it signed verify only while it is there")
def keys_rotate(keep_published_days: int) -> None:
    """Retire the exchange's signing key and start a new one; the retired key stays published."""
    from dossiers import audit, signing_keys

    with _database() as (_settings, sf):
        with sf.begin() as s:
            key = signing_keys.rotate(s, keep_published=timedelta(days=keep_published_days))
            published = [k.kid for k in signing_keys.published(s)]
            audit.append(s, action=AuditAction.EXCHANGE_KEY_ROTATE, outcome=AuditOutcome.OK, actor="cli",
                         subject=key.kid,
                         detail={"keep_published_days": keep_published_days, "published": published})
    _echo_json({"kid": key.kid, "alg": key.alg, "published": published})


@main.group("audit")
def audit_group() -> None:
    """The hash-chained audit log."""


@audit_group.command("verify")
def audit_verify() -> None:
    """Walk the whole chain; exit 1 at the first entry that does not follow from the one before."""
    from crypto.errors import AuditChainBroken
    from dossiers import audit

    with _database() as (_settings, sf):
        with sf() as s:
            try:
                n = audit.verify(s)
            except AuditChainBroken as exc:
                click.echo(f"audit chain BROKEN at entry {exc.seq}: {exc.reason}")
                sys.exit(1)
    click.echo(f"audit chain verified: {n} entries")


@main.command()
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(min=1),
              help="blobs to re-hash, least recently verified first")
@click.option("--sweep-orphans", is_flag=True, help="also delete stored objects no deposit committed")
@click.option("--grace-hours", default=24.0, show_default=True, type=click.FloatRange(min=0),
              help="with --sweep-orphans: keep objects younger than this (a deposit may be in flight)")
def scrub(limit: int, sweep_orphans: bool, grace_hours: float) -> None:
    """Re-hash stored documents against their records now (the hourly job), print the result."""
    from dataclasses import asdict

    from dossiers import scrub as scrubbing
    from dossiers.storage import StorageError, store_from_url

    source = click.get_current_context().get_parameter_source("grace_hours")
    if source is not click.core.ParameterSource.DEFAULT and not sweep_orphans:
        _fail("--grace-hours applies to --sweep-orphans only")
    with _database() as (settings, sf):
        try:
            store = store_from_url(settings.storage_url)
            result = {"scrub": asdict(scrubbing.scrub(sf, store, limit=limit))}
            if sweep_orphans:
                result["sweep"] = asdict(scrubbing.sweep_orphans(sf, store, grace=timedelta(hours=grace_hours)))
        except StorageError as exc:
            _fail(f"document storage is not available: {exc}")
    _echo_json(result)
    problems = _scrub_problems(result)
    if problems:
        click.echo("integrity check FAILED: " + "; ".join(problems), err=True)
        sys.exit(1)


def _scrub_problems(result: dict) -> list[str]:
    """What keeps a scrub from saying all is well: a document that is corrupt or missing, or
    one it could not check."""
    found = result["scrub"]
    problems = []
    if found["corrupt"] or found["missing"]:
        problems.append(f"{found['corrupt']} corrupt and {found['missing']} missing of {found['checked']} documents "
                        "checked (the audit log names them: action blob.integrity)")
    if found["errors"]:
        problems.append(f"{len(found['errors'])} not checked: " + "; ".join(found["errors"][:3]))
    if result.get("sweep", {}).get("errors"):
        problems.append("the orphan sweep did not finish: " + "; ".join(result["sweep"]["errors"][:3]))
    return problems


def _month(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        if len(value) == 7:
            return date.fromisoformat(value + "-01")
        d = date.fromisoformat(value)
        return date(d.year, d.month, 1)
    except ValueError:
        _fail(f"--since must be a month (YYYY-MM) or a date (YYYY-MM-DD), not {value!r}")


@main.command()
@click.option("--office", help="the rows about one office (its own figures and every pair it is in)")
@click.option("--since", help="from this month on (YYYY-MM)")
@click.option("--months", default=13, show_default=True, type=click.IntRange(min=1),
              help="calendar months to recompute first (the current one included)")
def stats(office: str | None, since: str | None, months: int) -> None:
    """Recompute the monthly statistics now, then print them as JSON (as GET /v1/stats)."""
    from dossiers import stats as statistics
    from dossiers.scope import Scope

    since_month = _month(since)
    with _database() as (_settings, sf):
        statistics.rollup(sf, months=months)
        with sf() as s:
            scope = Scope.office(office.upper()) if office else Scope.everything()
            rows = statistics.summary(s, scope=scope, since=since_month)
    _echo_json({"months": rows, "totals": statistics.totals(rows)})


@main.group()
def outbox() -> None:
    """The transactional outbox (events waiting for the broker)."""


@outbox.command("requeue")
@click.option("--event", "event_ids", multiple=True, help="only this event (repeatable); default every dead one")
def outbox_requeue(event_ids: tuple[str, ...]) -> None:
    """Give dead-lettered events another round, after fixing what the broker refused."""
    from dossiers.outbox import requeue_dead

    with _database() as (_settings, sf):
        with sf.begin() as s:
            n = requeue_dead(s, list(event_ids) or None)
    _echo_json({"requeued": n})


# --- administration -------------------------------------------------------------------------

@main.group()
def admin() -> None:
    """Exchange administration."""


@admin.command()
@click.option("--name", default="exchange admin", show_default=True)
def bootstrap(name: str) -> None:
    """Create an exchange-admin client directly in the database; print its credentials as JSON."""
    from dossiers import registry
    from dossiers.db import make_engine, make_session_factory

    settings = Settings.from_env()
    if settings.embedded:
        _prepare_embedded(settings)
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine).begin() as s:
            client, secret = registry.create_client(s, office_code=None, roles=["admin"], name=name,
                                                    actor="cli:bootstrap")
    finally:
        engine.dispose()
    _echo_json({"client_id": client.client_id, "client_secret": secret})


@admin.command("create-user")
@click.option("--username", required=True)
@click.option("--office", help="the person's office; none for an exchange admin")
@click.option("--roles", default="examiner", show_default=True,
              help="examiner,office-admin (or admin without --office)")
@click.option("--name", "display_name", default="")
@click.option("--email")
@click.password_option(envvar="EXCHANGE_USER_PASSWORD")
def create_user(username, office, roles, display_name, email, password) -> None:
    """Create a person who signs in to the web interface (directly in the database)."""
    from dossiers import users
    from dossiers.db import make_engine, make_session_factory
    from dossiers.errors import DomainError

    settings = Settings.from_env()
    if settings.embedded:
        _prepare_embedded(settings)
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine).begin() as s:
            user = users.create_user(s, username=username, display_name=display_name, office=office,
                                     roles=[r for r in roles.split(",") if r], password=password, email=email,
                                     actor="cli")
            _echo_json({"username": user.username, "office": user.office_code, "roles": user.roles})
    except DomainError as exc:
        _fail(exc.detail)
    finally:
        engine.dispose()


def _set_client(client_id: str, disabled: bool) -> None:
    from dossiers import registry
    from dossiers.errors import DomainError

    with _database() as (_settings, sf):
        try:
            with sf.begin() as s:
                office = registry.find_client(s, client_id).office_code
                change = registry.disable_client if disabled else registry.enable_client
                client = change(s, office, client_id, actor="cli")
                out = {"client_id": client.client_id, "office": office, "name": client.name,
                       "disabled_at": client.disabled_at}
        except DomainError as exc:
            _fail(exc.detail)
    _echo_json(out)


@admin.command("disable-client")
@click.argument("client_id")
def disable_client(client_id: str) -> None:
    """Disable a client (directly in the database): no new token, and its tokens stop at once."""
    _set_client(client_id, disabled=True)


@admin.command("enable-client")
@click.argument("client_id")
def enable_client(client_id: str) -> None:
    """Enable a disabled client again (directly in the database)."""
    _set_client(client_id, disabled=False)


@admin.command("add-office")
@click.argument("code")
@click.option("--name", required=True)
@click.option("--roles", default="depositing,accessing", show_default=True)
@api_options
def add_office(code, name, roles, url, client_id, client_secret) -> None:
    """Register an office (exchange admin)."""
    c = client(url, client_id, client_secret)
    _echo_json(call(lambda: c.request("POST", "/v1/offices", json={
        "code": code, "name": name, "roles": [r for r in roles.split(",") if r]}).json()))


@admin.command("add-client")
@click.argument("office")
@click.option("--roles", default="depositor,examiner", show_default=True)
@click.option("--name", default="office system", show_default=True)
@api_options
def add_client(office, roles, name, url, client_id, client_secret) -> None:
    """Create a client of an office; prints its secret once."""
    c = client(url, client_id, client_secret)
    _echo_json(call(lambda: c.request("POST", f"/v1/offices/{office}/clients", json={
        "name": name, "roles": [r for r in roles.split(",") if r]}).json()))


main.add_command(office)
main.add_command(verify)


if __name__ == "__main__":  # pragma: no cover
    main()
