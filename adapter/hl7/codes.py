"""The site's lab dictionary (`mappings/lab-codes.yaml`) and unit table (`mappings/units.yaml`).

Together they answer the two questions every result raises: is this a study parameter (and which), and
in which UCUM unit did it come, hence which of the parameter's LOINC codes fits it (mass vs substance
concentration). Both files are validated on load; errors name the file, line and field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from adapter.errors import ConfigError
from adapter.study import LoincCode, Parameter, StudyConfig
from adapter.yamlconf import format_validation_error, read_yaml

LAB_CODES_FILE = "lab-codes.yaml"
UNITS_FILE = "units.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _keys_as_text(value: Any) -> Any:
    """YAML reads a code like 1234 as a number; codes are text."""
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    return value


class LocalCode(_Strict):
    parameter: str
    name: str | None = None
    unit: str | None = None  # UCUM unit the LIS reports this code in; used only when OBX-6 is empty


class CodeSystems(_Strict):
    local: list[str] = ["L"]
    empty_is_local: bool = True
    local_uri: str
    loinc: list[str] = ["LN"]


class LabCodes(_Strict):
    systems: CodeSystems
    local: dict[str, LocalCode] = {}
    loinc: dict[str, str] = {}
    bhyt: dict[str, LocalCode] = {}

    _text_keys = field_validator("local", "loinc", "bhyt", mode="before")(_keys_as_text)


class UnitEntry(_Strict):
    ucum: str
    property: str
    aliases: list[str] = []

    @field_validator("aliases", mode="before")
    @classmethod
    def _aliases_as_text(cls, value: Any) -> Any:
        return [str(v) for v in value] if isinstance(value, list) else value


class UnitTable(_Strict):
    units: list[UnitEntry]


@dataclass(frozen=True)
class Unit:
    ucum: str
    property: str


@dataclass(frozen=True)
class Identified:
    """A result recognised as a study parameter, and the codes the lab sent for it."""

    parameter: Parameter
    local_code: str | None
    lab_loinc: str | None
    default_unit: str | None


_FOLD = re.compile(r"\s+")


def fold_unit(text: str) -> str:
    return _FOLD.sub("", text).replace("µ", "u").replace("μ", "u").lower()


def _load(path: Path, model: type[BaseModel]) -> tuple[Any, dict]:
    data, lines = read_yaml(path)
    if data is None:
        raise ConfigError(f"{path}: the file is empty")
    try:
        return model.model_validate(data), lines
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, exc, lines)) from exc


class LabDictionary:
    """Codes and units of one site, checked against the study's parameters."""

    def __init__(self, study: StudyConfig, codes: LabCodes, units: UnitTable) -> None:
        self.study = study
        self.codes = codes
        self.local_uri = codes.systems.local_uri
        self._local_systems = {s.upper() for s in codes.systems.local}
        self._loinc_systems = {s.upper() for s in codes.systems.loinc}
        self._params = {p.id: p for p in study.parameters}
        self._by_loinc: dict[str, Parameter] = {}
        self._study_loinc: dict[str, LoincCode] = {}
        for param in study.parameters:
            if param.kind != "lab":
                continue
            for loinc in param.loinc:
                self._by_loinc[loinc.code] = param
                self._study_loinc[loinc.code] = loinc
        for code, param_id in codes.loinc.items():
            self._by_loinc.setdefault(code, self._params[param_id])
        self._local = {code: entry for code, entry in codes.local.items()}
        self._local_upper = {code.upper(): entry for code, entry in codes.local.items()}
        self._exact: dict[str, Unit] = {}
        folded: dict[str, Unit | None] = {}
        for entry in units.units:
            unit = Unit(entry.ucum, entry.property)
            for alias in (entry.ucum, *entry.aliases):
                known = self._exact.get(alias)
                if known is not None and known != unit:
                    raise ConfigError(
                        f"units.yaml: {alias!r} is listed for both {known.ucum} and {unit.ucum}"
                    )
                self._exact[alias] = unit
                key = fold_unit(alias)
                if key in folded and folded[key] != unit:
                    folded[key] = None  # ambiguous once case is ignored: exact spellings only
                else:
                    folded.setdefault(key, unit)
        self._folded = {k: v for k, v in folded.items() if v is not None}

    # -- units ---------------------------------------------------------------------------------------
    def unit(self, text: str) -> Unit | None:
        """The UCUM unit a free-text unit stands for, or None when the table does not know it."""
        text = text.strip()
        if not text:
            return None
        return self._exact.get(text) or self._folded.get(fold_unit(text))

    # -- codes ---------------------------------------------------------------------------------------
    def is_local_system(self, system: str) -> bool:
        system = system.strip().upper()
        return system in self._local_systems or (not system and self.codes.systems.empty_is_local)

    def is_loinc_system(self, system: str) -> bool:
        return system.strip().upper() in self._loinc_systems

    def local_entry(self, code: str) -> LocalCode | None:
        return self._local.get(code) or self._local_upper.get(code.upper())

    def identify(self, triplets: list[tuple[str, str, str]]) -> tuple[Identified | None, str | None]:
        """Which study parameter a coded result is: (Identified, None), or (None, reason to ignore it).

        `triplets` are (code, text, coding system) from a CWE (OBX-3): 1-3, 4-6, 10-12.
        """
        found_local: tuple[str, LocalCode] | None = None
        found_loinc: tuple[str, Parameter] | None = None
        any_loinc: str | None = None
        for code, _text, system in triplets:
            if not code:
                continue
            if self.is_loinc_system(system):
                any_loinc = any_loinc or code
                param = self._by_loinc.get(code)
                if param is not None and found_loinc is None:
                    found_loinc = (code, param)
            elif self.is_local_system(system):
                entry = self.local_entry(code)
                if entry is not None and found_local is None:
                    found_local = (code, entry)
        if found_local and found_loinc and found_local[1].parameter != found_loinc[1].id:
            return None, (
                f"codes disagree: local {found_local[0]} is {found_local[1].parameter}, "
                f"LOINC {found_loinc[0]} is {found_loinc[1].id}"
            )
        if found_local is None and found_loinc is None:
            primary = next(((c, s) for c, _t, s in triplets if c), None)
            label = f"{primary[1] or '(no system)'} {primary[0]}" if primary else "(no code)"
            return None, f"not a study parameter: {label[:60]}"
        if found_loinc is not None:
            param = found_loinc[1]
        else:
            assert found_local is not None
            param = self._params[found_local[1].parameter]
        return (
            Identified(
                parameter=param,
                local_code=found_local[0] if found_local else None,
                lab_loinc=found_loinc[0] if found_loinc else None,
                default_unit=found_local[1].unit if found_local else None,
            ),
            None,
        )

    def study_loinc(self, code: str) -> LoincCode | None:
        return self._study_loinc.get(code)

    def choose_loinc(
        self, ident: Identified, unit: Unit | None, quantitative: bool = True
    ) -> tuple[LoincCode | None, str | None]:
        """The parameter's LOINC code for this unit, and a note when none fits or the lab's was set aside.

        Without a known unit a number cannot say which code fits: the lab's own study LOINC stands if
        it sent one, else none is chosen (endpoints then leave the value out rather than misread it). A
        text or coded result of a parameter with a single LOINC code gets that code.
        """
        param = ident.parameter
        lab = self._study_loinc.get(ident.lab_loinc) if ident.lab_loinc else None
        if unit is None:
            if lab is not None:
                return lab, None
            if not quantitative:
                return (param.loinc[0], None) if len(param.loinc) == 1 else (None, None)
            return None, f"unit unknown: no LOINC of {param.id} chosen"
        matches = [code for code in param.loinc if code.property == unit.property]
        if not matches:
            return None, f"unit {unit.ucum} ({unit.property}) fits no LOINC of {param.id}"
        if lab is not None and lab in matches:
            return lab, None
        chosen = next((c for c in matches if c.unit == unit.ucum), matches[0])
        note = None
        if lab is not None:
            note = f"LOINC {lab.code} replaced by {chosen.code} to match unit {unit.ucum}"
        return chosen, note


def load_dictionary(mappings_dir: Path, study: StudyConfig) -> LabDictionary:
    """Read and cross-check lab-codes.yaml and units.yaml; ConfigError names file:line: field."""
    codes_path = mappings_dir / LAB_CODES_FILE
    codes, lines = _load(codes_path, LabCodes)
    units, _ = _load(mappings_dir / UNITS_FILE, UnitTable)
    params = {p.id: p for p in study.parameters}
    problems = []
    for section in ("local", "bhyt"):
        for code, entry in getattr(codes, section).items():
            param = params.get(entry.parameter)
            if param is None or param.kind != "lab":
                line = lines.get((section, code, "parameter")) or lines.get((section, code))
                problems.append(
                    f"{codes_path}:{line}: {section}.{code}.parameter: {entry.parameter!r} is not a lab "
                    "parameter of the study"
                )
    for code, param_id in codes.loinc.items():
        param = params.get(param_id)
        if param is None or param.kind != "lab":
            line = lines.get(("loinc", code))
            problems.append(
                f"{codes_path}:{line}: loinc.{code}: {param_id!r} is not a lab parameter of the study"
            )
    if problems:
        raise ConfigError("\n".join(problems))
    return LabDictionary(study, codes, units)


_CACHE: dict[tuple[str, int, int], tuple[StudyConfig, LabDictionary]] = {}


def dictionary_for(mappings_dir: Path, study: StudyConfig) -> LabDictionary:
    """`load_dictionary`, cached per folder, file versions and study object (a feed reuses it)."""
    try:
        key = (
            str(mappings_dir.resolve()),
            (mappings_dir / LAB_CODES_FILE).stat().st_mtime_ns,
            (mappings_dir / UNITS_FILE).stat().st_mtime_ns,
        )
    except OSError as exc:
        raise ConfigError(f"{mappings_dir}: cannot read the lab dictionary: {exc.strerror}") from exc
    cached = _CACHE.get(key)
    if cached is not None and cached[0] is study:
        return cached[1]
    dictionary = load_dictionary(mappings_dir, study)
    _CACHE[key] = (study, dictionary)
    return dictionary
