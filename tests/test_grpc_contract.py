"""The committed generated code matches protos/ (python -m adapters.grpc.codegen --check)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_generated_code_is_up_to_date() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "adapters.grpc.codegen", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_generated_code_imports_as_a_package() -> None:
    from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
    from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2_grpc as pbg

    assert pb.DESCRIPTOR.package == "onestop.settlement.v1"
    assert {s for s in pb.DESCRIPTOR.services_by_name} == {
        "SettlementService",
        "PolicyAdminService",
        "ReconciliationService",
    }
    assert hasattr(pbg, "SettlementServiceStub") and hasattr(pbg, "PolicyAdminServiceServicer")


def test_every_field_and_rpc_is_documented() -> None:
    """Each rpc, field and enum value of the contract has a comment on its line or just above
    it (a comment may head a group of fields on consecutive lines)."""
    decl = re.compile(r"^\s*(rpc |(optional |repeated )?[\w.]+ \w+ = \d+|[A-Z_0-9]+ = \d+;)")
    undocumented = []
    for proto in sorted((ROOT / "protos" / "onestop").rglob("*.proto")):  # not third_party/
        lines = proto.read_text().splitlines()
        for i, line in enumerate(lines):
            if not decl.match(line) or "//" in line:
                continue
            j = i - 1
            while j >= 0 and decl.match(lines[j]):
                j -= 1  # a group of fields under one comment
            if j < 0 or not lines[j].strip().startswith("//"):
                undocumented.append(f"{proto.name}:{i + 1}: {line.strip()}")
    assert not undocumented, undocumented
