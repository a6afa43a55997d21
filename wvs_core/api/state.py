"""What the API's lifespan builds and every route uses."""

from __future__ import annotations

from typing import TypedDict

from starlette.requests import Request

from wvs_core.config import Config
from wvs_core.db.store import Store
from wvs_core.plugins import PluginRegistry


class ApiState(TypedDict):
    """Typed lifespan state (``request.state``)."""

    config: Config
    registry: PluginRegistry
    store: Store
    openapi_document: str  # YAML, the loaded ops' routes included


def store(request: Request) -> Store:
    """The database store."""
    return request.state.store


def config(request: Request) -> Config:
    """The deployment config."""
    return request.state.config


def registry(request: Request) -> PluginRegistry:
    """The loaded plugins."""
    return request.state.registry


def openapi_document(request: Request) -> str:
    """The served OpenAPI document (YAML)."""
    return request.state.openapi_document
