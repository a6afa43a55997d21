"""Bearer-token auth: 401 without a valid token, 403 when a read-only token writes, the token's subject as
the actor of every write, probes open, `wvs token new` tables (with owners), and a clear startup error for
a bad tokens file."""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from tests.conftest import StartService, make_config
from tests.helpers import bearer, new_token
from wvs_core.cli import wvsctl
from wvs_core.cli.wvs import cli as wvs_cli
from wvs_core.errors import ConfigError
from wvs_core.runtime import Service


def revoke(tokens_file: Path, subject: str) -> None:
    """Delete ``subject``'s table from the tokens file."""
    tables = tokens_file.read_text().split("\n[[tokens]]")
    tokens_file.write_text("\n[[tokens]]".join(table for table in tables if f'subject = "{subject}"' not in table))


@pytest.fixture
async def secured(database: str, tmp_path: Path, start_service: StartService) -> AsyncIterator[dict[str, Any]]:
    tokens_file = tmp_path / "tokens.toml"
    tokens = {
        "writer": new_token(tokens_file, "ci-bot", "write"),
        "reader": new_token(tokens_file, "dashboard", "read", owners="ci-bot"),
    }
    config = make_config(database, tmp_path, api={"tokens_file": str(tokens_file)})
    service = await start_service(config, planes=("api",))
    async with httpx.AsyncClient(base_url=service.api_url or "", timeout=30) as client:
        yield {"client": client, "tokens_file": tokens_file, **tokens}


async def test_without_a_valid_token_every_api_call_is_401_but_probes_stay_open(secured) -> None:
    client: httpx.AsyncClient = secured["client"]
    for headers in ({}, bearer("wvs_not-a-token"), {"Authorization": f"Basic {secured['writer']}"}):
        response = await client.get("/v1/workspaces", headers=headers)
        assert response.status_code == 401
        error = response.json()["error"]
        assert error["code"] == "WVS_UNAUTHORIZED" and error["request_id"] == response.headers["x-request-id"]
        assert response.headers["www-authenticate"].startswith("Bearer")
    refused = await client.post(
        "/v1/workspaces", json={"wsid": "intruder", "owner": "x"}, headers={"Idempotency-Key": "k"}
    )
    assert refused.status_code == 401
    for probe in ("/healthz", "/readyz", "/metrics"):
        assert (await client.get(probe)).status_code == 200
    assert secured["writer"] not in secured["tokens_file"].read_text(), "the tokens file holds digests only"


async def test_a_read_token_reads_and_a_write_token_writes_as_its_subject(secured) -> None:
    client: httpx.AsyncClient = secured["client"]
    body = {"wsid": "guarded", "owner": "ci-bot"}
    forbidden = await client.post(
        "/v1/workspaces", json=body, headers=bearer(secured["reader"], **{"Idempotency-Key": "k1"})
    )
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "WVS_FORBIDDEN"
    listed = await client.get("/v1/workspaces", headers=bearer(secured["reader"]))
    assert listed.status_code == 200 and listed.json()["items"] == [], "a refused write leaves nothing behind"

    created = await client.post(
        "/v1/workspaces", json=body, headers=bearer(secured["writer"], **{"Idempotency-Key": "k2"})
    )
    assert created.status_code == 202
    audit = (await client.get("/v1/workspaces/guarded/audit", headers=bearer(secured["reader"]))).json()["items"]
    assert audit and {event["actor"]["subject"] for event in audit if event["actor"]} == {"ci-bot"}


async def test_tokens_added_or_revoked_in_the_file_take_effect_without_a_restart(secured, caplog) -> None:
    client: httpx.AsyncClient = secured["client"]
    tokens_file: Path = secured["tokens_file"]

    async def answers(token: str, status: int) -> None:
        for _ in range(50):  # the file is looked at once a second
            if (await client.get("/v1/workspaces", headers=bearer(token))).status_code == status:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"the token never got {status}")

    newcomer = new_token(tokens_file, "newcomer", "read")
    await answers(newcomer, 200)
    revoke(tokens_file, "ci-bot")
    await answers(secured["writer"], 401)

    with tokens_file.open("a") as handle:  # a broken edit is ignored, loudly
        handle.write("\n[[tokens]\n")
    await asyncio.sleep(1.2)
    assert (await client.get("/v1/workspaces", headers=bearer(newcomer))).status_code == 200
    assert (await client.get("/v1/workspaces", headers=bearer(secured["writer"]))).status_code == 401
    assert any("keeping the tokens loaded before" in record.getMessage() for record in caplog.records)


async def test_wvsctl_sends_the_token_from_wvs_token(secured) -> None:
    url = str(secured["client"].base_url)

    def wvsctl_run(env: dict[str, str]) -> Any:
        return CliRunner().invoke(wvsctl.cli, ["--api-url", url, "workspace", "list", "--json"], env=env)

    allowed = await asyncio.to_thread(wvsctl_run, {"WVS_TOKEN": secured["reader"]})
    assert allowed.exit_code == 0, allowed.output
    refused = await asyncio.to_thread(wvsctl_run, {"WVS_TOKEN": ""})
    assert refused.exit_code != 0 and "WVS_UNAUTHORIZED" in refused.output


def test_wvs_token_new_lists_the_owners_it_acts_for() -> None:
    made = CliRunner().invoke(wvs_cli, ["token", "new", "--subject", "carol", "--role", "read", "--owners", "a, b"])
    assert made.exit_code == 0, made.output
    (table,) = tomllib.loads(made.stdout)["tokens"]
    assert table["owners"] == ["a", "b"] and table["role"] == "read"
    plain = CliRunner().invoke(wvs_cli, ["token", "new", "--subject", "carol"])
    assert "owners" not in tomllib.loads(plain.stdout)["tokens"][0]
    admin = CliRunner().invoke(wvs_cli, ["token", "new", "--subject", "ops", "--role", "admin", "--owners", "a"])
    assert admin.exit_code != 0 and "admin" in admin.output


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (None, "cannot read"),
        ("[[tokens]\n", "not valid TOML"),
        ('[[tokens]]\nsubject = "x"\nrole = "root"\nsha256 = "' + "0" * 64 + '"\n', "role"),
        ('[[tokens]]\nsubject = "x"\nrole = "read"\nowners = "team"\nsha256 = "' + "0" * 64 + '"\n', "owners"),
        ('[[tokens]]\nsubject = "x"\nrole = "admin"\nowners = ["t"]\nsha256 = "' + "0" * 64 + '"\n', "owners"),
        ('[[tokens]]\nsubject = "x"\nrole = "read"\nsha256 = "secret"\n', "sha256"),
        ('[[tokens]]\nsubject = "x"\nrole = "read"\nsha256 = "' + "0" * 64 + '"\nexpires = 1\n', "expires"),
    ],
)
def test_a_bad_tokens_file_stops_the_api_at_start_naming_the_key(tmp_path: Path, content, complaint) -> None:
    tokens_file = tmp_path / "tokens.toml"
    if content is not None:
        tokens_file.write_text(content)
    config = make_config("postgresql+asyncpg://unused@/x", tmp_path, api={"tokens_file": str(tokens_file)})
    with pytest.raises(ConfigError, match=r"api\.tokens_file") as raised:
        Service(config, planes=("api",))
    assert complaint in str(raised.value)
    Service(config, planes=("worker",))  # other planes do not need (or read) the tokens file
