"""Shared by the BHYT tests: the fixture context, R4 validation, golden folders, the PHI scan."""

from __future__ import annotations

import difflib
import importlib.util
import json
import os
import shutil
from pathlib import Path

from fhir.resources.R4B import get_fhir_model_class

from adapter.converters import ConvertContext
from adapter.model import Conversion, Resource
from adapter.ndjson import merge_accounts, merge_resources
from adapter.roster import load_roster
from adapter.study import StudyConfig, default_mappings_dir

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures" / "bhyt"
MAPPINGS = default_mappings_dir()


def generator():
    """fixtures/bhyt/generate.py as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("bhyt_fixture_generator", FIXTURES / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def context(study: StudyConfig, roster_csv: Path = FIXTURES / "roster.csv") -> ConvertContext:
    return ConvertContext(study=study, roster=load_roster(roster_csv, study), mappings_dir=MAPPINGS)


def validate(resource: Resource) -> None:
    """Raise if the resource is not valid FHIR R4(B) JSON."""
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def output_text(conversion: Conversion) -> str:
    """Everything a conversion lets out of the adapter, as one string (resources and accounts)."""
    parts = [json.dumps(r, ensure_ascii=False) for r in conversion.resources]
    parts += [json.dumps(a.as_json(), ensure_ascii=False) for a in conversion.accounts]
    return "\n".join(parts)


def secrets() -> list[str]:
    """Every identifying and money value the fixtures contain (names, ID/card numbers, MRNs, prices)."""
    gen = generator()
    values = [v for person in gen.PHI.values() for v in person.values()]
    values += list(gen.MRN.values()) + gen.MONEY
    return values


def assert_golden(conversion: Conversion, expected: Path, tmp_path: Path) -> None:
    """Write the conversion as `adapter convert` does and compare it with the expected folder.

    UPDATE_GOLDEN=1 rewrites the expected folder instead (review the diff before committing).
    """
    out = tmp_path / "golden-out"
    out.mkdir()
    merge_resources(out, conversion.resources)
    merge_accounts(out, conversion.accounts)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        shutil.rmtree(expected, ignore_errors=True)
        shutil.copytree(out, expected)
        return
    got = sorted(p.name for p in out.iterdir())
    assert got == sorted(p.name for p in expected.iterdir()), "golden folder holds other files"
    for name in got:
        new = (out / name).read_text(encoding="utf-8").splitlines()
        old = (expected / name).read_text(encoding="utf-8").splitlines()
        diff = "\n".join(difflib.unified_diff(old, new, f"expected/{name}", f"got/{name}", lineterm=""))
        assert not diff, f"{name} differs from the golden file (UPDATE_GOLDEN=1 to accept):\n{diff[:4000]}"
