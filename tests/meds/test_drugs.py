"""The drug map: names, codes, insulin action profiles, combinations, and what is never guessed."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.errors import ConfigError
from adapter.meds.drugs import ATC_SYSTEM, RXNORM_SYSTEM, DrugNotFound, fold, load_drug_map
from tests.meds.helpers import MAPPINGS


@pytest.fixture(scope="module")
def drugs():
    return load_drug_map(MAPPINGS)


def test_fold_removes_vietnamese_diacritics_and_case():
    assert fold("  Tiêm  dưới DA ") == "tiem duoi da"
    assert fold("ĐƠN VỊ") == "don vi"


@pytest.mark.parametrize(
    ("name", "entry", "atc"),
    [
        ("Mixtard 30 FlexPen", "insulin-human-premix-30-70", "A10AD01"),
        ("Humulin R", "insulin-regular-human", "A10AB01"),
        ("Humulin N 100IU/ml", "insulin-nph-human", "A10AC01"),
        ("Insulatard", "insulin-nph-human", "A10AC01"),
        ("Lantus SoloStar", "insulin-glargine", "A10AE04"),
        ("Levemir FlexPen", "insulin-detemir", "A10AE05"),
        ("NovoRapid", "insulin-aspart", "A10AB05"),
        ("NovoMix 30 FlexPen", "insulin-aspart-premix", "A10AD05"),
        ("Scilin M30 (30/70)", "insulin-human-premix-30-70", "A10AD01"),
        ("Glucophage 850mg", "metformin", "A10BA02"),
        ("METFORMIN 500 mg", "metformin", "A10BA02"),
        ("Diamicron MR 30mg", "gliclazide", "A10BB09"),
        ("Galvus 50 mg", "vildagliptin", "A10BH02"),
    ],
)
def test_names_resolve_to_the_product_of_the_right_action_profile(drugs, name, entry, atc):
    match = drugs.by_name(name)
    assert match.entry is not None and match.entry.id == entry
    assert drugs.atc_codes(match) == [atc]


def test_insulin_is_known_by_atc_a10a(drugs):
    assert drugs.is_insulin(drugs.by_name("Lantus"))
    assert drugs.is_insulin(drugs.by_name("Actrapid"))
    assert not drugs.is_insulin(drugs.by_name("metformin"))
    assert not drugs.is_insulin(drugs.by_name("Amaryl M 2/500"))


@pytest.mark.parametrize(
    "name",
    [
        "Humalog Mix 25",  # lispro premix: A10AD04 is not a verified code -> not in the map
        "Insulin human",  # no action profile: guessing fast vs NPH vs premix would change the ATC class
        "Metformine-like",  # prefix followed by letters, not a strength
        "Aspirin 81",
        "",
    ],
)
def test_unknown_or_ambiguous_names_are_not_guessed(drugs, name):
    with pytest.raises(DrugNotFound):
        drugs.by_name(name)


def test_unknown_drug_message_names_the_drug(drugs):
    with pytest.raises(DrugNotFound, match=r"'Aspirin 81' is not in drugs\.yaml"):
        drugs.by_name("Aspirin 81")


def test_codes_identify_the_drug_even_when_the_name_is_unknown(drugs):
    assert drugs.resolve("brand X", "A10BH01", "ATC").entry.id == "sitagliptin"
    assert drugs.resolve("brand X", "6809", "RxNorm").entry.id == "metformin"
    assert drugs.resolve("brand X", "a10ba02", "atc").entry.id == "metformin"
    # a well-formed source code outside the map is kept as the source sent it (no display invented)
    other = drugs.resolve("Glucose-lowering drug Y", "A10BX99", "ATC")
    assert other.entry is None and (other.system, other.code) == (ATC_SYSTEM, "A10BX99")
    assert other.key == "atc:A10BX99"
    rx = drugs.resolve("x", "999999", "rxcui")
    assert (rx.system, rx.code) == (RXNORM_SYSTEM, "999999")


def test_malformed_source_codes_are_rejected(drugs):
    with pytest.raises(DrugNotFound, match="not an ATC code"):
        drugs.by_code("metformin", "ATC")
    with pytest.raises(DrugNotFound, match="not an RxNorm CUI"):
        drugs.by_code("A10BA02", "RxNorm")
    with pytest.raises(ValueError, match="not ATC, RxNorm"):
        drugs.by_code("123", "SNOMED")


def test_vietnamese_ingredient_codes_for_bhyt(drugs):
    assert drugs.by_code("40.807", "VN").entry.id == "metformin"
    assert drugs.by_code("40.800", "MA_THUOC").entry.id == "gliclazide"
    combo = drugs.by_code("40.30.777", "vn")
    assert combo.entry.id == "glimepiride-metformin"
    assert drugs.atc_codes(combo) == ["A10BB12", "A10BA02"]
    with pytest.raises(DrugNotFound):
        drugs.by_code("40.999", "vn")


def test_patterns_see_name_and_strength(drugs):
    # BHYT: TEN_THUOC "Scilin" alone is ambiguous, HAM_LUONG says which product
    assert drugs.by_name("Scilin", strength="M30 100IU/ml").entry.id == "insulin-human-premix-30-70"
    assert drugs.by_name("Wosulin-N").entry.id == "insulin-nph-human"


def test_routes_are_text_from_aliases_and_bhyt_codes(drugs):
    assert drugs.route("Tiêm dưới da").display == "subcutaneous"
    assert drugs.route("PO").display == "oral"
    assert drugs.route("1.01").display == "oral"
    assert drugs.route("nebulised") is None


def test_a_broken_drug_map_names_file_line_and_field(tmp_path: Path):
    (tmp_path / "drugs.yaml").write_text(
        "drugs:\n  - id: a\n    display: A\n    names: [same]\n"
        "  - id: b\n    display: B\n    atc: {code: not-atc}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"drugs.yaml:7: drugs.1.atc"):
        load_drug_map(tmp_path)


def test_a_name_claimed_by_two_entries_is_a_config_error(tmp_path: Path):
    (tmp_path / "drugs.yaml").write_text(
        "drugs:\n  - {id: a, display: A, names: [Same]}\n  - {id: b, display: B, names: [same]}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="belongs to both a and b"):
        load_drug_map(tmp_path)


def test_unknown_local_code_falls_back_to_the_name(drugs):
    assert drugs.resolve("Glucophage 500mg", "HIS-0042", "local").entry.id == "metformin"
    with pytest.raises(DrugNotFound, match=r"'HIS-0042' is not in drugs\.yaml, and 'Aspirin' is not either"):
        drugs.resolve("Aspirin", "HIS-0042", "")
    with pytest.raises(DrugNotFound, match="not an ATC code"):  # a standard code is never second-guessed
        drugs.resolve("Glucophage", "XYZ", "ATC")
