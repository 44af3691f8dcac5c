"""Unit harmonisation to each parameter's standard unit, with the factors of mappings/endpoints.yaml."""

from __future__ import annotations

import pytest

from adapter.endpoints.config import EndpointsConfig
from adapter.endpoints.units import UnitConverter
from adapter.study import StudyConfig


@pytest.fixture()
def units(study: StudyConfig, endpoints_config: EndpointsConfig) -> UnitConverter:
    return UnitConverter(study, endpoints_config, {"insulin_pmol_per_uiu": 6.0})


def convert(units: UnitConverter, param: str, unit: str, value: float) -> float:
    fn = units.converter(param, unit)
    assert fn is not None, f"{param}: {unit} not convertible"
    return fn(value)


def test_glucose_by_molar_mass(units: UnitConverter) -> None:
    assert convert(units, "GLUC", "mg/dL", 180.156) == pytest.approx(10.0)  # 180.156 g/mol
    assert convert(units, "GLUC", "mg/dL", 126) == pytest.approx(126 / 18.0156)
    assert convert(units, "GLUC", "mg/dl", 90) == pytest.approx(90 / 18.0156)  # lab spelling
    assert convert(units, "GLUC", "mmol/L", 7.2) == 7.2


def test_hba1c_ifcc_master_equation(units: UnitConverter) -> None:
    assert convert(units, "HBA1C", "mmol/mol", 75) == pytest.approx(9.0125)  # 0.0915 x 75 + 2.15
    assert convert(units, "HBA1C", "mmol/mol", 53) == pytest.approx(6.9995)  # the usual "53 = 7.0 %"
    assert convert(units, "HBA1C", "%", 8.1) == 8.1


def test_c_peptide_and_insulin(
    units: UnitConverter, study: StudyConfig, endpoints_config: EndpointsConfig
) -> None:
    assert convert(units, "CPEP", "pmol/L", 600) == pytest.approx(1.812)
    assert convert(units, "CPEP", "nmol/L", 0.6) == pytest.approx(1.812)
    assert convert(units, "INS", "pmol/L", 60) == pytest.approx(10.0)
    assert convert(units, "INS", "m[IU]/L", 12) == 12  # mIU/L is uIU/mL
    assert convert(units, "INS", "uIU/mL", 12) == 12  # lab spelling of u[IU]/mL
    other = UnitConverter(study, endpoints_config, {"insulin_pmol_per_uiu": 6.945})
    assert other.converter("INS", "pmol/L")(69.45) == pytest.approx(10.0)  # type: ignore[misc]


def test_unknown_units_are_not_guessed(units: UnitConverter) -> None:
    assert units.converter("GLUC", "g/L") is None
    assert units.converter("IL1B", "mmol/L") is None
    assert units.converter("INS", None) is None


def test_ucum_of_a_quantity(units: UnitConverter) -> None:
    ucum = "http://unitsofmeasure.org"
    assert units.ucum({"value": 1, "unit": "mg/dl", "system": ucum, "code": "mg/dL"}) == "mg/dL"
    assert units.ucum({"value": 1, "unit": "uIU/ml"}) == "u[IU]/mL"
    assert units.ucum({"value": 1, "unit": "mIU/L"}) == "m[IU]/L"
