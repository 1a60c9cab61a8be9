"""castra's command line.

`castra up` runs the whole embedded default stack in the foreground (Temporal dev server,
SecantusDB, the API and the orchestrator as child processes); `castra api` and
`castra orchestrator` run one component each; `castra tenants create` makes a tenant and its
first API key. This is the only place that configures logging. It must never print a secret
other than the one key `tenants create` hands out once.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from castra.services import (
    ManagedProcess,
    ServiceStartError,
    Stack,
    start_mongodb,
    start_python_process,
    start_temporal,
    wait_until_ready,
)
from core import logs
from core.settings import Settings, get_settings

app = typer.Typer(
    help="Run security automations in the backend, orchestrated by Temporal.",
    no_args_is_help=True,
    add_completion=False,
)
tenants_app = typer.Typer(help="Manage tenants.", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")

API_READY_TIMEOUT_SECONDS = 60.0


def _settings_with_overrides(overrides: dict[str, object]) -> Settings:
    """Apply command-line options as CASTRA_* variables, so child processes see them too."""
    for name, value in overrides.items():
        if value is not None:
            os.environ[f"CASTRA_{name.upper()}"] = str(value)
    get_settings.cache_clear()
    return get_settings()


def _redact_uri(uri: str) -> str:
    return re.sub(r"//[^/@]+@", "//***@", uri)


def _local_url(host: str, port: int) -> str:
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://{host}:{port}"


@app.command()
def up(
    data_dir: Annotated[
        Path | None, typer.Option(help="Where state and logs are kept [CASTRA_DATA_DIR].")
    ] = None,
    api_host: Annotated[str | None, typer.Option(help="API bind address.")] = None,
    api_port: Annotated[int | None, typer.Option(help="API port.")] = None,
    temporal_port: Annotated[int | None, typer.Option(help="Embedded Temporal gRPC port.")] = None,
    temporal_ui_port: Annotated[
        int | None, typer.Option(help="Embedded Temporal Web UI port.")
    ] = None,
    temporal_address: Annotated[
        str | None, typer.Option(help="Use this Temporal server instead of starting one.")
    ] = None,
    mongodb_port: Annotated[int | None, typer.Option(help="Embedded SecantusDB port.")] = None,
    mongodb_uri: Annotated[
        str | None, typer.Option(help="Use this MongoDB instead of starting SecantusDB.")
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="DEBUG, INFO, WARNING, ...")] = None,
) -> None:
    """Run the whole stack in the foreground until Ctrl-C."""
    settings = _settings_with_overrides(
        {
            "data_dir": data_dir.expanduser().resolve() if data_dir else None,
            "api_host": api_host,
            "api_port": api_port,
            "temporal_port": temporal_port,
            "temporal_ui_port": temporal_ui_port,
            "temporal_address": temporal_address,
            "mongodb_port": mongodb_port,
            "mongodb_uri": mongodb_uri,
            "log_level": log_level,
        }
    )
    logs.configure(settings.log_level)
    # SIGTERM behaves like Ctrl-C: stop everything in order and exit 0.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    stack = Stack()
    code = 0
    try:
        _start_stack(stack, settings)
        _print_summary(settings, embedded_temporal=settings.temporal_address is None)
        while (dead := stack.first_dead()) is None:
            time.sleep(0.5)
        typer.echo(
            f"\n{dead.name} exited unexpectedly (code {dead.returncode}). "
            f"Last lines of {dead.log_path}:\n{dead.log_tail()}\n",
            err=True,
        )
        code = 1
    except KeyboardInterrupt:
        typer.echo("\nstopping castra ...")
    except ServiceStartError as exc:
        typer.echo(f"error: {exc}", err=True)
        code = 1
    finally:
        # A second Ctrl-C must not abandon children half-stopped; stop() is bounded anyway.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
    if code == 0:
        typer.echo("castra stopped.")
    raise typer.Exit(code)


def _start_stack(stack: Stack, settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.temporal_address is None:
        typer.echo("starting Temporal dev server ...")
        stack.start(lambda: start_temporal(settings))
    if settings.mongodb_uri is None:
        typer.echo("starting SecantusDB ...")
        stack.start(lambda: start_mongodb(settings))
    # The children connect to what was just started, whatever their own defaults say.
    child_env = {
        "CASTRA_DATA_DIR": str(settings.data_dir),
        "CASTRA_TEMPORAL_ADDRESS": settings.effective_temporal_address,
        "CASTRA_MONGODB_URI": settings.effective_mongodb_uri,
    }
    typer.echo("starting API and orchestrator ...")
    api = stack.start(
        lambda: start_python_process("api", ["-m", "castra", "api"], settings, child_env)
    )
    stack.start(
        lambda: start_python_process(
            "orchestrator", ["-m", "castra", "orchestrator"], settings, child_env
        )
    )
    _wait_for_api(api, _local_url(settings.api_host, settings.api_port))


def _wait_for_api(api: ManagedProcess, base_url: str) -> None:
    def healthy() -> bool:
        return httpx.get(f"{base_url}/healthz", timeout=2.0).status_code == 200

    wait_until_ready(api, healthy, API_READY_TIMEOUT_SECONDS, f" at {base_url}/healthz")


def _print_summary(settings: Settings, embedded_temporal: bool) -> None:
    api_url = _local_url(settings.api_host, settings.api_port)
    rows = [("Temporal gRPC", settings.effective_temporal_address)]
    if embedded_temporal or settings.temporal_ui_url:
        rows.append(("Temporal Web UI", settings.effective_temporal_ui_url))
    rows += [
        ("MongoDB", _redact_uri(settings.effective_mongodb_uri)),
        ("API", api_url),
        ("API docs", f"{api_url}/docs"),
        ("Data dir", str(settings.data_dir)),
        ("Logs", str(settings.data_dir / "logs")),
    ]
    typer.echo("\ncastra is up.")
    for label, value in rows:
        typer.echo(f"  {label:<16} {value}")
    typer.echo("Press Ctrl-C to stop.")


@app.command()
def api() -> None:
    """Run the API (uvicorn) on CASTRA_API_HOST:CASTRA_API_PORT."""
    import uvicorn

    settings = get_settings()
    logs.configure(settings.log_level)
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
    )


@app.command()
def orchestrator() -> None:
    """Run the orchestrator: Temporal workers for workflows and activities."""
    from castra.orchestrator import run_orchestrator

    settings = get_settings()
    logs.configure(settings.log_level)
    asyncio.run(_run_until_signalled(run_orchestrator(settings)))


async def _run_until_signalled(main: Coroutine[Any, Any, None]) -> None:
    """Run `main`, cancelling it on SIGINT/SIGTERM so it can shut its workers down."""
    task = asyncio.ensure_future(main)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        if not task.cancelled():
            raise


@tenants_app.command("create")
def tenants_create(name: Annotated[str, typer.Argument(help="The tenant's name.")]) -> None:
    """Create a tenant and print its id and first API key (shown only once)."""
    from pymongo.errors import ConnectionFailure

    from core.tenants import create_tenant

    settings = get_settings()
    logs.configure(settings.log_level)
    try:
        tenant_id, api_key = asyncio.run(create_tenant(settings, name))
    except ConnectionFailure as exc:
        uri = _redact_uri(settings.effective_mongodb_uri)
        typer.echo(
            f"error: cannot reach MongoDB at {uri} ({type(exc).__name__}). Is `castra up` "
            "running, or CASTRA_MONGODB_URI set to your server?",
            err=True,
        )
        raise typer.Exit(1) from None
    typer.echo(f"tenant id: {tenant_id}")
    typer.echo(f"API key:   {api_key}")
    typer.echo("Store the API key now: it is not shown again (only its hash is kept).")


def main() -> None:
    app(prog_name="castra")
