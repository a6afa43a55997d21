"""Reading docs/plugin-hooks.md the way its test needs it: its hook sections, its fenced examples (run as
modules), and the config keys that it and the plugin contracts' docstrings name, checked against the schema."""

from __future__ import annotations

import ast
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

import attrs
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

from wvs_core.config import Config, PluginsConfig, config_from_dict
from wvs_core.errors import ConfigError

DOCS = Path(__file__).resolve().parent.parent / "docs" / "plugin-hooks.md"

_FENCE = re.compile(r"^```(\w*)\s*$")
_HOOK_HEADING = re.compile(r"^## `(\w+)(.*)`\s*$")
_MODULE_LINE = re.compile(r"^# (\w+)\.py\s*$")
# A key as prose writes it: `plugins.storage`, `[plugins.settings.<name>]`, `plugins.storage = "localfs"`.
_KEY = re.compile(r"^\[?(?P<path>[a-z_][a-z0-9_]*(?:\.(?:[a-z0-9_-]+|<[a-z_]+>))+)\]?(?P<value>\s*=\s*.+)?$")
_CONFIG_TOP = set(attrs.fields_dict(Config))
_PLUGINS_KEYS = set(attrs.fields_dict(PluginsConfig))


@attrs.frozen
class Block:
    """One fenced block: its language, its text, the line of its first text line, and the hook whose section
    holds it (None outside the hook sections)."""

    lang: str
    code: str
    line: int
    hook: str | None

    @property
    def module_name(self) -> str | None:
        """The module a Python example says it is (its first line: ``# wvs_reflink.py``)."""
        first = self.code.split("\n", 1)[0]
        match = _MODULE_LINE.match(first)
        return match.group(1) if match else None

    @property
    def where(self) -> str:
        """``plugin-hooks.md:123``, for messages."""
        return f"{DOCS.name}:{self.line}"

    def toml(self) -> dict[str, Any]:
        """The block parsed as TOML."""
        return tomllib.loads(self.code)

    def is_pyproject(self) -> bool:
        """A TOML block of a package's ``pyproject.toml`` (entry points), not a WVS config."""
        return "project" in self.toml()

    def named_modules(self) -> list[str]:
        """The plugin modules a TOML block loads: ``plugins.modules``, or a package's ``wvs`` entry points."""
        data = self.toml()
        if self.is_pyproject():
            return list(data["project"].get("entry-points", {}).get("wvs", {}).values())
        return list(data.get("plugins", {}).get("modules", []))


def read_doc(path: Path = DOCS) -> tuple[list[Block], dict[str, list[str]]]:
    """The fenced blocks of ``path``, and each hook section's headings (hook name → the signatures its
    ``## `hook(...)` `` headings show; more than one is a mistake the test reports)."""
    blocks: list[Block] = []
    headings: dict[str, list[str]] = {}
    hook: str | None = None
    fence: tuple[str, int, list[str]] | None = None
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = _FENCE.match(line)
        if fence is not None:
            if match and not match.group(1):
                blocks.append(Block(fence[0], "\n".join(fence[2]) + "\n", fence[1], hook))
                fence = None
            else:
                fence[2].append(line)
        elif match:
            fence = (match.group(1), number + 1, [])
        elif line.startswith("## "):
            heading = _HOOK_HEADING.match(line)
            hook = heading.group(1) if heading else None
            if heading:
                headings.setdefault(heading.group(1), []).append(heading.group(1) + heading.group(2))
    return blocks, headings


def section_text(hook: str, path: Path = DOCS) -> str:
    """The text of ``hook``'s section, up to the next ``## `` heading."""
    text = path.read_text()
    start = text.index(f"## `{hook}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else None]


def run_example(block: Block, name: str) -> types.ModuleType:
    """Execute a Python example as the module ``name``; tracebacks point at its lines in the doc. The metrics it
    defines are taken out of prometheus_client's default registry again (read them through the module): a
    plugin's module is imported once per process, an example runs many times in the test process."""
    module = types.ModuleType(name, None)
    module.__file__ = str(DOCS)
    code = compile("\n" * (block.line - 1) + block.code, str(DOCS), "exec")
    exec(code, module.__dict__)
    for value in vars(module).values():
        if isinstance(value, MetricWrapperBase):
            REGISTRY.unregister(value)
    return module


# --- config keys -------------------------------------------------------------------------------------------


def prose_spans(path: Path) -> list[str]:
    """Inline code spans of a Markdown file outside its fenced blocks."""
    spans: list[str] = []
    in_fence = False
    for line in path.read_text().splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence:
            spans += re.findall(r"`([^`]+)`", line)
    return spans


def docstring_spans(source: str) -> list[str]:
    """``literal`` spans of every docstring of a Python module."""
    spans: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            spans += re.findall(r"``([^`]+)``", ast.get_docstring(node) or "")
    return spans


def config_key_spans(spans: list[str]) -> list[str]:
    """The spans that name a config key: a dotted lower-case path starting at a section of the config or at a
    key of its ``[plugins]`` table (written as if it were a section: ``storage.backend``)."""
    return [
        span
        for span in spans
        if (match := _KEY.match(span.strip())) and match["path"].split(".")[0] in _CONFIG_TOP | _PLUGINS_KEYS
    ]


def key_problem(span: str) -> str | None:
    """Why the config key written as ``span`` does not exist in ``wvs_core.config`` (None when it does).

    Sections and keys are the attrs fields of ``Config``; below a table of free names (``plugins.settings``)
    any name goes, ``<name>`` included. ``key = value`` is also loaded, value and all, by the config loader.
    """
    match = _KEY.match(span.strip())
    if match is None:
        return f"`{span}` is not written as a config key"
    parts = match["path"].split(".")
    kind: Any = Config
    for depth, part in enumerate(parts):
        here = ".".join(parts[: depth + 1])
        if kind is Any:
            break
        if attrs.has(kind):
            fields = typing.get_type_hints(kind)
            if part not in fields:
                hint = ""
                if depth == 0 and part in _PLUGINS_KEYS:
                    hint = f" (the key is `plugins.{part}`; a plugin's own table is `[plugins.settings.<name>]`)"
                return f"`{span}`: the config has no key `{here}`{hint}"
            kind = fields[part]
        elif typing.get_origin(kind) is dict:
            kind = typing.get_args(kind)[1]  # a table of free names: plugins.settings.<name>
        else:
            return f"`{span}`: `{'.'.join(parts[:depth])}` is a value, not a table"
    if match["value"]:
        try:
            config_from_dict(tomllib.loads(match["path"] + match["value"]))
        except (ConfigError, tomllib.TOMLDecodeError) as error:
            return f"`{span}`: {error}"
    return None
