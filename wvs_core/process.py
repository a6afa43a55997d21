"""Running external commands from asyncio with clear failures."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Sequence
from typing import Any

# util-linux's setpriv makes the child get SIGKILL when its parent dies, so a kill -9 of the executor never
# leaves a clone running on after recovery cleaned up. (A preexec_fn would do it too, but is not safe in a
# process with threads.)
_SETPRIV = shutil.which("setpriv")
_DIE_WITH_PARENT = (_SETPRIV, "--pdeathsig", "KILL") if _SETPRIV else ()


class CommandFailed(Exception):
    """A command exited non-zero; carries its output for the error message."""

    def __init__(self, argv: Sequence[str], returncode: int, output: str) -> None:
        super().__init__(f"{argv[0]} exited {returncode}: {output.strip()[-500:]}")
        self.returncode = returncode
        self.output = output


async def run_command(*argv: str, cwd: int | None = None) -> str:
    """Run ``argv``; return its combined output, or raise CommandFailed on a non-zero exit.

    ``cwd`` is a directory descriptor to run in: the child inherits it and starts in
    ``/proc/self/fd/<cwd>``, that very directory, with no path resolved again (and no ``PWD`` to mislead
    it).
    """
    options: dict[str, Any] = {}
    if cwd is not None:
        environment = {key: value for key, value in os.environ.items() if key != "PWD"}
        options = {"cwd": f"/proc/self/fd/{cwd}", "pass_fds": (cwd,), "env": environment}
    process = await asyncio.create_subprocess_exec(
        *_DIE_WITH_PARENT, *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, **options
    )
    try:
        output, _ = await process.communicate()
    except asyncio.CancelledError:
        # A cancelled op must not leave a clone running behind our back.
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    text = output.decode(errors="replace")
    if process.returncode != 0:
        raise CommandFailed(argv, process.returncode or 0, text)
    return text
