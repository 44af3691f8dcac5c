"""Unit harmonisation: a lab value in whatever unit it came, to its parameter's standard unit.

The factors live in `mappings/endpoints.yaml` (glucose by its molar mass, HbA1c by the IFCC master
equation, insulin by the configured pmol/L per uIU/mL factor). A unit we do not know is an error the run
reports, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adapter.endpoints.config import Conversion, EndpointsConfig
from adapter.study import StudyConfig

UCUM = "http://unitsofmeasure.org"


@dataclass(frozen=True)
class Linear:
    multiply: float
    divide: float
    add: float

    def __call__(self, value: float) -> float:
        return value * self.multiply / self.divide + self.add

    @property
    def slope(self) -> float:
        return self.multiply / self.divide


class UnitConverter:
    """Converts (parameter, unit) -> standard unit; knows the unit aliases labs write."""

    def __init__(self, study: StudyConfig, config: EndpointsConfig, settings: dict[str, float]) -> None:
        self._aliases = {k.casefold(): v for k, v in config.unit_aliases.items()}
        self._table: dict[tuple[str, str], Linear] = {}
        for param in study.parameters:
            self._table[(param.id, param.unit)] = Linear(1.0, 1.0, 0.0)
            for conv in config.conversions.get(param.id, []):
                self._table[(param.id, conv.unit)] = _linear(conv, settings)

    def ucum(self, quantity: dict[str, Any]) -> str | None:
        """The UCUM code of a Quantity: its `code` if the system is UCUM, else its `unit` via the aliases."""
        code = quantity.get("code")
        if code and quantity.get("system") in (UCUM, None):
            return str(code)
        unit = quantity.get("unit")
        if not isinstance(unit, str) or not unit.strip():
            return str(code) if code else None
        return self.alias(unit)

    def alias(self, unit: str) -> str:
        return self._aliases.get(unit.strip().casefold(), unit.strip())

    def converter(self, param: str, unit: str | None) -> Linear | None:
        if unit is None:
            return None
        return self._table.get((param, unit)) or self._table.get((param, self.alias(unit)))

    def describe(self, study: StudyConfig) -> list[dict[str, Any]]:
        """The conversions in force, for the report and run.json."""
        out = []
        for (param, unit), lin in sorted(self._table.items()):
            target = study.parameter(param)
            if target is None or unit == target.unit:
                continue
            out.append(
                {
                    "param": param,
                    "from": unit,
                    "to": target.unit,
                    "multiply": lin.multiply,
                    "divide": lin.divide,
                    "add": lin.add,
                }
            )
        return out


def _linear(conv: Conversion, settings: dict[str, float]) -> Linear:
    divide = settings[conv.divide] if isinstance(conv.divide, str) else conv.divide
    return Linear(conv.multiply, float(divide), conv.add)
