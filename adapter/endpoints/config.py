"""Analysis choices for `adapter endpoints`: `mappings/endpoints.yaml`, checked against the study.

Unit factors, status and censoring rules, ATC classes, the reference arm and output rounding are data, so a
statistician can change them (and see them in `run.json`) without touching code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from adapter.errors import ConfigError
from adapter.study import StudyConfig
from adapter.yamlconf import load_model

SETTING_FACTORS = ("insulin_pmol_per_uiu",)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Conversion(_Strict):
    unit: str = Field(description="UCUM code of the unit converted from")
    multiply: float = 1.0
    divide: float | Literal["insulin_pmol_per_uiu"] = 1.0
    add: float = 0.0


class WeightConfig(_Strict):
    loinc: list[str]
    to_kg: dict[str, float]


class InfusionConfig(_Strict):
    code_system: str
    code: str
    treatment: str
    route: str
    dose_extension: str | None = None


class MedicationConfig(_Strict):
    insulin_dose_param: str
    insulin_dose_per_kg_param: str
    atc_system: str
    insulin_atc: list[str]
    oral_atc: list[str]
    antidiabetic_atc: list[str]
    insulin_dose_units: list[str]
    # a drug with no ATC code at all (RxNorm or a local code only) whose name contains one of these
    insulin_names: list[str] = []
    excluded_statuses: list[str] = []
    component_extension: str | None = None
    # one course can arrive by several channels: which one counts when they overlap (see medications.py)
    source_extension: str | None = None
    source_priority: list[str] = []
    drug_systems: list[str] = []


class HomaConfig(_Strict):
    glucose: str
    insulin: str
    ir: str
    beta: str


class AdverseEventConfig(_Strict):
    related: list[str]
    causality_extensions: list[str] = []
    resolved_extensions: list[str] = []


class StatisticsConfig(_Strict):
    reference_arm: str
    confidence: float = Field(default=0.95, gt=0, lt=1)
    quantile_method: Literal[
        "linear",
        "weibull",
        "hazen",
        "median_unbiased",
        "normal_unbiased",
        "inverted_cdf",
        "averaged_inverted_cdf",
    ] = "linear"


class OutputConfig(_Strict):
    csv_decimals: int = Field(default=4, ge=0, le=10)
    display_decimals: dict[str, int] = {}


class EndpointsConfig(_Strict):
    """Everything `adapter endpoints` decides that is not the protocol itself."""

    baseline_visit: str
    observation_statuses: list[str]
    # Observations coded in one of these systems come from a secondary channel (claims): where the lab's
    # own feed has the same parameter for the subject on the same day, the secondary value is left out
    secondary_lab_code_systems: list[str] = []
    # LOINC codes other sources use for a parameter besides the study's own (study.yaml); the unit still
    # has to convert to the parameter's standard unit
    lab_loinc_synonyms: dict[str, str] = {}
    censored_values: Literal["limit", "exclude"] = "limit"
    conversions: dict[str, list[Conversion]] = {}
    unit_aliases: dict[str, str] = {}
    weight: WeightConfig
    infusion: InfusionConfig
    medications: MedicationConfig
    homa: HomaConfig
    adverse_events: AdverseEventConfig
    statistics: StatisticsConfig
    output: OutputConfig = OutputConfig()

    @model_validator(mode="after")
    def _known_statuses(self) -> EndpointsConfig:
        bad = {"cancelled", "entered-in-error"} & set(self.observation_statuses)
        if bad:
            raise ValueError(f"observation_statuses must not include {', '.join(sorted(bad))}")
        return self

    def check_against(self, study: StudyConfig, source: str = "endpoints.yaml") -> None:
        """Every parameter and arm named here must exist in the study (ConfigError otherwise)."""
        params = {p.id for p in study.parameters}
        named = [*self.conversions, *self.output.display_decimals, *self.lab_loinc_synonyms.values()]
        named += [self.homa.glucose, self.homa.insulin, self.homa.ir, self.homa.beta]
        named += [self.medications.insulin_dose_param, self.medications.insulin_dose_per_kg_param]
        unknown = sorted({p for p in named if p not in params})
        if unknown:
            raise ConfigError(f"{source}: unknown parameter(s) {', '.join(unknown)} (not in study.yaml)")
        if self.baseline_visit not in {v.id for v in study.visits}:
            raise ConfigError(f"{source}: baseline_visit {self.baseline_visit!r} is not a visit of the study")
        if study.arm(self.statistics.reference_arm) is None:
            raise ConfigError(
                f"{source}: statistics.reference_arm "
                f"{self.statistics.reference_arm!r} is not an arm of the study"
            )


def extension_url(study: StudyConfig, name: str) -> str:
    """An extension URL from endpoints.yaml: absolute as given, else in the study's namespace."""
    return name if name.startswith(("http://", "https://")) else study.system(name)


def load_endpoints_config(mappings_dir: Path, study: StudyConfig) -> EndpointsConfig:
    """Load `endpoints.yaml` from the mappings folder and check it names only the study's parameters."""
    path = mappings_dir / "endpoints.yaml"
    if not path.is_file():
        raise ConfigError(f"{path}: missing (the endpoint extraction settings)")
    config = load_model(path, EndpointsConfig)
    config.check_against(study, str(path))
    return config
