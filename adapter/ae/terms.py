"""The CRF's adverse-event vocabulary -> FHIR R4 codes: event terms (`mappings/adverse-events.yaml`),
severity / CTCAE grade, seriousness, WHO-UMC causality and outcome.

Built-in spellings cover English CRFs (case, spaces, `-`, `_` and `/` do not matter); a site adds its own
in the YAML `aliases` block. An unknown value is an error naming the field, never a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from adapter.meds.drugs import fold
from adapter.yamlconf import load_model

AE_FILE = "adverse-events.yaml"
SNOMED = "http://snomed.info/sct"
SEVERITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
SERIOUSNESS_SYSTEM = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness"
OUTCOME_SYSTEM = "http://terminology.hl7.org/CodeSystem/adverse-event-outcome"
CAUSALITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/adverse-event-causality-assess"

Procedure = Literal["bm-harvest", "cell-infusion"]


@lru_cache(maxsize=4096)
def normal(text: str) -> str:
    """A coded CRF value as compared: folded; `-`, `_`, `/` and runs of spaces become one space."""
    return " ".join(re.sub(r"[\-_/]+", " ", fold(text)).split())


# --- built-in vocabularies (normalised input -> code) ------------------------------------------------------
SEVERITY_DISPLAY = {"mild": "Mild", "moderate": "Moderate", "severe": "Severe"}
SERIOUSNESS_DISPLAY = {
    "Serious": "Serious",
    "Non-serious": "Non-serious",
    "SeriousResultsInDeath": "Results in death",
    "SeriousIsLifeThreatening": "Is Life-threatening",
    "SeriousResultsInHospitalization": "Requires or prolongs inpatient hospitalization",
    "SeriousResultsInDisability": "Results in persistent or significant disability/incapacity",
    "SeriousIsBirthDefect": "Is a congenital anomaly/birth defect",
    "SeriousRequiresPreventImpairment": "Requires intervention to prevent permanent impairment",
}
CAUSALITY_DISPLAY = {
    "Certain": "Certain",
    "Probably-Likely": "Probably/Likely",
    "Possible": "Possible",
    "Unlikely": "Unlikely",
    "Conditional-Classified": "Conditional/Classified",
    "Unassessable-Unclassifiable": "Unassessable/Unclassifiable",
}
RELATED_CAUSALITY = frozenset({"Certain", "Probably-Likely", "Possible"})  # design.md: "related"
OUTCOME_DISPLAY = {
    "resolved": "Resolved",
    "recovering": "Recovering",
    "ongoing": "Ongoing",
    "resolvedWithSequelae": "Resolved with Sequelae",
    "fatal": "Fatal",
    "unknown": "Unknown",
}

_SERIOUS = {
    **{s: "Serious" for s in ("serious", "yes", "y", "1", "true", "t", "sae")},
    **{s: "Non-serious" for s in ("non serious", "nonserious", "not serious", "no", "n", "0", "false", "f")},
    **{normal(code): code for code in SERIOUSNESS_DISPLAY},
}
_CAUSALITY = {
    "certain": "Certain",
    "certainly": "Certain",
    "probable": "Probably-Likely",
    "probably": "Probably-Likely",
    "likely": "Probably-Likely",
    "probable likely": "Probably-Likely",
    "probably likely": "Probably-Likely",
    "possible": "Possible",
    "possibly": "Possible",
    "unlikely": "Unlikely",
    "conditional": "Conditional-Classified",
    "unclassified": "Conditional-Classified",
    "conditional unclassified": "Conditional-Classified",
    "conditional classified": "Conditional-Classified",
    "unassessable": "Unassessable-Unclassifiable",
    "unclassifiable": "Unassessable-Unclassifiable",
    "unassessable unclassifiable": "Unassessable-Unclassifiable",
}
_OUTCOME = {
    **{s: "resolved" for s in ("resolved", "recovered", "recovered resolved", "resolved recovered")},
    **{s: "recovering" for s in ("recovering", "resolving", "recovering resolving", "resolving recovering")},
    **{
        s: "ongoing"
        for s in ("ongoing", "not recovered", "not resolved", "not recovered not resolved", "continuing")
    },
    **{
        s: "resolvedWithSequelae"
        for s in (
            "resolvedwithsequelae",
            "resolved with sequelae",
            "recovered with sequelae",
            "recovered resolved with sequelae",
            "sequelae",
        )
    },
    **{s: "fatal" for s in ("fatal", "death", "died", "dead")},
    "unknown": "unknown",
}
_GRADE = re.compile(r"^(?:ctcae\s*)?(?:grade|gr|g)?\.?\s*([1-5])$")


class VocabularyError(ValueError):
    """A coded value that is not in the vocabulary; the message lists what is accepted."""


# --- the YAML file -----------------------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Snomed(_Strict):
    code: str = Field(pattern=r"^\d{6,18}$")
    display: str


class TermEntry(_Strict):
    id: str
    snomed: Snomed | None = None
    terms: list[str]
    suspect: Procedure | None = None


class SuspectRule(_Strict):
    pattern: str
    procedure: Procedure

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value


class Aliases(_Strict):
    severity: dict[str, str] = {}
    serious: dict[str, str] = {}
    related: dict[str, str] = {}
    outcome: dict[str, str] = {}


class AeMapFile(_Strict):
    terms: list[TermEntry]
    default_suspect: Procedure = "cell-infusion"
    suspect_rules: list[SuspectRule] = []
    aliases: Aliases = Aliases()

    @model_validator(mode="after")
    def _consistent(self) -> AeMapFile:
        owner: dict[str, str] = {}
        for entry in self.terms:
            for term in entry.terms:
                key = fold(term)
                if owner.get(key, entry.id) != entry.id:
                    raise ValueError(f"term {term!r} belongs to both {owner[key]} and {entry.id}")
                owner[key] = entry.id
        for kind, table, parse in (
            ("severity", self.aliases.severity, _builtin_severity),
            ("serious", self.aliases.serious, _SERIOUS.get),
            ("related", self.aliases.related, _CAUSALITY.get),
            ("outcome", self.aliases.outcome, _OUTCOME.get),
        ):
            for alias, target in table.items():
                if not parse(normal(target)):
                    raise ValueError(
                        f"aliases.{kind}: {alias!r} -> {target!r}, which is not a known {kind} value"
                    )
        return self


@dataclass(frozen=True)
class Severity:
    code: str  # mild | moderate | severe
    grade: int | None  # CTCAE grade when the CRF gave one


def _builtin_severity(value: str) -> Severity | None:
    if value in SEVERITY_DISPLAY:
        return Severity(value, None)
    grade = _GRADE.match(value)
    if grade:
        number = int(grade[1])
        return Severity("mild" if number == 1 else "moderate" if number == 2 else "severe", number)
    return None


class AeVocabulary:
    """The loaded AE map: term coding, suspect procedure and the coded columns' parsers."""

    def __init__(self, data: AeMapFile) -> None:
        self.data = data
        self._terms = {fold(t): e for e in data.terms for t in e.terms}
        self._rules = [(re.compile(r.pattern), r.procedure) for r in data.suspect_rules]
        a = data.aliases
        self._aliases = {
            kind: {normal(k): normal(v) for k, v in table.items()}
            for kind, table in (
                ("severity", a.severity),
                ("serious", a.serious),
                ("related", a.related),
                ("outcome", a.outcome),
            )
        }

    def term(self, reported: str) -> TermEntry | None:
        return self._terms.get(fold(reported))

    def suspect(self, reported: str) -> str:
        """The procedure (bm-harvest | cell-infusion) an AE with this term is suspected against."""
        entry = self.term(reported)
        if entry and entry.suspect:
            return entry.suspect
        folded = fold(reported)
        for pattern, procedure in self._rules:
            if pattern.search(folded):
                return procedure
        return self.data.default_suspect

    def _lookup(self, kind: str, value: str) -> str:
        key = normal(value)
        return self._aliases[kind].get(key, key)

    def severity(self, value: str) -> Severity:
        found = _builtin_severity(self._lookup("severity", value))
        if found is None:
            raise VocabularyError("not mild, moderate, severe or a CTCAE grade 1-5")
        return found

    def seriousness(self, value: str) -> str:
        found = _SERIOUS.get(self._lookup("serious", value))
        if found is None:
            raise VocabularyError("not serious/non-serious (also yes/no, y/n, 1/0, true/false)")
        return found

    def causality(self, value: str) -> str:
        found = _CAUSALITY.get(self._lookup("related", value))
        if found is None:
            raise VocabularyError(
                "not a WHO-UMC causality term (certain, probable/likely, possible, unlikely, "
                "conditional/unclassified, unassessable/unclassifiable)"
            )
        return found

    def outcome(self, value: str) -> str:
        found = _OUTCOME.get(self._lookup("outcome", value))
        if found is None:
            raise VocabularyError(
                "not an outcome (resolved, recovering, ongoing, resolved with sequelae, fatal, unknown)"
            )
        return found


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int) -> AeVocabulary:
    return AeVocabulary(load_model(Path(path), AeMapFile))


def load_ae_vocabulary(mappings_dir: Path) -> AeVocabulary:
    """`mappings_dir/adverse-events.yaml`, validated (ConfigError names file:line); cached while unchanged."""
    path = (mappings_dir / AE_FILE).resolve()
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        mtime = -1
    return _load(str(path), mtime)
