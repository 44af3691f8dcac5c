"""Fixtures for the HL7 v2 tests: the corpus, its roster, and a converter context."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from adapter.converters import ConvertContext
from adapter.roster import Roster, load_roster
from adapter.study import StudyConfig, default_mappings_dir

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "hl7"
EXPECTED = CORPUS / "expected"


def corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("*.hl7"))


def validate(resource: dict[str, Any]) -> None:
    """Fail unless the resource is valid FHIR R4 (fhir.resources R4B models)."""
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


@pytest.fixture(scope="session")
def hl7_roster(study: StudyConfig) -> Roster:
    return load_roster(CORPUS / "roster.csv", study)


@pytest.fixture(scope="session")
def hl7_ctx(study: StudyConfig, hl7_roster: Roster) -> ConvertContext:
    return ConvertContext(study, hl7_roster, default_mappings_dir())


@pytest.fixture(autouse=True)
def _no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """NDJSON writes fsync each file; durability is not under test here and fsync is slow on CI."""
    monkeypatch.setattr("adapter.ndjson.os.fsync", lambda fd: None)
