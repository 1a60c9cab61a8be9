"""`castra tenants create` as an operator runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from pymongo import MongoClient

from core.security import hash_key

CASTRA = [sys.executable, "-m", "castra"]


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASTRA_")}
    return {**env, **values}


def test_tenants_create_prints_a_working_key_once(
    mongodb_server: str, mongo_db_name: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        [*CASTRA, "tenants", "create", "soc-emea"],
        env=_env(
            CASTRA_MONGODB_URI=mongodb_server,
            CASTRA_MONGODB_DATABASE=mongo_db_name,
            CASTRA_DATA_DIR=str(tmp_path),
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    key = re.search(r"API key:\s+(ck_\S+)", done.stdout)
    tenant = re.search(r"tenant id:\s+(ten_\S+)", done.stdout)
    assert key and tenant, done.stdout
    db = MongoClient(mongodb_server)[mongo_db_name]
    stored = db.api_keys.find_one({"_id": hash_key(key.group(1))})
    assert stored is not None and stored["tenant_id"] == tenant.group(1)
    assert db.api_keys.find_one({"_id": key.group(1)}) is None  # only the hash is kept


def test_tenants_create_without_mongodb_says_so_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [*CASTRA, "tenants", "create", "x"],
        env=_env(CASTRA_MONGODB_PORT="1", CASTRA_DATA_DIR=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "cannot reach MongoDB at mongodb://127.0.0.1:1/" in done.stderr
    assert "Traceback" not in done.stderr
