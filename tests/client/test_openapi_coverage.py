"""Every route WVS serves has its SDK method: a route added to the API (or an op's route a shipped plugin adds)
without one fails here."""

from __future__ import annotations

import yaml

from wvs_client import AsyncClient, Client, calls

METHODS = {"get", "put", "post", "delete", "patch"}
OUTSIDE_THE_DOCUMENT = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/v1/openapi.yaml")}


async def test_every_route_of_the_served_document_has_a_method_in_both_clients(wvs) -> None:
    async with AsyncClient(str(wvs.base_url)) as client:
        document = yaml.safe_load(await client.openapi())
    served = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item if method in METHODS
    }
    assert ("POST", "/v1/workspaces/{wsid}/snapshots/{snapshot_id}:diff") in served, "the ops' routes are served"
    assert served - set(calls.ROUTES) == set(), "routes without an SDK method"
    assert set(calls.ROUTES) - served == OUTSIDE_THE_DOCUMENT, "SDK routes the API does not serve"
    for name in calls.ROUTES.values():
        assert callable(getattr(Client, name)) and callable(getattr(AsyncClient, name)), name
