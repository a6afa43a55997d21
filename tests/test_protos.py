"""The committed gRPC stubs are exactly what protos/ generates."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "scripts" / "gen_protos.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_stubs_match_the_proto(tmp_path: Path) -> None:
    generated = _generator().generate(tmp_path)
    assert {path.name for path in generated} == {
        "executor_pb2.py",
        "executor_pb2.pyi",
        "executor_pb2_grpc.py",
        "executor_pb2_grpc.pyi",
    }
    for path in generated:
        committed = ROOT / "wvs_core" / "rpc" / path.name
        assert committed.read_text() == path.read_text(), f"{committed} is stale: run `make protos`"
