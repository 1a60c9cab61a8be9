"""``python -m worker_runtime --port N`` (or ``castra-worker``): one worker, one investigation.

Serves ``/start`` and ``/healthz`` with uvicorn; when the step loop ends, the process exits
by itself after finishing the response in flight. Once listening it writes one JSON line to
stdout, ``{"event": "listening", "host": ..., "port": ...}``, so a provisioner that asked
for ``--port 0`` learns the port. Logs go to stderr as ``key=value`` fields; the worker key
and credential values never reach them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

import uvicorn

from worker_runtime.server import create_app

_FIELDS = ("investigation", "step", "status", "call", "reason")


class _FieldsFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = " ".join(
            f"{name}={getattr(record, name)}" for name in _FIELDS if hasattr(record, name)
        )
        return f"{line} {fields}" if fields else line


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_FieldsFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL at INFO; an api_key query parameter would be in it.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


async def _serve(host: str, port: int, log_level: str) -> int:
    server: uvicorn.Server | None = None

    def stop() -> None:
        if server is not None:
            server.should_exit = True

    config = uvicorn.Config(
        create_app(on_done=stop),
        host=host,
        port=port,
        log_config=None,
        log_level=log_level.lower(),
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    sock = config.bind_socket()
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not serving.done():
        await asyncio.sleep(0.005)
    if server.started:
        bound_host, bound_port = sock.getsockname()[:2]
        sys.stdout.write(
            json.dumps({"event": "listening", "host": bound_host, "port": bound_port}) + "\n"
        )
        sys.stdout.flush()
    await serving
    return 0 if server.started else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="castra-worker", description="Run one castra investigation worker."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    _configure_logging(args.log_level.upper())
    return asyncio.run(_serve(args.host, args.port, args.log_level))


if __name__ == "__main__":
    sys.exit(main())
