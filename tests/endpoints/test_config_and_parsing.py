"""endpoints.yaml validation, and the FHIR field readers (references, dates in the site's timezone)."""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from adapter.endpoints.config import load_endpoints_config
from adapter.endpoints.fhirparse import parse_moment, ref_id
from adapter.errors import ConfigError
from adapter.study import StudyConfig, default_mappings_dir

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def test_shipped_config_loads(study: StudyConfig) -> None:
    cfg = load_endpoints_config(default_mappings_dir(), study)
    assert cfg.baseline_visit == "BASELINE"
    assert cfg.statistics.reference_arm == "control"
    assert "preliminary" not in cfg.observation_statuses


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("reference_arm: control", "reference_arm: placebo", "reference_arm 'placebo' is not an arm"),
        ("  GLUC:\n", "  GLUCOSE:\n", "unknown parameter(s) GLUCOSE"),
        ("baseline_visit: BASELINE", "baseline_visit: SCREENING", "baseline_visit 'SCREENING'"),
        ("quantile_method: linear", "quantile_method: sas5", "endpoints.yaml:"),
        (
            "observation_statuses: [final,",
            "observation_statuses: [cancelled, final,",
            "must not include cancelled",
        ),
    ],
)
def test_bad_config_is_a_config_error(
    tmp_path: Path, study: StudyConfig, old: str, new: str, message: str
) -> None:
    shutil.copy(default_mappings_dir() / "endpoints.yaml", tmp_path / "endpoints.yaml")
    path = tmp_path / "endpoints.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_endpoints_config(tmp_path, study)


def test_ref_id() -> None:
    assert ref_id({"reference": "Patient/pt-1"}, "Patient") == "pt-1"
    assert ref_id({"reference": "http://x/fhir/Patient/pt-1/_history/3"}, "Patient") == "pt-1"
    assert ref_id({"reference": "Group/g"}, "Patient") is None
    assert ref_id({"display": "no reference"}) is None


def test_parse_moment_uses_the_site_timezone() -> None:
    assert parse_moment("2024-01-09T23:30:00Z", HCM) == (
        date(2024, 1, 10),
        datetime(2024, 1, 10, 6, 30, tzinfo=HCM),
    )
    assert parse_moment("2024-01-10T06:30:00+07:00", HCM)[0] == date(2024, 1, 10)  # type: ignore[index]
    assert parse_moment("2024-01-10T06:30:00", HCM)[1].utcoffset().total_seconds() == 7 * 3600  # type: ignore[index,union-attr]
    assert parse_moment("2024-01-10", HCM) == (date(2024, 1, 10), None)
    assert parse_moment("2024-01", HCM) is None
    assert parse_moment("2024", HCM) is None
    assert parse_moment(None, HCM) is None
