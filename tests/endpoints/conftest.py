"""Shared fixtures for the endpoint tests: the hand-built NDJSON dataset and one run over it."""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapter.endpoints import FolderSource, load_endpoints_config, run_endpoints
from adapter.endpoints.config import EndpointsConfig
from adapter.endpoints.pipeline import EndpointsResult
from adapter.study import StudyConfig, default_mappings_dir

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "endpoints"
FACTORS = {"insulin_pmol_per_uiu": 6.0}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@dataclass
class Run:
    out: Path
    result: EndpointsResult

    def csv(self, name: str) -> list[dict[str, str]]:
        return read_csv(self.out / name)

    def endpoint(self, subject: str, param: str, visit: str) -> dict[str, str]:
        rows = [
            r
            for r in self.csv("endpoints.csv")
            if (r["subject_id"], r["param"], r["visit"]) == (subject, param, visit)
        ]
        assert len(rows) == 1, f"{subject} {param} {visit}: {len(rows)} rows"
        return rows[0]


@pytest.fixture(scope="session")
def endpoints_config(study: StudyConfig) -> EndpointsConfig:
    return load_endpoints_config(default_mappings_dir(), study)


@pytest.fixture(scope="session")
def fixture_run(
    tmp_path_factory: pytest.TempPathFactory, study: StudyConfig, endpoints_config: EndpointsConfig
) -> Run:
    """The fixture dataset through the whole pipeline once (without the report, which has its own test)."""
    out = tmp_path_factory.mktemp("endpoints")
    result = run_endpoints(FolderSource(FIXTURE), out, study, endpoints_config, FACTORS, report=False)
    return Run(out, result)


def run_with_extra(
    root: Path, study: StudyConfig, config: EndpointsConfig, extra: dict[str, list[dict]]
) -> Run:
    """The fixture dataset plus some resources (by type), through the pipeline (no report)."""
    data = root / "data"
    shutil.copytree(FIXTURE, data)
    for resource_type, resources in extra.items():
        with (data / f"{resource_type}.ndjson").open("a", encoding="utf-8") as out:
            out.writelines(json.dumps(r) + "\n" for r in resources)
    result = run_endpoints(FolderSource(data), root / "out", study, config, FACTORS, report=False)
    return Run(root / "out", result)
