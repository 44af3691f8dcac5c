"""Values, reference ranges, interpretation, units and the lab dictionary."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.errors import ConfigError
from adapter.hl7 import values as v
from adapter.hl7.codes import Identified, LabDictionary, Unit, load_dictionary
from adapter.study import StudyConfig, default_mappings_dir

UCUM = "http://unitsofmeasure.org"
MMOL = Unit("mmol/L", "substance")


@pytest.fixture(scope="module")
def dictionary(study: StudyConfig) -> LabDictionary:
    return load_dictionary(default_mappings_dir(), study)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5.6", {"value": 5.6}),
        ("<0.1", {"value": 0.1, "comparator": "<"}),
        (">500", {"value": 500, "comparator": ">"}),
        (">= 3", {"value": 3, "comparator": ">=", "orig": ">= 3"}),
        ("≤2", {"value": 2, "comparator": "<=", "orig": "≤2"}),
        ("065.88", {"value": 65.88, "orig": "065.88"}),
        ("5.60", {"value": 5.6, "orig": "5.60"}),
        ("=4", {"value": 4, "orig": "=4"}),
        ("-1.5", {"value": -1.5}),
    ],
)
def test_numbers_become_quantities_keeping_the_labs_text(text: str, expected: dict) -> None:
    q = v.quantity_from_text(text, "mmol/l", MMOL)
    assert q is not None
    assert q["value"] == expected["value"] and type(q["value"]) is type(expected["value"])
    assert q.get("comparator") == expected.get("comparator")
    assert (q["unit"], q["system"], q["code"]) == ("mmol/l", UCUM, "mmol/L")
    original = q.get("extension", [{}])[0].get("valueString")
    assert original == expected.get("orig")


@pytest.mark.parametrize("text", ["POS", "5,6", "1e3", "7.5 mmol/L", "<>5", "", "NaN", "inf", "1.2.3"])
def test_what_is_not_a_number_is_not_read_as_one(text: str) -> None:
    assert v.quantity_from_text(text, "", None) is None


def test_quantity_without_a_known_unit_keeps_the_text_only() -> None:
    assert v.quantity_from_text("7", "mg/dLx", None) == {"value": 7, "unit": "mg/dLx"}
    assert v.quantity_from_text("7", "", None) == {"value": 7}


@pytest.mark.parametrize(
    ("components", "element", "value"),
    [
        (["<", "5.0"], "valueQuantity", {"value": 5.0, "comparator": "<", "unit": "ng/mL"}),
        (["", "7.1"], "valueQuantity", {"value": 7.1, "unit": "ng/mL"}),
        (
            ["", "10", "-", "20"],
            "valueRange",
            {"low": {"value": 10, "unit": "ng/mL"}, "high": {"value": 20, "unit": "ng/mL"}},
        ),
        (
            ["", "1", ":", "128"],
            "valueRatio",
            {"numerator": {"value": 1, "unit": "ng/mL"}, "denominator": {"value": 128}},
        ),
        (
            [">", "1", "/", "64"],
            "valueRatio",
            {"numerator": {"value": 1, "comparator": ">", "unit": "ng/mL"}, "denominator": {"value": 64}},
        ),
        (["", "2", "+"], "valueString", "2+"),
        (["<>", "5"], "valueString", "<>5"),
        (["", "abc"], "valueString", "abc"),
        (["<", "10", "-", "20"], "valueString", "<10-20"),
    ],
)
def test_structured_numeric_values(components: list[str], element: str, value: object) -> None:
    assert v.sn_value(components, "ng/mL", None) == (element, value)


def test_reference_ranges(dictionary: LabDictionary) -> None:
    def rr(text: str) -> dict | None:
        return v.reference_range(text, "mmol/l", MMOL, dictionary)

    unit = {"unit": "mmol/l", "system": UCUM, "code": "mmol/L"}
    assert rr("3.9-6.1") == {"low": {"value": 3.9, **unit}, "high": {"value": 6.1, **unit}, "text": "3.9-6.1"}
    assert rr("70_105")["low"]["value"] == 70
    assert rr("3.9 - 6.1 mmol/L")["high"]["value"] == 6.1  # same unit, other spelling
    assert rr("<10") == {"high": {"value": 10, **unit}, "text": "<10"}
    assert rr(">= 5") == {"low": {"value": 5, **unit}, "text": ">= 5"}
    assert rr("<10 ug/dl") == {"text": "<10 ug/dl"}  # another unit than the value: text only
    assert rr("6.1-3.9") == {"text": "6.1-3.9"}
    assert rr("âm tính") == {"text": "âm tính"}
    assert rr("") is None


def test_interpretation_follows_table_0078() -> None:
    codes, unknown = v.interpretation(["H", "", "LL", "HM", "+"])
    assert [c["coding"][0]["code"] for c in codes] == ["H", "LL"]
    assert codes[0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
        "code": "H",
        "display": "High",
    }
    assert unknown == ["HM", "+"]


def test_status_tables_follow_the_ig_and_the_documented_local_policy() -> None:
    assert {k: v.OBX_STATUS[k] for k in "ACDFPWX"} == {
        "A": "amended",
        "C": "corrected",
        "D": "entered-in-error",
        "F": "final",
        "P": "preliminary",
        "W": "entered-in-error",
        "X": "cancelled",
    }
    assert (v.OBX_STATUS["I"], v.OBX_STATUS["R"], v.OBX_STATUS["S"]) == (
        "registered",
        "preliminary",
        "preliminary",
    )
    assert set(v.OBX_NO_RESULT) == {"N", "O"}
    ranks = [
        v.STATUS_RANK[s] for s in ("registered", "preliminary", "final", "corrected", "entered-in-error")
    ]
    assert ranks == sorted(ranks)


def test_units_are_case_sensitive_ucum_and_folding_never_guesses(dictionary: LabDictionary) -> None:
    assert dictionary.unit("mg/dl") == Unit("mg/dL", "mass")
    assert dictionary.unit("MG/DL") == Unit("mg/dL", "mass")
    assert dictionary.unit("uIU/ml") == Unit("u[IU]/mL", "arbitrary")
    assert dictionary.unit("µIU/mL") == Unit("u[IU]/mL", "arbitrary")
    assert dictionary.unit(" mmol / l ") == Unit("mmol/L", "substance")
    assert dictionary.unit("G/L") == Unit("10*9/L", "number")  # giga per litre
    assert dictionary.unit("g/L") == Unit("g/L", "mass")  # grams per litre
    assert dictionary.unit("g/l") == Unit("g/L", "mass")  # an exact alias
    assert dictionary.unit("gram/litre") is None and dictionary.unit("") is None


def _ident(dictionary: LabDictionary, triplets: list[tuple[str, str, str]]) -> Identified:
    ident, why = dictionary.identify(triplets)
    assert ident is not None, why
    return ident


def test_codes_local_loinc_and_alternate_triplet(dictionary: LabDictionary) -> None:
    empty = ("", "", "")
    assert _ident(dictionary, [("GLU-F", "Glucose", "L"), empty, empty]).parameter.id == "GLUC"
    assert _ident(dictionary, [("INS-F", "", "99VH"), empty, empty]).parameter.id == "INS"
    both = _ident(dictionary, [("CPEP", "", "L"), ("1986-9", "", "LN"), empty])
    assert (both.parameter.id, both.local_code, both.lab_loinc) == ("CPEP", "CPEP", "1986-9")
    alias = _ident(dictionary, [("17856-6", "", "LN"), empty, empty])
    assert alias.parameter.id == "HBA1C"
    ident, why = dictionary.identify([("WBC", "", "L"), empty, empty])
    assert ident is None and why == "not a study parameter: L WBC"
    ident, why = dictionary.identify([("GLU-F", "", "L"), ("4548-4", "", "LN"), empty])
    assert ident is None and why is not None and "disagree" in why


def test_loinc_follows_the_property_of_the_unit(dictionary: LabDictionary) -> None:
    empty = ("", "", "")
    glu = _ident(dictionary, [("GLU-F", "", "L"), empty, empty])
    assert dictionary.choose_loinc(glu, Unit("mmol/L", "substance"))[0].code == "14771-0"
    assert dictionary.choose_loinc(glu, Unit("mg/dL", "mass"))[0].code == "1558-6"
    loinc, note = dictionary.choose_loinc(glu, None)
    assert loinc is None and note == "unit unknown: no LOINC of GLUC chosen"
    loinc, note = dictionary.choose_loinc(glu, Unit("10*9/L", "number"))
    assert loinc is None and note is not None
    lab = _ident(dictionary, [("1558-6", "", "LN"), empty, empty])
    loinc, note = dictionary.choose_loinc(lab, Unit("mmol/L", "substance"))
    assert loinc.code == "14771-0" and note == "LOINC 1558-6 replaced by 14771-0 to match unit mmol/L"
    assert dictionary.choose_loinc(lab, None) == (dictionary.study_loinc("1558-6"), None)
    tnfa = _ident(dictionary, [("TNFA", "", "L"), empty, empty])
    assert dictionary.choose_loinc(tnfa, None, quantitative=False)[0].code == "3074-2"


def test_a_dictionary_naming_an_unknown_parameter_is_a_config_error(
    study: StudyConfig, tmp_path: Path
) -> None:
    (tmp_path / "units.yaml").write_text((default_mappings_dir() / "units.yaml").read_text(encoding="utf-8"))
    (tmp_path / "lab-codes.yaml").write_text(
        "systems: {local_uri: 'https://x.example.org/lis'}\n"
        "local:\n  GLU-F: {parameter: GLUC}\n  X1: {parameter: NOPE}\n"
    )
    with pytest.raises(ConfigError, match=r"lab-codes.yaml:4: local.X1.parameter: 'NOPE'"):
        load_dictionary(tmp_path, study)
    (tmp_path / "lab-codes.yaml").write_text("systems: {}\n")
    with pytest.raises(ConfigError, match="local_uri"):
        load_dictionary(tmp_path, study)
    (tmp_path / "lab-codes.yaml").write_text("systems: {local_uri: u}\nlocal:\n  1234: {parameter: GLUC}\n")
    assert load_dictionary(tmp_path, study).local_entry("1234") is not None  # numeric codes are text
