"""API-only fixtures: the control plane on a real database, no executor or scheduler."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import StartService, make_config


@pytest.fixture
async def api(database: str, tmp_path: Path, start_service: StartService) -> AsyncIterator[httpx.AsyncClient]:
    """A client for an API whose tasks nobody runs (they stay PENDING)."""
    service = await start_service(make_config(database, tmp_path), planes=("api",))
    async with httpx.AsyncClient(base_url=service.api_url or "", timeout=30) as client:
        yield client
