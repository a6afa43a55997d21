"""Every environment variable the docs name is read by something: operations.md's table is exactly the config
loader's overrides (each variable with its keys), and any other variable the docs or the README mention is read
by the code (a ``click`` ``envvar``, an ``environ``/``env`` lookup) or by the deployment's shell (``$NAME``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wvs_core.config import ENV_OVERRIDES
from wvs_core.errors import ErrorCode

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SOURCES = [
    path
    for package in ("wvs_core", "executor", "plugins", "clients/python/src")
    for path in (ROOT / package).rglob("*.py")
]
SHELL = [*(ROOT / "scripts").glob("*.sh"), ROOT / "docker-compose.yml", ROOT / "Makefile"]
VARIABLE = re.compile(r"\b(?:WVS|EXECUTOR|WORKER|JFS|MINIO)_[A-Z0-9_]*[A-Z0-9]\b")


def table_rows() -> dict[str, list[str]]:
    """operations.md's env table: variable → the config keys its second column names."""
    text = (ROOT / "docs" / "operations.md").read_text()
    table = text.split("| env | config key | default |", 1)[1].split("\n\n", 1)[0]
    rows = {}
    for line in table.strip().splitlines()[1:]:
        variable, keys = (cell.strip() for cell in line.strip("|").split("|")[:2])
        keys = re.sub(r"\(.*?\)", "", keys)  # what a parenthesis says of a key names no key
        rows[variable.strip("`")] = re.findall(r"`([a-z_]+(?:\.[a-z_]+)*)`", keys)
    return rows


def read_by_code() -> set[str]:
    """Variables the code reads outside the config loader, and the deployment's shell uses."""
    lookup = re.compile(r"""(?:envvar=|environ\.get\(|environ\[|env\.get\(|getenv\()["']([A-Z0-9_]+)["']""")
    found = {name for path in SOURCES for name in lookup.findall(path.read_text())}
    shell = re.compile(r"\$\$?\{?([A-Z][A-Z0-9_]+)")
    return found | {name for path in SHELL for name in shell.findall(path.read_text())}


def error_codes() -> set[str]:
    """Codes, which look like variables but are not: the API's ``WVS_…`` codes, wvsctl's own and the failure
    reasons (``CallFailed("EXECUTOR_UNAVAILABLE", …)``: the first argument of an error or failure), the SDK's
    (``code = "WVS_UNREACHABLE"``) and a CLI failure's leading code (``ClickException(f"WVS_METRICS_QUERY: …")``)."""
    raised = re.compile(
        r"""\w+(?:Error|Failed)\(\s*["']([A-Z_]+)["']|\bcode = ["']([A-Z_]+)["']|Exception\(\s*f?["']([A-Z_]+):"""
    )
    return {code.value for code in ErrorCode} | {
        code for path in SOURCES for groups in raised.findall(path.read_text()) for code in groups if code
    }


def test_the_table_is_the_loaders_overrides() -> None:
    assert table_rows() == {variable: list(keys) for variable, keys in ENV_OVERRIDES.items()}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_variable_the_docs_name_is_read_by_something(document: Path) -> None:
    named = set(VARIABLE.findall(document.read_text())) - error_codes()
    unread = named - set(ENV_OVERRIDES) - read_by_code()
    assert not unread, f"{document.name} names environment variables nothing reads: {sorted(unread)}"


def test_the_checks_catch_a_variable_nothing_reads() -> None:
    assert "JFS_META_URL" not in ENV_OVERRIDES, "no WVS code needs a JuiceFS metadata URL (operations.md says why)"
    assert "JFS_META_URL" in read_by_code(), "the reference deployment's executor mounts the volume it names"
    assert "WVS_NO_SUCH_SETTING" not in read_by_code() | set(ENV_OVERRIDES)
    assert {"WVS_API_URL", "WVS_TOKEN", "WVS_CONFIG", "WVS_DATA_DIR", "WVS_METRICS_URL"} <= read_by_code()
