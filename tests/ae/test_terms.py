"""The CRF vocabulary: CTCAE grades, both seriousness spellings, WHO-UMC causality, outcomes, terms."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.ae.terms import RELATED_CAUSALITY, VocabularyError, load_ae_vocabulary
from adapter.errors import ConfigError
from tests.meds.helpers import MAPPINGS


@pytest.fixture(scope="module")
def vocab():
    return load_ae_vocabulary(MAPPINGS)


@pytest.mark.parametrize(
    ("given", "code", "grade"),
    [
        ("mild", "mild", None),
        ("Moderate", "moderate", None),
        ("SEVERE", "severe", None),
        ("1", "mild", 1),
        ("2", "moderate", 2),
        ("3", "severe", 3),
        ("4", "severe", 4),
        ("5", "severe", 5),
        ("Grade 2", "moderate", 2),
        ("grade-3", "severe", 3),
        ("G1", "mild", 1),
        ("CTCAE grade 4", "severe", 4),
        ("nặng", "severe", None),  # site alias in adverse-events.yaml
    ],
)
def test_severity_and_ctcae_grades(vocab, given, code, grade):
    severity = vocab.severity(given)
    assert (severity.code, severity.grade) == (code, grade)


@pytest.mark.parametrize("given", ["0", "6", "grade 7", "very bad", "2.5"])
def test_bad_severity(vocab, given):
    with pytest.raises(VocabularyError):
        vocab.severity(given)


@pytest.mark.parametrize(
    ("given", "code"),
    [
        ("serious", "Serious"),
        ("Serious", "Serious"),
        ("yes", "Serious"),
        ("Y", "Serious"),
        ("1", "Serious"),
        ("TRUE", "Serious"),
        ("non-serious", "Non-serious"),
        ("Non-serious", "Non-serious"),
        ("nonserious", "Non-serious"),
        ("Not serious", "Non-serious"),
        ("no", "Non-serious"),
        ("n", "Non-serious"),
        ("0", "Non-serious"),
        ("false", "Non-serious"),
        ("SeriousResultsInHospitalization", "SeriousResultsInHospitalization"),
        ("không", "Non-serious"),
    ],
)
def test_seriousness_spellings(vocab, given, code):
    assert vocab.seriousness(given) == code


def test_bad_seriousness(vocab):
    with pytest.raises(VocabularyError):
        vocab.seriousness("maybe")


@pytest.mark.parametrize(
    ("given", "code"),
    [
        ("certain", "Certain"),
        ("CERTAIN", "Certain"),
        ("probable", "Probably-Likely"),
        ("likely", "Probably-Likely"),
        ("Probable/Likely", "Probably-Likely"),
        ("probable / likely", "Probably-Likely"),
        ("Probably-Likely", "Probably-Likely"),
        ("possible", "Possible"),
        ("  Possible ", "Possible"),
        ("unlikely", "Unlikely"),
        ("conditional", "Conditional-Classified"),
        ("unclassified", "Conditional-Classified"),
        ("Conditional/Unclassified", "Conditional-Classified"),
        ("Conditional-Classified", "Conditional-Classified"),
        ("unassessable", "Unassessable-Unclassifiable"),
        ("Unclassifiable", "Unassessable-Unclassifiable"),
        ("Unassessable/Unclassifiable", "Unassessable-Unclassifiable"),
    ],
)
def test_who_umc_causality_terms(vocab, given, code):
    assert vocab.causality(given) == code


@pytest.mark.parametrize("given", ["related", "not related", "yes", "definite"])
def test_non_who_umc_causality_is_rejected(vocab, given):
    with pytest.raises(VocabularyError, match="WHO-UMC"):
        vocab.causality(given)


def test_related_means_certain_probable_or_possible():
    assert {"Certain", "Probably-Likely", "Possible"} == RELATED_CAUSALITY


@pytest.mark.parametrize(
    ("given", "code"),
    [
        ("resolved", "resolved"),
        ("Recovered/Resolved", "resolved"),
        ("recovering", "recovering"),
        ("Not recovered/Not resolved", "ongoing"),
        ("ongoing", "ongoing"),
        ("Recovered with sequelae", "resolvedWithSequelae"),
        ("resolvedWithSequelae", "resolvedWithSequelae"),
        ("Fatal", "fatal"),
        ("death", "fatal"),
        ("unknown", "unknown"),
    ],
)
def test_outcomes(vocab, given, code):
    assert vocab.outcome(given) == code


def test_terms_and_suspect_rules(vocab):
    assert vocab.term("FEVER").snomed.code == "386661006"
    assert vocab.term("Sốt").id == "fever"
    assert vocab.term("Infusion reaction").snomed is None  # known, but no verified code
    assert vocab.term("Nausea") is None
    assert vocab.suspect("Fever") == "cell-infusion"
    assert vocab.suspect("Harvest site haematoma") == "bm-harvest"  # entry's own suspect
    assert vocab.suspect("Bruising at aspiration site") == "bm-harvest"  # rule
    assert vocab.suspect("Iliac crest pain") == "bm-harvest"


def test_an_alias_to_nothing_known_is_a_config_error(tmp_path: Path):
    (tmp_path / "adverse-events.yaml").write_text(
        "terms: []\naliases:\n  related:\n    'not related': unrelated\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="not a known related value"):
        load_ae_vocabulary(tmp_path)


def test_an_unverifiable_code_shape_is_a_config_error(tmp_path: Path):
    (tmp_path / "adverse-events.yaml").write_text(
        "terms:\n  - id: x\n    snomed: {code: ABC, display: X}\n    terms: [x]\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=r"adverse-events.yaml:3: terms.0.snomed.code"):
        load_ae_vocabulary(tmp_path)
