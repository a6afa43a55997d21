"""The SDK client behind ``wvsctl`` (``wvs_client.Client``), and its failures as CLI errors (where it points:
``wvs_core.cli.discovery``)."""

from __future__ import annotations

from typing import Any

import click
from click.core import ParameterSource

from wvs_client import Client, WvsError, WvsUnreachable


class WvsctlGroup(click.Group):
    """The ``wvsctl`` group: a ``WvsError`` from any command (a plugin's too) prints its ``WVS_…`` code, message
    and request id (none when unreachable) on one line and exits 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WvsUnreachable as error:
            if ctx.get_parameter_source("api_url") in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
                hint = "the URL given with --api-url or WVS_API_URL: is WVS running there?"
            else:
                hint = "start it with `wvs up`, or give its URL with --api-url or WVS_API_URL"
            raise click.ClickException(f"{error} — {hint}") from None
        except WvsError as error:
            raise click.ClickException(str(error)) from None


def client(ctx: click.Context) -> Client:
    """The API client of this invocation."""
    api = ctx.find_object(Client)
    assert api is not None, "wvsctl subcommands run under the wvsctl group"
    return api
