"""`mappings/bhyt.yaml`: route codes, dose units, encounter types and XML4 rules, validated on load."""

from __future__ import annotations

import re
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from adapter.errors import ConfigError
from adapter.meds.drugs import fold
from adapter.yamlconf import load_model

BHYT_FILE = "bhyt.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _text(value: Any) -> Any:
    """YAML reads `1.01` or `03` as numbers; codes are text."""
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value) if isinstance(value, int | float) else value


class Systems(_Strict):
    route: str
    drug_code: str
    registration: str
    service: str
    indicator: str


class Snomed(_Strict):
    code: str = Field(pattern=r"^\d{6,18}$")
    display: str


class Route(_Strict):
    code: str = Field(pattern=r"^\d\.\d{2}$")
    name: str
    route: str | None = Field(default=None, description="route id in drugs.yaml")
    snomed: Snomed | None = None

    _code_text = field_validator("code", mode="before")(_text)


class DoseUnit(_Strict):
    code: str
    unit: str


class LabRule(_Strict):
    """One XML4 rule: the conditions given must all hold; the first matching rule wins."""

    model_config = ConfigDict(extra="forbid", frozen=True, ignored_types=(cached_property,))

    service: str | None = None
    name: str | None = None
    units: list[str] = []
    parameter: str

    _service_text = field_validator("service", mode="before")(_text)

    @field_validator("name")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _has_condition(self) -> LabRule:
        if not self.service and not self.name:
            raise ValueError("a rule needs a `service` code or a `name` pattern")
        return self

    @cached_property
    def pattern(self) -> re.Pattern[str] | None:
        return re.compile(self.name) if self.name else None


class BhytConfig(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, ignored_types=(cached_property,))

    systems: Systems
    routes: list[Route] = []
    dose_units: dict[str, DoseUnit] = {}
    daily_rows_encounter_types: list[str] = []
    ignore_drug_codes: list[str] = []
    ignore_cost_groups: list[int] = []
    unknown_drugs: Literal["keep", "ignore"] = "keep"
    labs: list[LabRule] = []

    _lists_text = field_validator("daily_rows_encounter_types", "ignore_drug_codes", mode="before")(_text)

    @model_validator(mode="after")
    def _unique_routes(self) -> BhytConfig:
        codes = [r.code for r in self.routes]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValueError(f"route code(s) listed twice: {', '.join(dupes)}")
        return self

    @cached_property
    def route_by_code(self) -> dict[str, Route]:
        return {r.code: r for r in self.routes}

    @cached_property
    def units_by_name(self) -> dict[str, DoseUnit]:
        return {fold(k): v for k, v in self.dose_units.items()}

    def route(self, code: str) -> Route | None:
        return self.route_by_code.get(code.strip())

    def dose_unit(self, folded: str) -> DoseUnit | None:
        return self.units_by_name.get(fold(folded))

    def ignored_drug(self, code: str) -> bool:
        code = code.strip()
        return any(code == c or (c.endswith(".") and code.startswith(c)) for c in self.ignore_drug_codes)


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int) -> BhytConfig:
    return load_model(Path(path), BhytConfig)


def load_bhyt_config(mappings_dir: Path) -> BhytConfig:
    """`mappings_dir/bhyt.yaml`, validated (ConfigError names file:line); cached while unchanged."""
    path = (mappings_dir / BHYT_FILE).resolve()
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the BHYT mapping: {exc.strerror}") from exc
    return _load(str(path), mtime)
