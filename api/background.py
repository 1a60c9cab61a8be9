"""The API's background loops: reach Temporal, then start what was recorded without it.

The API serves without Temporal: triggers are recorded as ``queued`` and these loops start
their workflows once a client exists (core/triggers.py ``dispatch_pending``).
"""

from __future__ import annotations

import asyncio
import logging

from api.deps import Runtime
from core import temporal as tc
from core.triggers import dispatch_pending

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 10.0


async def connect_temporal(rt: Runtime) -> None:
    """Retries until a Temporal client exists; the client then reconnects on its own."""
    delay = 0.5
    while rt.temporal is None:
        try:
            client = await tc.connect(rt.settings)
        except Exception as exc:  # the SDK raises RuntimeError for transport errors
            log.warning(
                "temporal unreachable, retrying in %.1fs: %s",
                delay,
                exc,
                extra={"address": rt.settings.effective_temporal_address},
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_SECONDS)
            continue
        try:
            await tc.ensure_search_attributes(client)
        except Exception as exc:
            # e.g. Temporal Cloud, where the operator API is not ours: registered elsewhere
            log.info("search attributes not registered by the API: %s", exc)
        rt.temporal = client
        log.info("connected to temporal", extra={"address": rt.settings.effective_temporal_address})


async def dispatch_loop(rt: Runtime) -> None:
    """Starts recorded-but-unstarted investigations every ``dispatch_retry_seconds``."""
    while True:
        if rt.temporal is not None:
            try:
                started = await dispatch_pending(rt.temporal, rt.db, rt.settings)
            except Exception:
                log.exception("dispatching pending investigations failed")
            else:
                if started:
                    log.info("started %d pending investigations", started)
        await asyncio.sleep(rt.settings.dispatch_retry_seconds)
