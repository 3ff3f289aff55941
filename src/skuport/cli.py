"""The ``skuport`` command line; every option can also come from a ``SKUPORT_*`` variable."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from skuport.config import get_settings
from skuport.exporting.formats import FORMATS

if TYPE_CHECKING:
    from skuport.exporting.spec import ExportResult, ExportSpec

app = typer.Typer(
    help="skuport: product information with export automation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database administration.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
user_app = typer.Typer(help="Users, their roles and console passwords.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")
app.add_typer(user_app, name="user")


def _configure_logging(level: str) -> None:
    import logging

    from skuport.logs import configure
    from skuport.secrets import install_log_redaction

    configure(level, get_settings().log_format)
    # httpx logs every request's full URL at INFO; a webhook URL may carry credentials.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Alembic's "Context impl SQLiteImpl" lines are plumbing; `db upgrade` says what it did itself.
    logging.getLogger("alembic").setLevel(logging.WARNING)

    install_log_redaction()  # destination secrets never reach a log line, whoever logs them


def _apply_overrides(data_dir: Path | None, database_url: str | None) -> None:
    import os

    if data_dir is not None:
        os.environ["SKUPORT_DATA_DIR"] = str(data_dir)
    if database_url is not None:
        os.environ["SKUPORT_DATABASE_URL"] = database_url
    get_settings.cache_clear()
    from skuport.db import reset_engine

    reset_engine()


DataDir = Annotated[Path | None, typer.Option(envvar="SKUPORT_DATA_DIR", help="Data folder.")]
DatabaseUrl = Annotated[
    str | None, typer.Option(envvar="SKUPORT_DATABASE_URL", help="SQLAlchemy database URL.")
]


@app.command()
def serve(
    host: Annotated[str, typer.Option(envvar="SKUPORT_HOST", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="SKUPORT_PORT", help="Port to listen on.")] = 8000,
    log_level: Annotated[str, typer.Option(envvar="SKUPORT_LOG_LEVEL", help="Log level.")] = "info",
    migrate: Annotated[
        bool, typer.Option(envvar="SKUPORT_MIGRATE", help="Upgrade the database before serving.")
    ] = True,
    scheduler: Annotated[
        bool, typer.Option(envvar="SKUPORT_SCHEDULER", help="Run the embedded scheduler in the server.")
    ] = True,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Run the API server (and, in embedded mode, the scheduler)."""
    import os

    import uvicorn

    os.environ["SKUPORT_SCHEDULER"] = "true" if scheduler else "false"
    _apply_overrides(data_dir, database_url)
    _configure_logging(log_level)
    _check_executor()
    if migrate:
        from skuport.bootstrap import bootstrap

        bootstrap()
    from skuport.app import create_app

    # log_config=None: uvicorn's access and error lines go through our handlers (one format, redacted:
    # a signed download URL is logged without its signature).
    from skuport.http import EnvelopeH11Protocol

    uvicorn.run(
        create_app(),
        host=host,
        port=port,
        log_level=log_level.lower(),
        log_config=None,
        http=EnvelopeH11Protocol,
    )


@app.command("scheduler")
def scheduler_command(
    log_level: Annotated[str, typer.Option(envvar="SKUPORT_LOG_LEVEL", help="Log level.")] = "info",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Run only the scheduler and reaper (scale-out mode: any number of replicas on one PostgreSQL)."""
    import threading

    _apply_overrides(data_dir, database_url)
    _configure_logging(log_level)
    from skuport.background import start_background, stop_background, stop_on_signals
    from skuport.bootstrap import bootstrap

    _check_executor()
    bootstrap()
    scheduler_settings = get_settings().model_copy(update={"scheduler": True})
    stop = threading.Event()
    stop_on_signals(stop)
    background = start_background(scheduler_settings)
    stop.wait()
    stop_background(background, scheduler_settings)


def _check_executor() -> None:
    """Refuse to start with an executor this database cannot carry (a clear message, exit 2)."""
    settings = get_settings()
    if settings.executor == "procrastinate":
        from skuport.scheduling.pgqueue import ExecutorUnavailable, conninfo

        try:
            conninfo(settings.resolved_database_url)
        except ExecutorUnavailable as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None


@app.command("worker")
def worker_command(
    concurrency: Annotated[
        int, typer.Option(envvar="SKUPORT_WORKER_CONCURRENCY", min=1, help="Exports run at once.")
    ] = 1,
    queues: Annotated[
        str | None,
        typer.Option(
            envvar="SKUPORT_WORKER_QUEUES", help="procrastinate queues, comma-separated (default: skuport)."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(envvar="SKUPORT_LOG_LEVEL", help="Log level.")] = "info",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Run export runs and one-off exports from the queue (scale-out: SKUPORT_EXECUTOR=procrastinate).

    Any number of workers on any machine share one PostgreSQL. SIGTERM lets running exports finish
    within SKUPORT_SHUTDOWN_GRACE, then cancels them (retried elsewhere); a second SIGTERM ends at once.
    """
    import os

    os.environ["SKUPORT_EXECUTOR"] = "procrastinate"
    _apply_overrides(data_dir, database_url)
    _configure_logging(log_level)
    get_settings.cache_clear()
    _check_executor()
    import skuport.background  # noqa: F401  (registers every task)
    from skuport.bootstrap import bootstrap
    from skuport.exporting import workdir
    from skuport.scheduling.pgqueue import run_worker

    bootstrap()
    workdir.sweep()
    names = [q.strip() for q in queues.split(",") if q.strip()] if queues else None
    run_worker(settings=get_settings(), concurrency=concurrency, queues=names)


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Apply every database migration and create the built-in roles."""
    _apply_overrides(data_dir, database_url)
    from skuport.bootstrap import bootstrap
    from skuport.migrate import describe_database, is_set_up

    new = not is_set_up()
    bootstrap()
    if new:
        typer.echo(f"created the database ({describe_database()}) and applied every migration")
    else:
        typer.echo(f"database is up to date ({describe_database()})")


def _require_database() -> None:
    """Stop with a clear message when there is no skuport database yet; bring an old one up to date."""
    from skuport.bootstrap import bootstrap
    from skuport.migrate import describe_database, is_set_up

    if not is_set_up():
        typer.echo(
            f"error: there is no skuport database at {describe_database()}; create it with "
            "'skuport db upgrade' (or 'skuport demo' for the demo world) first",
            err=True,
        )
        raise typer.Exit(1)
    bootstrap()


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option(envvar="SKUPORT_TOKEN_USER", help="User id, e.g. user-admin.")],
    ttl: Annotated[str, typer.Option(envvar="SKUPORT_TOKEN_TTL", help="Lifetime: 30m, 24h, 90d.")] = "24h",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Mint a bearer token for an existing user and print it."""
    from skuport.auth.models import User
    from skuport.auth.tokens import create_token, parse_ttl
    from skuport.db import session_scope

    _apply_overrides(data_dir, database_url)
    try:
        lifetime = parse_ttl(ttl)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--ttl") from None
    _require_database()
    with session_scope() as session:
        found = session.get(User, user)
        if found is None or not found.active:
            typer.echo(
                f"error: user '{user}' does not exist or is disabled (run 'skuport demo' for user-admin)",
                err=True,
            )
            raise typer.Exit(2)
    typer.echo(create_token(get_settings(), user_id=user, ttl=lifetime))


@user_app.command("create")
def user_create(
    user_id: Annotated[str, typer.Argument(help="User id, e.g. user-jane.")],
    role: Annotated[
        list[str],
        typer.Option(
            "--role", help="Role id (repeat for several): role-admin, role-editor, role-viewer, role-runner."
        ),
    ],
    name: Annotated[str | None, typer.Option(help="Display name (default: the id).")] = None,
    email: Annotated[str | None, typer.Option(help="E-mail address.")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a user with roles (then give them a console password with 'skuport user password')."""
    from skuport.auth.schemas import UserCreate
    from skuport.auth.service import create_user
    from skuport.db import session_scope
    from skuport.errors import SkuportError

    _apply_overrides(data_dir, database_url)
    _require_database()
    try:
        with session_scope() as session:
            data = UserCreate(id=user_id, name=name or user_id, email=email, role_ids=role)
            create_user(session, data=data)
    except SkuportError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"created user {user_id} with role(s) {', '.join(role)}")


@user_app.command("password")
def user_password(
    user_id: Annotated[str, typer.Argument(help="User id, e.g. user-admin.")],
    generate: Annotated[bool, typer.Option("--generate", help="Generate a password and print it.")] = False,
    if_unset: Annotated[
        bool, typer.Option("--if-unset", help="Only when the user has no password yet.")
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Set a user's console password: read from stdin when piped, else asked for twice, or --generate.

    Every login session of the user ends.
    """
    import secrets
    import sys

    from skuport.auth.logins import check_password_rules, set_password
    from skuport.auth.models import User
    from skuport.db import session_scope
    from skuport.errors import SkuportError

    _apply_overrides(data_dir, database_url)
    _require_database()
    with session_scope() as session:
        found = session.get(User, user_id)
        if found is None:
            typer.echo(
                f"error: user '{user_id}' does not exist (create it with 'skuport user create')", err=True
            )
            raise typer.Exit(2)
        if if_unset and found.password_hash:
            typer.echo(
                f"{user_id} already has a console password (change it with 'skuport user password {user_id}')"
            )
            return
        if generate:
            password = secrets.token_urlsafe(12)
        elif not sys.stdin.isatty():
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
        try:
            check_password_rules(password)
            set_password(session, user=found, password=password)
        except SkuportError as exc:
            typer.echo(f"error: {exc.message}", err=True)
            raise typer.Exit(2) from None
    typer.echo(
        f"console password of {user_id}: {password}"
        if generate
        else f"console password of {user_id} set; their other logins ended"
    )


@app.command()
def demo(
    records: Annotated[
        int,
        typer.Option(
            envvar="SKUPORT_DEMO_RECORDS", min=0, help="Synthetic products to add on top of the seed world."
        ),
    ] = 0,
    seed: Annotated[
        int, typer.Option(envvar="SKUPORT_DEMO_SEED", help="Random seed for synthetic data.")
    ] = 42,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Load the demo world of the API pages (idempotent), plus N synthetic products."""
    _apply_overrides(data_dir, database_url)
    from skuport.bootstrap import bootstrap
    from skuport.demo import load_demo

    bootstrap()
    load_demo(records=records, seed=seed)


@app.command("export")
def export_command(
    output: Annotated[
        Path, typer.Option("--output", "-o", envvar="SKUPORT_EXPORT_OUTPUT", help="File to write.")
    ],
    format: Annotated[
        str,
        typer.Option("--format", "-f", envvar="SKUPORT_EXPORT_FORMAT", help=f"{', '.join(FORMATS)}."),
    ] = "csv",
    schema: Annotated[
        str | None, typer.Option(envvar="SKUPORT_EXPORT_SCHEMA", help="Schema id, e.g. schema-apparel.")
    ] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option(
            envvar="SKUPORT_EXPORT_SCOPE",
            help="dimension=segment, or dimension=seg-a,seg-b (a column per segment); repeat per dimension.",
        ),
    ] = None,
    fields: Annotated[
        str | None,
        typer.Option(envvar="SKUPORT_EXPORT_FIELDS", help="Attribute aliases, comma-separated, in order."),
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(
            envvar="SKUPORT_EXPORT_COLUMNS",
            help='The file\'s columns as JSON, or @file.json: [{"header": "Title", "attribute": '
            '"product-name", "scope": {"dim-language": "seg-da"}}, {"header": "ID", "field": "id"}, '
            '{"header": "channel", "value": "webshop"}] (instead of --fields).',
        ),
    ] = None,
    filter: Annotated[
        list[str] | None,
        typer.Option(
            envvar="SKUPORT_EXPORT_FILTER",
            help="key=value or key\\[op]=value, as filter\\[...] of GET /records; repeatable.",
        ),
    ] = None,
    catalog: Annotated[
        str | None,
        typer.Option(envvar="SKUPORT_EXPORT_CATALOG", help="Only records in a category of this catalog."),
    ] = None,
    state: Annotated[
        list[str] | None, typer.Option(envvar="SKUPORT_EXPORT_STATE", help="Lifecycle state id; repeatable.")
    ] = None,
    include_variants: Annotated[
        bool, typer.Option(envvar="SKUPORT_EXPORT_INCLUDE_VARIANTS", help="Include variant records.")
    ] = True,
    compress: Annotated[bool, typer.Option(envvar="SKUPORT_EXPORT_COMPRESS", help="gzip the file.")] = False,
    header_language: Annotated[
        str | None,
        typer.Option(envvar="SKUPORT_EXPORT_HEADER_LANGUAGE", help="Headers as labels in this segment."),
    ] = None,
    dry_data: Annotated[
        bool, typer.Option(envvar="SKUPORT_EXPORT_DRY_DATA", help="Leave out ids and timestamps.")
    ] = False,
    value_labels: Annotated[
        bool,
        typer.Option(
            envvar="SKUPORT_EXPORT_VALUE_LABELS",
            help="Select and multiselect values as their option labels in the column's language.",
        ),
    ] = False,
    changed_since: Annotated[
        str | None, typer.Option(envvar="SKUPORT_EXPORT_CHANGED_SINCE", help="Delta since an ISO time.")
    ] = None,
    include: Annotated[
        list[str] | None, typer.Option(envvar="SKUPORT_EXPORT_INCLUDE", help="Extra columns: categories.")
    ] = None,
    csv: Annotated[
        list[str] | None,
        typer.Option(
            envvar="SKUPORT_EXPORT_CSV",
            help="CSV dialect option=value, repeatable: delimiter=';' (or tab), quote, decimalSeparator=',', "
            "dateFormat=%d.%m.%Y, listSeparator, bom=true, lineTerminator=lf (or crlf).",
        ),
    ] = None,
    max_records_per_file: Annotated[
        int | None,
        typer.Option(
            envvar="SKUPORT_EXPORT_MAX_RECORDS_PER_FILE",
            help="Split into parts of at most N rows, beside the output: NAME-001.EXT, NAME-002.EXT...",
        ),
    ] = None,
    manifest: Annotated[
        bool,
        typer.Option(
            envvar="SKUPORT_EXPORT_MANIFEST",
            help="Also write NAME.manifest.json: every file's name, row count, size and SHA-256.",
        ),
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Export records to a file through the export pipeline."""
    import time

    from pydantic import ValidationError

    from skuport.errors import SkuportError
    from skuport.exporting.selection import Selection
    from skuport.records.filters import parse_query_filters

    _apply_overrides(data_dir, database_url)
    dimension_scope = _parse_scope(scope)
    items = _filter_items(filter)
    since = _parse_changed_since(changed_since)
    try:
        try:
            selection = Selection(
                format=format,
                schema_id=schema,
                catalog_id=catalog,
                include_variants=include_variants,
                lifecycle_state_ids=list(state or ()),
                filters=parse_query_filters(items) or None,
                fields=[f.strip() for f in (fields or "").split(",") if f.strip()] or None,
                columns=_parse_columns(columns),
                dimension_scope=dimension_scope or None,
                compress=compress,
                header_language=header_language,
                dry_data=dry_data,
                value_labels=value_labels,
                includes=list(include or ()),
                csv=_parse_csv(csv),
                max_records_per_file=max_records_per_file,
                manifest=manifest,
            )
        except ValidationError as exc:
            problems = (f"{'.'.join(str(p) for p in e['loc']) or 'export'}: {e['msg']}" for e in exc.errors())
            _fail("; ".join(problems))
        spec = selection.to_spec(changed_since=since)
        began = time.perf_counter()
        result = _run_export(spec, out_dir=output.resolve().parent)
    except SkuportError as exc:
        details = "".join(
            f"\n  - {d.get('message', d)}" if isinstance(d, dict) else f"\n  - {d}" for d in exc.details[1:]
        )
        _fail(exc.message + details)
    written = _place_files(result, output, selection)
    seconds = time.perf_counter() - began
    rate = result.record_count / seconds if seconds else 0.0
    where = str(output) if written == [output] else f"{len(written)} files: {written[0]} ... {written[-1]}"
    typer.echo(
        f"{result.record_count:,} records, {result.file_size:,} bytes, {seconds:.2f} s, "
        f"{rate:,.0f} records/s -> {where}"
    )


def _place_files(result: ExportResult, output: Path, selection: Any) -> list[Path]:
    """Move the pipeline's file (or its parts, named beside ``output``) into place, then the manifest."""
    from skuport.exporting import manifest

    names = manifest.file_names(output.name, result)
    placed = [output.parent / name for name in names]
    try:
        for file, target in zip(result.files, placed, strict=True):
            _move_into_place(file.path, target)
    finally:
        result.discard()  # what could not be moved
    if selection.manifest:
        target = output.parent / manifest.manifest_name(output.name, extension=result.extension)
        delivered = [
            manifest.Delivered(name=t.name, path=t.resolve().as_uri(), file=f)
            for t, f in zip(placed, result.files, strict=True)
        ]
        shown = selection.model_dump(mode="json", by_alias=True, exclude_none=True)
        temporary = target.with_name(f".{target.name}.part")
        temporary.write_bytes(manifest.manifest(delivered, result, selection=shown))
        _move_into_place(temporary, target)
        placed.append(target)
    return placed


def _fail(message: str) -> NoReturn:
    """Print ``error: message`` on stderr and exit with status 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _parse_scope(scope: list[str] | None) -> dict[str, str | list[str]]:
    """The ``--scope dimension=segment`` options as a dimension-to-segment mapping (``seg-a,seg-b``: a
    list of segments)."""
    dimension_scope: dict[str, str | list[str]] = {}
    for item in scope or []:
        dim, sep, seg = item.partition("=")
        if not sep or not dim or not seg:
            _fail(f"--scope '{item}' must be dimension=segment, e.g. dim-language=seg-en")
        dimension_scope[dim] = [s.strip() for s in seg.split(",")] if "," in seg else seg
    return dimension_scope


def _parse_columns(text: str | None) -> Any:
    """The ``--columns`` JSON (inline, or ``@file``) as the selection's columns (validated there)."""
    import json

    if text is None:
        return None
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            _fail(f"--columns: cannot read {text[1:]}: {exc.strerror or exc}")
    try:
        return json.loads(text)
    except ValueError as exc:
        _fail(f"--columns is not JSON: {exc}")


_CSV_WORDS = {"tab": "\t", "\\t": "\t", "lf": "\n", "crlf": "\r\n", "true": True, "false": False}
"""Words ``--csv`` takes for characters a shell makes awkward, and for the byte order mark flag."""


def _parse_csv(items: list[str] | None) -> dict[str, Any] | None:
    """The ``--csv option=value`` options as the selection's csv dialect (None: none given)."""
    if not items:
        return None
    dialect: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            _fail(f"--csv '{item}' must be option=value, e.g. delimiter=';'")
        dialect[key] = (
            _CSV_WORDS.get(value.lower(), value) if key in ("delimiter", "lineTerminator", "bom") else value
        )
    return dialect


def _filter_items(filters: list[str] | None) -> list[tuple[str, str]]:
    """The ``--filter key[op]=value`` options as ``filter[key][op]`` query items, as GET /records takes."""
    items = []
    for item in filters or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            _fail(f"--filter '{item}' must be key=value or key[operator]=value")
        name, bracket, rest = key.partition("[")
        items.append((f"filter[{name}]" + (f"[{rest}" if bracket else ""), value))
    return items


def _parse_changed_since(changed_since: str | None) -> dt.datetime | None:
    """The ``--changed-since`` ISO 8601 time (UTC if it names no offset), or None without one."""
    if not changed_since:
        return None
    try:
        since = dt.datetime.fromisoformat(changed_since.replace("Z", "+00:00"))
    except ValueError:
        _fail(f"--changed-since '{changed_since}' is not an ISO 8601 time")
    return since if since.tzinfo else since.replace(tzinfo=dt.UTC)


def _run_export(spec: ExportSpec, *, out_dir: Path) -> ExportResult:
    """Run the export pipeline, with a progress bar while stderr is a terminal."""
    import sys

    from skuport.exporting.pipeline import run_export
    from skuport.exporting.spec import ExportControl

    if not sys.stderr.isatty():
        return run_export(spec, out_dir=out_dir)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("exporting", total=None)
        control = ExportControl(progress=lambda done, total: bar.update(task, completed=done, total=total))
        return run_export(spec, out_dir=out_dir, control=control)


def _move_into_place(path: Path, output: Path) -> None:
    """Move the pipeline's file to ``output`` with the mode of any file the user creates."""
    import os

    # The pipeline's temporary file is private (0600); the file the user asked for gets the mode any
    # file they create gets: 0666 less their umask (read once here, before any thread could race it).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
    os.replace(path, output)


if __name__ == "__main__":
    app()
