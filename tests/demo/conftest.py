"""A 60-subject run with a small hospital feed, generated once per test session (about a second)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapter.converters import ConvertContext, converter
from adapter.demo.facts import TrialFacts
from adapter.demo.generate import draw_facts, generate
from adapter.demo.params import DemoParams
from adapter.errors import ConfigError
from adapter.model import Conversion
from adapter.roster import load_roster
from adapter.study import StudyConfig, default_mappings_dir

RUN_SUBJECTS, RUN_SEED, RUN_FEED = 60, 11, 150


def read_tree(root: Path) -> dict[str, bytes]:
    """Every file below root, by relative path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def hl7_files(root: Path, folder: str) -> list[Path]:
    return sorted((root / folder).glob("*.hl7"))


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory, study: StudyConfig) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("demo") / "run"
    manifest = generate(study, DemoParams(), RUN_SUBJECTS, RUN_SEED, out, hospital_feed=RUN_FEED)
    return out, manifest


@pytest.fixture(scope="session")
def demo_conversions(
    demo_run: tuple[Path, dict[str, Any]], study: StudyConfig
) -> dict[str, Conversion | None]:
    """The colleagues' converters run over demo_run, once: hl7/+pharmacy/, feed/, meds.csv, ae.csv,
    roster.csv (None for a converter not built yet)."""
    out, _ = demo_run
    ctx = ConvertContext(study, load_roster(out / "roster.csv", study), default_mappings_dir())
    inputs = {
        "hl7": ("hl7", hl7_files(out, "hl7") + hl7_files(out, "pharmacy")),
        "feed": ("hl7", hl7_files(out, "feed")),
        "meds": ("meds", [out / "meds.csv"]),
        "ae": ("ae", [out / "ae.csv"]),
        "roster": ("roster", [out / "roster.csv"]),
    }
    results: dict[str, Conversion | None] = {}
    for name, (kind, paths) in inputs.items():
        try:
            convert = converter(kind)
        except ConfigError:
            results[name] = None
            continue
        results[name] = convert(paths, ctx)
    return results


def conversion_of(conversions: dict[str, Conversion | None], name: str) -> Conversion:
    result = conversions[name]
    if result is None:
        pytest.skip(f"the {name} converter is not built yet")
    return result


@pytest.fixture(scope="session")
def demo_facts(study: StudyConfig) -> TrialFacts:
    """The facts behind demo_run (drawing them again gives the same facts: determinism)."""
    return draw_facts(study, DemoParams(), RUN_SUBJECTS, RUN_SEED)


@pytest.fixture(scope="session")
def big_facts(study: StudyConfig) -> TrialFacts:
    """600 subjects, facts only (no files): enough to compare distributions with their configuration."""
    return draw_facts(study, DemoParams(), 600, 5)
