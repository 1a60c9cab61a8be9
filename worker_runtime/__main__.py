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
import sys

import uvicorn

from core import logs
from worker_runtime.server import create_app


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
    logs.configure(args.log_level)
    return asyncio.run(_serve(args.host, args.port, args.log_level))


if __name__ == "__main__":
    sys.exit(main())
