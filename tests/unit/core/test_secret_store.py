"""The local encrypted credential store: values round-trip, the file holds no clear value,
and a wrong key is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from core.errors import NotFound, Unavailable
from core.models import ApiKeyCredential, BasicCredential
from core.secrets import LocalSecretStore, secret_store
from core.settings import Settings

SECRET = "s3cr3t-value-never-in-the-file"


async def test_round_trip_list_delete(tmp_path: Path) -> None:
    store = secret_store(Settings(_env_file=None, data_dir=tmp_path))
    await store.put("t1", "portal", BasicCredential(kind="basic", username="u", password=SECRET))
    await store.put("t2", "portal", ApiKeyCredential(kind="api_key", key="other-tenant"))

    got = await store.get("t1", "portal")
    assert isinstance(got, BasicCredential) and got.password.get_secret_value() == SECRET
    assert [(c.name, c.kind) for c in await store.list("t1")] == [("portal", "basic")]
    assert SECRET not in (tmp_path / "secrets.json").read_text()
    assert (tmp_path / "secrets.key").stat().st_mode & 0o777 == 0o600

    await store.delete("t1", "portal")
    with pytest.raises(NotFound):
        await store.get("t1", "portal")
    with pytest.raises(NotFound):
        await store.delete("t1", "portal")
    assert (await store.get("t2", "portal")).kind == "api_key"  # other tenants untouched


async def test_key_is_reused_across_restarts_and_a_wrong_key_is_refused(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)
    await secret_store(settings).put("t", "c", ApiKeyCredential(kind="api_key", key=SECRET))
    assert (await secret_store(settings).get("t", "c")).kind == "api_key"

    wrong = LocalSecretStore(tmp_path / "secrets.json", Fernet.generate_key())
    with pytest.raises(Unavailable, match="key does not match"):
        await wrong.get("t", "c")
