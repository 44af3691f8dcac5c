"""The knobs of the synthetic trial: distributions, effect sizes, real-world quirk shares and faults.

Defaults follow ../shared/reference/trial-anchors.md section 1.3 (each figure names its anchor); the
protocol itself (arms, split, visits, Day-1 rule) is read from mappings/study.yaml, never from here.
A YAML file given with `--params` overrides any subset of these fields; `scenario: "null"` gives the
intervention arm exactly the control arm's changes (the "no effect" world a sound analysis must not
mistake for an effect).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from adapter.yamlconf import load_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ArmEffects(_Strict):
    """Mean change at the end of follow-up (the last visit's target day) for one kind of arm."""

    hba1c_change: float = Field(description="absolute change in HbA1c, % points")
    homab_change_pct: float = Field(description="relative change in HOMA-%B, percent")
    cpep_change_pct: float = Field(description="relative change in fasting C-peptide, percent")
    tnfa_change_pct: float = Field(description="relative change in TNF-alpha, percent")
    il1b_change_pct: float = Field(description="relative change in IL-1beta, percent")
    insulin_dose_change_pct: float = Field(description="relative change in total daily insulin dose, percent")


# Zang 2022 (HbA1c -1.5 vs -0.7 at 48 wk), meta-analysis (difference -0.87), Lian 2022 (HOMA-%B 30 -> 41 at
# day 28), Bhansali 2014 (insulin -66.7% vs -32.1%), Zang (insulin -27.8% vs -15.6%). TNF-alpha and IL-1beta
# have no published anchor: the changes below are assumptions [A].
TREATED = ArmEffects(
    hba1c_change=-1.35,
    homab_change_pct=25.0,
    cpep_change_pct=0.0,
    tnfa_change_pct=-25.0,
    il1b_change_pct=-30.0,
    insulin_dose_change_pct=-58.0,
)
CONTROL = ArmEffects(
    hba1c_change=-0.6,
    homab_change_pct=5.0,
    cpep_change_pct=0.0,
    tnfa_change_pct=-5.0,
    il1b_change_pct=-5.0,
    insulin_dose_change_pct=-24.0,
)


class QuirkShares(_Strict):
    """How often each real-world quirk appears (probabilities per message, file, day or row)."""

    glucose_mg_dl: float = 0.15  # per message: glucose in mg/dL (x 18.016)
    cpep_pmol_l: float = 0.15  # per message: C-peptide in pmol/L (x 331)
    hba1c_ifcc: float = 0.10  # per message: HbA1c in mmol/mol (IFCC = 10.93 x NGSP - 23.5)
    insulin_pmol_l: float = 0.10  # per message: insulin in pmol/L (x 6.0)
    lowercase_units: float = 0.20  # per OBX: "mg/dl", "ng/ml", "uIU/ml", "mmol/l"
    loinc_only: float = 0.15  # per message: OBX-3 carries LOINC only (LN)
    local_plus_loinc: float = 0.25  # per message: local code + LOINC in the alternate triplet
    local_system_l: float = 0.30  # per message: local coding system "L" instead of "99VH"
    lf_files: float = 0.12  # per file: "\n" segment ends
    crlf_files: float = 0.08  # per file: "\r\n" segment ends
    no_offset: float = 0.05  # per message: timestamps without a UTC offset
    batch_days: float = 0.15  # per result day: one FHS/BHS batch file
    concat_days: float = 0.30  # per result day: one file of concatenated messages
    split_panels: float = 0.40  # per visit: HbA1c in a message of its own
    preliminary: float = 0.15  # per cytokine order: P first, F days later
    corrected: float = 0.03  # per chemistry order: a wrong final value, then a C correction
    sn_censored: float = 0.50  # per censored value: SN "<^0.5" rather than NM "<0.5"
    ascii_names: float = 0.10  # per message: name without diacritics and MSH-18 empty
    name_in_one_component: float = 0.30  # per message: the whole name in PID-5.1
    nte: float = 0.05  # per OBR: a free-text NTE comment (with an escape sequence)
    version_231: float = 0.10  # per message: HL7 2.3.1 (MSH-9 without its third component)
    coded_drugs: float = 0.40  # per HIS row: code and code_system filled
    rxnorm_codes: float = 0.20  # per coded row whose drug has a verified RxNorm code: RxNorm not ATC
    vietnamese_routes: float = 0.15  # per HIS row: route "Uống" / "Tiêm dưới da" instead of PO / SC
    insulin_unit_u: float = 0.15  # per insulin row: unit "U" rather than "IU"
    ctcae_grades: float = 0.40  # per AE row: severity as a CTCAE grade 1-5 rather than a word


class AdverseEventRates(_Strict):
    infusion_fever: float = 0.25  # share of treated subjects (Lian 4/16), onset within 24 h of infusion
    aspiration_site_pain: float = 0.30  # share of treated subjects (no numeric anchor) [A]
    aspiration_site_haematoma: float = 0.07  # [A]
    hypoglycaemia_insulin: float = 0.15  # share of insulin users with one episode [A]
    hypoglycaemia_other: float = 0.04  # share of the others [A]
    background_per_subject: float = 0.8  # Poisson mean over follow-up, both arms (RR 0.98) [A]
    serious_unrelated: float = 0.03  # share of subjects with one serious, unrelated event [A]


class DemoParams(_Strict):
    """Everything the generator draws from, except the protocol (mappings/study.yaml)."""

    scenario: Literal["effect", "null"] = "effect"
    first_enrollment: str = "2019-06-03"  # fits the registry dates of NCT03943940
    enrollment_days: int = Field(default=300, ge=1)
    site_timezone_offsets: bool = True

    # Baseline distributions (trial-anchors 1.3). Means/medians are those of the generated, truncated values.
    hba1c_mean: float = 9.0  # Zang arms 9.02 +- 1.27 and 8.89 +- 1.11
    hba1c_sd: float = 1.2
    hba1c_range: tuple[float, float] = (8.0, 11.0)  # inclusion range
    fpg_median: float = 9.7  # mmol/L; Lian 9.34 (8.36-11.77)
    fpg_log_sd: float = 0.25  # IQR ~8.2-11.5
    fpg_min: float = 7.0  # inclusion: FBG > 7 mmol/L
    homab_median: float = 33.0  # HOMA-%B, Lian 29.9 (16.4-37.4); with FPG ~9.7 gives HOMA-IR ~4.3
    homab_log_sd: float = 0.5
    cpep_median: float = 1.7  # ng/mL; Sood 1.1-2.97
    cpep_log_sd: float = 0.4
    cpep_min: float = 0.6  # inclusion: fasting C-peptide > 0.6 ng/mL
    tnfa_median: float = 8.0  # pg/mL [A]
    tnfa_log_sd: float = 0.45
    il1b_median: float = 1.2  # pg/mL [A]; about 1 in 10 below the 0.5 pg/mL detection limit
    il1b_log_sd: float = 0.7
    il1b_detection_limit: float = 0.5
    fpg_hba1c_rank_correlation: float = 0.5
    glucose_per_hba1c: float = 1.3  # mmol/L of FPG change per % HbA1c change [A] (ADAG slope 1.59 for mean)

    # Within-subject variation
    hba1c_subject_sd: float = 0.5  # spread of the individual change around the arm's mean
    hba1c_visit_sd: float = 0.25
    fpg_visit_sd: float = 0.8
    log_visit_sd: float = 0.15  # multiplicative noise of HOMA-%B, C-peptide, cytokines
    effect_tau_days: float = 50.0  # time constant of the approach to the end-of-follow-up change

    # Insulin (Bhansali 42 (31-64) IU/day)
    insulin_user_share: float = 0.40
    insulin_dose_median: float = 40.0
    insulin_dose_log_sd: float = 0.35
    insulin_dose_subject_sd: float = 10.0  # percent points around the arm's mean change

    treated: ArmEffects = TREATED
    control: ArmEffects = CONTROL

    # Conduct
    age_mean: float = 55.0
    age_sd: float = 9.0
    age_range: tuple[int, int] = (18, 70)  # eligibility
    infusion_after_enrollment_days: tuple[int, int] = (7, 21)
    visit_sd_days: float = 3.0
    off_window_share: float = 0.04
    missed_visit_share: float = 0.04
    dropout_share: float = 0.07

    quirks: QuirkShares = QuirkShares()
    adverse_events: AdverseEventRates = AdverseEventRates()
    faults_per_60: float = Field(
        default=1.0, ge=0, description="deliberate faults of each kind per 60 subjects"
    )

    def effects(self, intervention: bool) -> ArmEffects:
        """The arm's effects; in the null scenario the intervention arm gets the control arm's."""
        if intervention and self.scenario == "effect":
            return self.treated
        return self.control

    def fault_count(self, subjects: int) -> int:
        """How many faults of each kind a run of `subjects` carries (at least one when enabled)."""
        if self.faults_per_60 <= 0:
            return 0
        return max(1, round(subjects * self.faults_per_60 / 60))


def load_params(
    path: Path | None, scenario: str | None = None, faults_per_60: float | None = None
) -> DemoParams:
    """Defaults, overridden by a YAML file and then by command-line switches."""
    params = load_model(path, DemoParams) if path else DemoParams()
    updates: dict[str, object] = {}
    if scenario is not None:
        updates["scenario"] = scenario
    if faults_per_60 is not None:
        updates["faults_per_60"] = faults_per_60
    return params.model_copy(update=updates) if updates else params
