"""Golden files: every corpus message converted, compared byte for byte with the checked-in NDJSON.

Regenerate (after a deliberate change, then review the diff): `UPDATE_GOLDEN=1 pytest tests/hl7`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from adapter.converters import ConvertContext
from adapter.hl7.convert import convert_files
from adapter.ndjson import iter_file, merge_accounts, merge_resources
from tests.hl7.conftest import EXPECTED, corpus_files, validate

UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def _write(path: Path, ctx: ConvertContext, out: Path) -> None:
    conversion = convert_files([path], ctx)
    merge_resources(out, conversion.resources)
    merge_accounts(out, conversion.accounts)


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.stem)
def test_corpus_matches_golden_files(path: Path, hl7_ctx: ConvertContext, tmp_path: Path) -> None:
    _write(path, hl7_ctx, tmp_path)
    expected = EXPECTED / path.stem
    if UPDATE:
        shutil.rmtree(expected, ignore_errors=True)
        shutil.copytree(tmp_path, expected)
    produced = sorted(p.name for p in tmp_path.iterdir())
    assert produced == sorted(p.name for p in expected.iterdir()), "set of output files changed"
    for name in produced:
        assert (tmp_path / name).read_bytes() == (expected / name).read_bytes(), f"{path.stem}/{name} differs"


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.stem)
def test_golden_resources_are_valid_r4(path: Path) -> None:
    for file in (EXPECTED / path.stem).glob("*.ndjson"):
        if file.name == "messages.ndjson":
            continue
        for resource in iter_file(file):
            validate(resource)


def test_whole_corpus_in_one_folder_is_byte_identical_across_runs_and_orders(
    hl7_ctx: ConvertContext, tmp_path: Path
) -> None:
    files = corpus_files()
    forward, backward, again = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for path in files:
        _write(path, hl7_ctx, forward)
    for path in reversed(files):
        _write(path, hl7_ctx, backward)
    conversion = convert_files(files, hl7_ctx)
    merge_resources(again, conversion.resources)
    merge_accounts(again, conversion.accounts)
    names = sorted(p.name for p in forward.iterdir())
    assert names == sorted(p.name for p in backward.iterdir()) == sorted(p.name for p in again.iterdir())
    for name in names:
        data = (forward / name).read_bytes()
        assert data == (backward / name).read_bytes() == (again / name).read_bytes(), name
