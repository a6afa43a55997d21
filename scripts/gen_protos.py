"""Regenerate the committed gRPC stubs from protos/ (``make protos``); the tests call it to detect stale stubs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "wvs_core/rpc"
PROTOS = ("executor.proto",)


def generate(out_dir: Path) -> list[Path]:
    """Run protoc (with the mypy stub plugins) into ``out_dir``; returns the files written."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    for proto in PROTOS:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"-I{PACKAGE}={ROOT / 'protos'}",
                f"--python_out={out_dir}",
                f"--grpc_python_out={out_dir}",
                f"--mypy_out={out_dir}",
                f"--mypy_grpc_out={out_dir}",
                f"{PACKAGE}/{proto}",
            ],
            check=True,
            env=env,
            capture_output=True,
        )
    return sorted((out_dir / PACKAGE).glob("*_pb2*"))


def main() -> None:
    """Regenerate in place."""
    scratch = ROOT / "build" / "protos"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    for generated in generate(scratch):
        shutil.copy(generated, ROOT / PACKAGE / generated.name)
        print(f"wrote {PACKAGE}/{generated.name}")


if __name__ == "__main__":
    main()
