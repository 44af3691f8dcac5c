"""The study protocol as data: `mappings/study.yaml` loaded into typed, validated models.

Everything trial-specific (identifiers, arms, visit windows, parameters and their codes, site, timezone)
lives in the YAML file; the engine reads it from here and never hard-codes it.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from adapter.yamlconf import load_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Coding(_Strict):
    system: str
    code: str
    display: str | None = None

    def as_fhir(self) -> dict[str, str]:
        out = {"system": self.system, "code": self.code}
        if self.display:
            out["display"] = self.display
        return out


class Identifier(_Strict):
    system: str
    value: str
    use: Literal["usual", "official", "temp", "secondary", "old"] = "official"


class OrganizationInfo(_Strict):
    id: str
    name: str
    city: str | None = None
    country: str | None = None


class Arm(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9\-\.]{1,64}$")
    name: str
    type: str
    description: str
    day1: Literal["infused_on", "enrolled_on"] = Field(
        description="roster column whose date is Day 1 for this arm's subjects"
    )
    planned_subjects: int | None = None
    intervention: bool = False


class Visit(_Strict):
    id: str
    name: str
    target_day: int
    window: tuple[int, int]

    @model_validator(mode="after")
    def _window_holds_target(self) -> Visit:
        low, high = self.window
        if low > high:
            raise ValueError(f"window start {low} is after its end {high}")
        if not low <= self.target_day <= high:
            raise ValueError(f"target day {self.target_day} is outside the window {low}..{high}")
        if 0 in (low, high, self.target_day):
            raise ValueError("there is no study day 0 (CDISC: Day 1 is the reference date, Day -1 before)")
        return self


class LoincCode(_Strict):
    code: str
    display: str
    unit: str = Field(description="the UCUM unit this code is reported in")
    property: Literal["mass", "substance", "arbitrary", "fraction", "ratio", "number"]


class Parameter(_Strict):
    id: str
    name: str
    kind: Literal["lab", "derived", "medication"]
    unit: str = Field(description="standard unit for analysis (UCUM)")
    unit_label: str | None = Field(default=None, description="how the unit is printed in tables")
    loinc: list[LoincCode] = []
    code: Coding | None = Field(default=None, description="code for derived values without a LOINC code")
    fasting: bool = False


class Outcome(_Strict):
    id: str
    name: str
    description: str
    type: Literal["primary", "secondary"] = "primary"
    parameters: list[str] = []


class StudyInfo(_Strict):
    key: str = Field(pattern=r"^[A-Za-z0-9\-]{1,40}$", description="short id used in resource ids")
    title: str
    description: str
    identifiers: list[Identifier]
    status: str = "active"
    phase: str
    primary_purpose: str
    condition: Coding
    keywords: list[str] = []
    start: str | None = None
    end: str | None = None


class StudyConfig(_Strict):
    """The whole protocol: validated once on load, then read by every stage."""

    study: StudyInfo
    timezone: str
    system_base: str = Field(description="URI namespace for the site's own identifier and code systems")
    sponsor: OrganizationInfo
    site: OrganizationInfo
    arms: list[Arm]
    visits: list[Visit]
    parameters: list[Parameter]
    outcomes: list[Outcome]
    cell_dose_per_kg: float | None = Field(default=None, description="planned UC-MSC cells/kg")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA timezone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _consistent(self) -> StudyConfig:
        for name, items in (("arms", self.arms), ("visits", self.visits), ("parameters", self.parameters)):
            ids = [i.id for i in items]
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"duplicate {name} id(s): {', '.join(dupes)}")
        known = {p.id for p in self.parameters}
        for outcome in self.outcomes:
            missing = [p for p in outcome.parameters if p not in known]
            if missing:
                raise ValueError(f"outcome {outcome.id} names unknown parameter(s): {', '.join(missing)}")
        return self

    model_config = ConfigDict(extra="forbid", frozen=True, ignored_types=(cached_property,))

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def arm(self, arm_id: str) -> Arm | None:
        return next((a for a in self.arms if a.id == arm_id), None)

    def parameter(self, param_id: str) -> Parameter | None:
        return next((p for p in self.parameters if p.id == param_id), None)

    def system(self, name: str) -> str:
        """The URI of one of the site's own systems, e.g. system('subject-id')."""
        return f"{self.system_base.rstrip('/')}/{name}"


def default_mappings_dir() -> Path:
    """`mappings/` shipped beside the package (a site points `mappings_dir` elsewhere)."""
    return Path(__file__).resolve().parent.parent / "mappings"


def load_study(path: Path) -> StudyConfig:
    """Load and validate a study file; ConfigError names file, line and field on any problem."""
    return load_model(path, StudyConfig)
