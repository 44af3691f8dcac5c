"""`adapter demo generate` as scripts call it: determinism, refusal to mix runs, options, fixture in sync."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from adapter.cli import app
from tests.demo.conftest import read_tree

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "fixtures" / "demo-small"
FIXTURE_ARGS = ["--subjects", "6", "--seed", "7", "--hospital-feed", "20"]


def _generate(out: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["demo", "generate", "--out", str(out), "--json", *args])
    return result.exit_code, result.stdout, result.stderr


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    code_a, stdout, _ = _generate(tmp_path / "a", "--subjects", "8", "--seed", "3", "--hospital-feed", "25")
    code_b, _, _ = _generate(tmp_path / "b", "--subjects", "8", "--seed", "3", "--hospital-feed", "25")
    code_c, _, _ = _generate(tmp_path / "c", "--subjects", "8", "--seed", "4", "--hospital-feed", "25")
    assert (code_a, code_b, code_c) == (0, 0, 0)
    summary = json.loads(stdout)
    assert summary["subjects"] == 8 and summary["arms"] == {"cell-therapy": 4, "control": 4}
    assert summary["feed_messages"] == summary["hl7_messages"] + 25
    a, b, c = read_tree(tmp_path / "a"), read_tree(tmp_path / "b"), read_tree(tmp_path / "c")
    assert a == b
    assert a["roster.csv"] != c["roster.csv"] and a["ae.csv"] != c["ae.csv"]
    assert set(a) != set(c)  # other message ids, other files


def test_refuses_to_mix_runs_unless_forced(tmp_path):
    out = tmp_path / "run"
    assert _generate(out, "--subjects", "4", "--seed", "1")[0] == 0
    first = read_tree(out)
    code, _, stderr = _generate(out, "--subjects", "4", "--seed", "2")
    assert code == 2 and "--force" in stderr
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    assert _generate(out, "--subjects", "4", "--seed", "2", "--force")[0] == 0
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"  # only our outputs are replaced
    assert _generate(out, "--subjects", "4", "--seed", "1", "--force")[0] == 0
    assert read_tree(out) == first | {"notes.txt": b"mine"}


def test_null_scenario_and_no_faults(tmp_path):
    code, stdout, _ = _generate(tmp_path / "n", "--subjects", "6", "--null", "--faults", "0")
    assert code == 0 and json.loads(stdout)["deliberate_faults"] == 0
    manifest = json.loads((tmp_path / "n" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["scenario"] == "null" and manifest["faults"] == []
    assert not (tmp_path / "n" / "feed").exists()


def test_params_file_overrides_and_is_validated(tmp_path):
    good = tmp_path / "p.yaml"
    good.write_text("treated:\n  hba1c_change: -2.0\n  homab_change_pct: 0\n  cpep_change_pct: 0\n"
                    "  tnfa_change_pct: 0\n  il1b_change_pct: 0\n  insulin_dose_change_pct: -80\n",
                    encoding="utf-8")  # fmt: skip
    assert _generate(tmp_path / "g", "--subjects", "4", "--params", str(good))[0] == 0
    manifest = json.loads((tmp_path / "g" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["params"]["treated"]["hba1c_change"] == -2.0
    bad = tmp_path / "bad.yaml"
    bad.write_text("hba1c_mean: 9\nno_such_knob: 1\n", encoding="utf-8")
    code, _, stderr = _generate(tmp_path / "b", "--subjects", "4", "--params", str(bad))
    assert code == 2 and "bad.yaml:2" in stderr and "no_such_knob" in stderr


def test_committed_fixture_is_what_the_command_writes(tmp_path):
    assert FIXTURE.is_dir(), "fixtures/demo-small is missing"
    assert _generate(tmp_path / "f", *FIXTURE_ARGS)[0] == 0
    hint = f"regenerate: adapter demo generate {' '.join(FIXTURE_ARGS)} --out fixtures/demo-small --force"
    assert read_tree(tmp_path / "f") == read_tree(FIXTURE), hint
