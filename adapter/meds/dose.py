"""Dose values and units as sources write them -> UCUM quantities.

Insulin is dosed in international units: UCUM `[IU]` (UCUM `U` is the *enzyme* unit, so `U`/`IU`/`units`/
`UI`/`đơn vị` on input all become `[IU]`, terminology.md §4). Mass units stay as written, normalised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from adapter.meds.drugs import fold

UCUM = "http://unitsofmeasure.org"

# folded input spelling -> (UCUM code, human unit)
_UNITS: dict[str, tuple[str, str]] = {}
for _code, _human, _spellings in (
    (
        "[IU]",
        "IU",
        ["iu", "[iu]", "[iu_i]", "u", "ui", "unit", "units", "don vi", "dv", "đv", "i.u.", "iu/dose"],
    ),
    ("mg", "mg", ["mg", "miligam", "milligram", "milligrams"]),
    ("g", "g", ["g", "gam", "gram", "grams"]),
    ("ug", "ug", ["ug", "mcg", "µg", "μg", "microgram", "micrograms"]),
    ("mL", "mL", ["ml", "milliliter", "millilitre"]),
    ("{tbl}", "tablet", ["tablet", "tablets", "tab", "tabs", "vien", "{tbl}", "{tablet}"]),
    ("{capsule}", "capsule", ["capsule", "capsules", "cap", "caps", "nang", "{capsule}"]),
):
    for _s in _spellings:
        _UNITS[fold(_s)] = (_code, _human)


class DoseError(ValueError):
    """A dose, unit or frequency that cannot be read: `part` says which (dose | unit), the message why."""

    def __init__(self, reason: str, part: str = "dose") -> None:
        super().__init__(reason)
        self.part = part


@dataclass(frozen=True)
class Dose:
    value: Decimal
    unit_code: str  # UCUM
    unit: str  # human-readable

    def as_quantity(self) -> dict[str, object]:
        return {"value": decimal_json(self.value), "unit": self.unit, "system": UCUM, "code": self.unit_code}


def decimal_json(value: Decimal) -> int | float:
    """A Decimal as the JSON number it reads as (integral values without a trailing .0)."""
    return int(value) if value == value.to_integral_value() else float(value)


def parse_unit(text: str) -> tuple[str, str]:
    """(UCUM code, human unit) for an input unit; DoseError if unknown."""
    found = _UNITS.get(fold(text))
    if found is None:
        raise DoseError("not a known dose unit (mg, g, ug, mL, IU/U/units, tablet, capsule)", "unit")
    return found


def parse_amount(text: str) -> Decimal:
    """A positive dose amount: `4`, `0.5`, `0,5` (decimal comma), `1/2`."""
    raw = text.strip().replace(",", ".")
    if not raw:
        raise DoseError("empty")
    fraction = re.fullmatch(r"(\d+)\s*/\s*(\d+)", raw)
    try:
        value = Decimal(fraction[1]) / Decimal(fraction[2]) if fraction else Decimal(raw)
    except (InvalidOperation, ZeroDivisionError) as exc:
        raise DoseError("not a number") from exc
    if not value.is_finite() or value <= 0:
        raise DoseError("must be a positive number")
    return value.normalize() if fraction is None else value.quantize(Decimal("0.001")).normalize()


def parse_dose(amount: str, unit: str, *, insulin: bool) -> Dose:
    """A dose from its amount and unit; an insulin dose must be in units (IU), not a mass."""
    value = parse_amount(amount)
    code, human = parse_unit(unit)
    if insulin and code != "[IU]":
        raise DoseError("an insulin dose must be in units (IU/U/units)", "unit")
    return Dose(value, code, human)


def parse_times_per_day(text: str) -> int | None:
    """Administrations per day, a whole number 1..24; None when empty."""
    raw = text.strip().replace(",", ".")
    if not raw:
        return None
    try:
        number = Decimal(raw)
    except InvalidOperation as exc:
        raise DoseError("not a number") from exc
    if number != number.to_integral_value() or not 1 <= number <= 24:
        raise DoseError("must be a whole number of times per day, 1..24")
    return int(number)
