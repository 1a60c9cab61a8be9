"""``/v1/credentials``: a tenant's credentials, kept in the secret store.

Secret values go in and never come out here: responses carry names, kinds, allowed hosts
and times only (the one way out is the worker API, for the step that names a credential).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Response

from api.bodies import JSONRoute
from api.deps import SecretsDep, TenantDep
from api.schemas import CredentialList, CredentialOut
from core.models import NAME_RE, Credential

router = APIRouter(prefix="/v1/credentials", tags=["credentials"], route_class=JSONRoute)

CredentialName = Annotated[str, Path(pattern=NAME_RE.pattern)]


@router.put("/{name}", response_model=CredentialOut)
async def put_credential(
    name: CredentialName,
    credential: Annotated[Credential, Body()],
    tenant_id: TenantDep,
    secrets: SecretsDep,
) -> CredentialOut:
    summary = await secrets.put(tenant_id, name, credential)
    return CredentialOut.model_validate(summary.model_dump())


@router.get("", response_model=CredentialList)
async def list_credentials(tenant_id: TenantDep, secrets: SecretsDep) -> CredentialList:
    return CredentialList(
        items=[CredentialOut.model_validate(s.model_dump()) for s in await secrets.list(tenant_id)]
    )


@router.delete("/{name}", status_code=204, response_class=Response)
async def delete_credential(
    name: CredentialName, tenant_id: TenantDep, secrets: SecretsDep
) -> Response:
    await secrets.delete(tenant_id, name)
    return Response(status_code=204)
