from pathlib import Path

import pytest

from adapter.errors import ConfigError
from adapter.study import load_study


def test_shipped_study_loads(study):
    assert study.study.key == "NCT03943940"
    assert [v.id for v in study.visits] == ["BASELINE", "M1", "M3", "M6"]
    assert {a.id: a.day1 for a in study.arms} == {"cell-therapy": "infused_on", "control": "enrolled_on"}
    assert study.visits[1].window == (23, 37) and study.visits[1].target_day == 30
    assert str(study.tz) == "Asia/Ho_Chi_Minh"
    glucose = study.parameter("GLUC")
    assert {c.code: c.unit for c in glucose.loinc} == {"14771-0": "mmol/L", "1558-6": "mg/dL"}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _shipped_text() -> str:
    return (Path(__file__).resolve().parent.parent / "mappings" / "study.yaml").read_text(encoding="utf-8")


def test_bad_field_names_file_line_and_field(tmp_path):
    text = _shipped_text().replace("target_day: 30, window: [23, 37]", "target_day: thirty, window: [23, 37]")
    path = _write(tmp_path, text)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "thirty" in row)
    with pytest.raises(ConfigError) as err:
        load_study(path)
    message = str(err.value)
    assert f"{path}:{line}:" in message
    assert "visits.1.target_day" in message


def test_window_must_hold_target(tmp_path):
    text = _shipped_text().replace("target_day: 91, window: [77, 105]", "target_day: 120, window: [77, 105]")
    with pytest.raises(ConfigError, match=r"visits\.2.*target day 120 is outside"):
        load_study(_write(tmp_path, text))


def test_unknown_timezone_and_yaml_syntax(tmp_path):
    with pytest.raises(ConfigError, match="unknown IANA timezone"):
        load_study(_write(tmp_path, _shipped_text().replace("Asia/Ho_Chi_Minh", "Asia/Saigon_City")))
    with pytest.raises(ConfigError, match=r"study\.yaml:\d+: not valid YAML"):
        load_study(_write(tmp_path, "study: [unclosed\n"))


def test_unknown_keys_are_refused(tmp_path):
    text = _shipped_text().replace("timezone: Asia/Ho_Chi_Minh", "timezone: Asia/Ho_Chi_Minh\ntimezon: UTC")
    with pytest.raises(ConfigError, match="timezon"):
        load_study(_write(tmp_path, text))
