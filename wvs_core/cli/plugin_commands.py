"""Which commands each plugin adds to ``wvs`` and ``wvsctl`` (``wvs plugins``), found by letting each plugin's
``wvs_register_commands`` / ``wvs_register_ctl_commands`` add them to a stand-in of the command line that
records every addition; the real command lines are left as they are."""

from __future__ import annotations

import click
import pluggy


class _Recording(click.Group):
    """A group standing in for ``original`` (a ``wvs`` or ``wvsctl`` group, named by ``path``): subgroups
    stand in too, and every command added is appended to ``added`` as its full path."""

    def __init__(self, original: click.Group, path: str, added: list[str]) -> None:
        super().__init__(original.name)
        self.path = path
        self.added = added
        for name, command in original.commands.items():
            stand_in = _Recording(command, f"{path} {name}", added) if isinstance(command, click.Group) else command
            super().add_command(stand_in, name)

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        """Record ``cmd``'s path, then add it."""
        self.added.append(f"{self.path} {name or cmd.name}")
        super().add_command(cmd, name)


def commands_by_plugin(hook: pluggy.HookCaller, cli: click.Group, program: str) -> dict[str, list[str]]:
    """Plugin name → the commands its implementation of ``hook`` adds to ``cli`` (the command line ``program``),
    as full paths such as ``"wvsctl snapshot diff"``."""
    found: dict[str, list[str]] = {}
    for implementation in hook.get_hookimpls():
        added: list[str] = []
        implementation.function(cli=_Recording(cli, program, added))
        if added:
            found[implementation.plugin_name] = added
    return found


def plugin_commands(pm: pluggy.PluginManager, wvs_cli: click.Group, wvsctl_cli: click.Group) -> dict[str, list[str]]:
    """Plugin name → ``["command:wvs agent", "command:wvsctl snapshot diff", …]``: what each adds to either."""
    provides: dict[str, list[str]] = {}
    for hook, cli, program in (
        (pm.hook.wvs_register_commands, wvs_cli, "wvs"),
        (pm.hook.wvs_register_ctl_commands, wvsctl_cli, "wvsctl"),
    ):
        for name, paths in commands_by_plugin(hook, cli, program).items():
            provides.setdefault(name, []).extend(f"command:{path}" for path in paths)
    return provides
