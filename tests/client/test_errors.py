"""One exception class per WVS_ code of SPEC §2, each carrying code, message, status and request id."""

from __future__ import annotations

import re
from pathlib import Path

from wvs_client import WvsError, WvsUnreachable
from wvs_client.errors import ERRORS_BY_CODE, error_from_answer

SPEC_TABLE = Path(__file__).parents[2] / "wvs_core" / "api" / "openapi.yaml"


def test_every_code_the_api_documents_has_its_class() -> None:
    documented = set(re.findall(r"- (WVS_[A-Z_]+)", SPEC_TABLE.read_text()))
    assert documented == set(ERRORS_BY_CODE)
    classes = set(ERRORS_BY_CODE.values())
    assert len(classes) == len(documented) and all(issubclass(cls, WvsError) for cls in classes)
    assert WvsUnreachable not in classes and issubclass(WvsUnreachable, WvsError)


def test_an_envelope_becomes_its_class_and_an_unknown_code_the_base() -> None:
    envelope = {"error": {"code": "WVS_GONE", "message": "disabled", "request_id": "r-1"}}
    error = error_from_answer(410, envelope, "sent")
    assert type(error).__name__ == "Gone" and (error.code, error.message, error.status, error.request_id) == (
        "WVS_GONE",
        "disabled",
        410,
        "r-1",
    )
    unknown = error_from_answer(418, {"error": {"code": "WVS_TEAPOT", "message": "m", "request_id": ""}}, "sent")
    assert type(unknown) is WvsError and unknown.code == "WVS_TEAPOT" and unknown.request_id == "sent"
    proxy = error_from_answer(502, None, "sent")
    assert type(proxy) is WvsError and proxy.code == "HTTP_502" and proxy.status == 502
