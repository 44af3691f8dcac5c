"""Shared fixtures: the study, small rosters, and (via fhir_server_fixture) the local HAPI server."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from adapter.roster import Roster, parse_roster
from adapter.study import StudyConfig, default_mappings_dir, load_study

with contextlib.suppress(ModuleNotFoundError):  # the session-wide HAPI server fixture `fhir_base_url`
    from tests.fhir_server_fixture import *  # noqa: F403

REPO = Path(__file__).resolve().parent.parent

ROSTER_CSV = """subject_id,mrn,arm,enrolled_on,infused_on,sex,birth_date,weight_kg
S001,MRN1001,cell-therapy,2019-06-03,2019-06-10,F,1965-03-02,61.5
S002,MRN1002,control,2019-06-04,,M,1970-01-01,70
S003,MRN1003,cell-therapy,2019-06-05,2019-06-12,M,1958-11-30,82
"""


@pytest.fixture(scope="session")
def study() -> StudyConfig:
    return load_study(default_mappings_dir() / "study.yaml")


@pytest.fixture()
def roster(study: StudyConfig) -> Roster:
    return parse_roster(ROSTER_CSV, study, "roster.csv")


@pytest.fixture()
def roster_file(tmp_path: Path) -> Path:
    path = tmp_path / "roster.csv"
    path.write_text(ROSTER_CSV, encoding="utf-8")
    return path
