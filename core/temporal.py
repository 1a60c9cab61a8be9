"""The Temporal client and the one data converter every castra process uses."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter

from core.contracts import SEARCH_ATTRIBUTES
from core.settings import Settings

DATA_CONVERTER = pydantic_data_converter

TENANT = SearchAttributeKey.for_keyword("CastraTenant")
AUTOMATION = SearchAttributeKey.for_keyword("CastraAutomation")
STATUS = SearchAttributeKey.for_keyword("CastraStatus")
TRIGGER = SearchAttributeKey.for_keyword("CastraTrigger")


async def connect(settings: Settings) -> Client:
    return await Client.connect(
        settings.effective_temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=DATA_CONVERTER,
    )


async def ensure_search_attributes(client: Client, *, listable: bool = True) -> None:
    """Registers castra's search attributes on a server that lacks them (idempotent).
    ``listable=False`` skips the listing, for servers without it (the time-skipping one)."""
    existing = (
        (
            await client.operator_service.list_search_attributes(
                ListSearchAttributesRequest(namespace=client.namespace)
            )
        ).custom_attributes
        if listable
        else {}
    )
    missing = {
        name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
        for name in SEARCH_ATTRIBUTES
        if name not in existing
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
