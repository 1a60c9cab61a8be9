"""``GET /healthz``: is the API up, and can it reach Temporal and MongoDB right now.

Always 200 while the process serves: the API keeps accepting triggers when Temporal is
away, so a probe must not restart it for that. ``ok`` is true when both are reachable.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from fastapi import APIRouter

from api.deps import RuntimeDep
from api.schemas import Health

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

PROBE_SECONDS = 2.0


async def _mongodb_ok(rt: RuntimeDep) -> bool:
    try:
        await asyncio.wait_for(rt.db.command("ping"), PROBE_SECONDS)
        return True
    except Exception as exc:  # any failure means "not reachable now"
        log.debug("mongodb health probe failed: %s", exc)
        return False


async def _temporal_ok(rt: RuntimeDep) -> bool:
    if rt.temporal is None:
        return False
    try:
        return await asyncio.wait_for(
            rt.temporal.service_client.check_health(timeout=timedelta(seconds=PROBE_SECONDS)),
            PROBE_SECONDS + 1,
        )
    except Exception as exc:  # any failure means "not reachable now"
        log.debug("temporal health probe failed: %s", exc)
        return False


@router.get("/healthz", response_model=Health)
async def healthz(rt: RuntimeDep) -> Health:
    mongodb, temporal = await asyncio.gather(_mongodb_ok(rt), _temporal_ok(rt))
    return Health(ok=mongodb and temporal, temporal=temporal, mongodb=mongodb)
