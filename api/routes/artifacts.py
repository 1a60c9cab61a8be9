"""``GET /v1/investigations/{id}/artifacts/{artifact_id}``: a stored artifact's bytes.

Artifacts (screenshots, downloads) are uploaded by workers into the GridFS bucket
``artifacts``; a tenant reads only those of its own investigations.
"""

from __future__ import annotations

from urllib.parse import quote

from bson import ObjectId
from bson.errors import InvalidId
from fastapi import APIRouter, Response
from gridfs import AsyncGridFSBucket

from api.deps import DbDep, TenantDep
from core import db as dbm
from core.errors import NotFound

router = APIRouter(prefix="/v1/investigations", tags=["investigations"])


def bucket(db: dbm.Db) -> AsyncGridFSBucket:
    return AsyncGridFSBucket(db, bucket_name=dbm.ARTIFACTS_BUCKET)


@router.get(
    "/{investigation_id}/artifacts/{artifact_id}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def get_artifact(
    investigation_id: str, artifact_id: str, tenant_id: TenantDep, db: DbDep
) -> Response:
    missing = NotFound(f"artifact {artifact_id!r} not found")
    try:
        oid = ObjectId(artifact_id)
    except (InvalidId, TypeError):
        raise missing from None
    meta = await db[f"{dbm.ARTIFACTS_BUCKET}.files"].find_one(
        {
            "_id": oid,
            "metadata.tenant_id": tenant_id,
            "metadata.investigation_id": investigation_id,
        }
    )
    if meta is None:
        raise missing
    stream = await bucket(db).open_download_stream(oid)
    content = await stream.read()
    name = str(meta["metadata"].get("name") or artifact_id)
    return Response(
        content,
        media_type=meta["metadata"].get("content_type") or "application/octet-stream",
        headers={
            # whatever a worker uploaded must not run as a page on the API's origin
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
        },
    )
