"""A worker image installs castra without the server side: worker_runtime must import with
temporalio, pymongo, fastapi, pydantic_settings and cryptography absent."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

SCRIPT = textwrap.dedent(
    """
    import sys

    BLOCKED = {"temporalio", "pymongo", "fastapi", "pydantic_settings", "cryptography"}

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"blocked in a worker: {name}", name=name)
            return None

    sys.meta_path.insert(0, Block())

    import worker_runtime.__main__
    import worker_runtime.server
    import worker_runtime.loop
    import worker_runtime.browser
    import worker_runtime.http

    # the blocker works: a server-side import does fail
    try:
        import temporalio  # noqa: F401
    except ModuleNotFoundError:
        pass
    else:
        raise SystemExit("the blocker let temporalio through")

    # Playwright is loaded only when a browser step runs.
    assert "playwright" not in sys.modules, "playwright imported at startup"
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    assert not loaded, loaded
    print("isolated ok")
    """
)


def test_worker_runtime_imports_without_server_dependencies() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "isolated ok"
