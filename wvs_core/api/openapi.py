"""``GET /v1/openapi.yaml``: the API's OpenAPI document (``openapi.yaml`` beside this module)."""

from __future__ import annotations

import functools
from importlib.resources import files

from starlette.requests import Request
from starlette.responses import Response


@functools.cache
def document() -> str:
    """The OpenAPI document, read once."""
    return files("wvs_core.api").joinpath("openapi.yaml").read_text(encoding="utf-8")


async def openapi(_request: Request) -> Response:
    """The OpenAPI 3 description of every route, in YAML."""
    return Response(document(), media_type="application/yaml")
