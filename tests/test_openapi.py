"""The API keeps to its OpenAPI document (``/v1/openapi.yaml``): schemathesis sends every route documented
and undocumented input, and every answer must be documented — status, content type and body — with no 5xx
and every schema-violating request refused."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import fresh_database
from tests.helpers import free_port
from tests.metrics_stack import ROOT, running, wait_until
from wvs_core.api.app import routes
from wvs_core.embedded import EmbeddedPostgres

# Per operation and mode. Generation is derandomized so CI is repeatable; set WVS_FUZZ_EXAMPLES (and a
# random seed with --hypothesis-seed) to search further.
EXAMPLES = int(os.environ.get("WVS_FUZZ_EXAMPLES", "40"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture(scope="module")
def api_url(postgres: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API plane alone in its own process, on a database of its own (tasks stay PENDING)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = tmp_path_factory.mktemp("openapi") / "wvs.toml"
    with fresh_database(postgres) as dsn:
        config.write_text(f'[database]\ndsn = "{dsn}"\n[api]\nlisten_addr = "127.0.0.1:{port}"\n')
        with running(sys.executable, "-m", "tests.service_process", str(config), "api", cwd=ROOT):
            wait_until(lambda: httpx.get(f"{url}/readyz").status_code == 200, what="the API")
            yield url


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda mode: mode.value)
def test_every_answer_is_documented_and_no_input_breaks_the_api(api_url: str, mode: GenerationMode) -> None:
    """Positive: inputs the document allows; negative: inputs it forbids (each must be refused with a 4xx)."""
    schema = schemathesis.openapi.from_url(f"{api_url}/v1/openapi.yaml")
    operations = [result.ok() for result in schema.get_all_operations()]
    served = {(method, route.path) for route in routes for method in route.methods or () if method != "HEAD"}
    documented = {(operation.method.upper(), operation.path) for operation in operations}
    assert documented == {
        (method, path) for method, path in served if path.startswith(("/v1/workspaces", "/v1/tasks", "/v1/events"))
    }, "every /v1 route is documented, nothing else"
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            derandomize="WVS_FUZZ_EXAMPLES" not in os.environ,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def answers_as_documented(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=api_url, checks=CHECKS)

        answers_as_documented()
