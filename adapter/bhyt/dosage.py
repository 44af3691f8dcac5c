"""LIEU_DUNG (XML2 dose text) -> dose per administration, times per day, days, bracketed daily total.

The decisions prescribe `2 viên/lần * 2 lần/ngày * 5 ngày [4 viên/ngày]` and, for a dose that varies over the
day, `Sáng: 3 viên, Chiều: 2 viên, Tối: 1 viên [6 viên/ngày]`; real exports vary case, spacing (`/ ngày`),
diacritics, separators (`*`, `x`, `×`), fractions (`1/2`, `½`), decimal commas, and may drop the unit
(`Sáng: 1`) or the bracketed total. The text is folded (lower case, diacritics removed) and read with a few
tolerant patterns; whatever is read is cross-checked against the bracketed total when there is one, and
disagreements are reported as `issues` (the statement keeps the original text in `dosage.text` anyway).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from adapter.meds.drugs import fold

# Times of day as written -> FHIR R4 EventTiming codes.
PERIODS: dict[str, str] = {
    "sang": "MORN",
    "trua": "NOON",
    "chieu": "AFT",
    "toi": "EVE",
    "dem": "NIGHT",
    "khuya": "NIGHT",
}

_NUM = r"(\d+\s+\d+\s*/\s*\d+|\d+\s*/\s*\d+|\d+(?:[.,]\d+)?)"
_KEYWORDS = r"(?:lan|ngay|tuan|gio|thang|moi|x|va|" + "|".join(PERIODS) + r")\b"
_UNIT = r"(?!" + _KEYWORDS + r")(don vi|[a-z\[\]]+)"
_SEP = r"\s*/\s*(?:1\s*)?"

_BRACKET = re.compile(r"[\[(]([^\])]*)[\])]")
_TOTAL = re.compile(_NUM + r"\s*" + _UNIT + r"?" + _SEP + r"ngay\b")
_DAYS = re.compile(r"(?<![/\w])(\d+)\s*ngay\b(?!\s*/)")
_PER_DAY = re.compile(
    r"(\d+)\s*lan"
    + _SEP
    + r"ngay\b|\bngay\s*(?:[a-z]+\s+)?(\d+)\s*lan\b|(\d+)\s*lan\s*(?:trong|moi)\s*ngay\b"
)
_PER_WEEK = re.compile(r"(\d+)\s*lan" + _SEP + r"tuan\b|\btuan\s*(?:[a-z]+\s+)?(\d+)\s*lan\b")
_EVERY_HOURS = re.compile(r"\b(?:moi|cach)\s*(\d+)\s*(?:gio|h)\b")
_BARE_TIMES = re.compile(r"(?<![/\w])(\d+)\s*lan\b(?!\s*/)")
_PER_TIME = re.compile(
    _NUM + r"\s*" + _UNIT + r"?" + r"\s*/\s*lan\b|\b(?:moi\s+)?lan\s*:?\s*" + _NUM + r"\s*" + _UNIT + r"?"
)
_PERIOD = re.compile(r"\b(" + "|".join(PERIODS) + r")\b\s*[:\-]?\s*" + _NUM + r"\s*" + _UNIT + r"?")
_AMOUNT = re.compile(_NUM + r"\s*" + _UNIT)


@dataclass(frozen=True)
class Portion:
    """One time of day and the dose taken then (the `Sáng: 1 viên, Tối: 2 viên` form)."""

    when: str  # FHIR EventTiming code
    dose: Decimal


@dataclass(frozen=True)
class Dosage:
    """What a LIEU_DUNG text says; units are folded (`vien`, `ong`, `ui`), None when not written."""

    text: str
    dose: Decimal | None = None  # per administration, when it is the same each time
    unit: str | None = None
    times: int | None = None  # administrations per `period_unit`
    period_unit: str = "d"  # "d" or "wk"
    days: int | None = None
    portions: tuple[Portion, ...] = ()
    daily_total: Decimal | None = None  # the bracketed `[4 viên/ngày]`
    total_unit: str | None = None
    issues: tuple[str, ...] = ()

    @property
    def understood(self) -> bool:
        return self.dose is not None or bool(self.portions) or self.daily_total is not None

    @property
    def daily_amount(self) -> Decimal | None:
        """Amount per day from the dose and times (or the portions); None when not computable."""
        if self.portions:
            return sum((p.dose for p in self.portions), Decimal(0))
        if self.dose is not None and self.times is not None and self.period_unit == "d":
            return self.dose * self.times
        return None

    @property
    def varies(self) -> bool:
        return len({p.dose for p in self.portions}) > 1


def parse_number(text: str) -> Decimal:
    """`2`, `2.00`, `1,5`, `1/2`, `1 1/2` -> Decimal (fractions to 3 places)."""
    raw = text.strip().replace(",", ".")
    mixed = re.fullmatch(r"(\d+)\s+(\d+)\s*/\s*(\d+)", raw)
    if mixed:
        whole, num, den = (Decimal(g) for g in mixed.groups())
        return _tidy(whole + num / den) if den else Decimal(0)
    frac = re.fullmatch(r"(\d+)\s*/\s*(\d+)", raw)
    if frac:
        num, den = Decimal(frac[1]), Decimal(frac[2])
        return _tidy(num / den) if den else Decimal(0)
    return _plain(Decimal(raw))


def _plain(value: Decimal) -> Decimal:
    """Trailing zeros dropped without turning 10 into 1E+1."""
    value = value.normalize()
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value


def _tidy(value: Decimal) -> Decimal:
    return _plain(value.quantize(Decimal("0.001"), rounding=ROUND_HALF_UP))


def _first_int(match: re.Match[str]) -> int:
    return int(next(g for g in match.groups() if g))


def _blank(text: str, match: re.Match[str]) -> str:
    """The text with a matched span replaced by a separator, so later patterns cannot reuse it."""
    return text[: match.start()] + " ; " + text[match.end() :]


def prepare(text: str) -> str:
    """Folded text with the separators unified: `x`/`×` between terms -> `*`, fraction slash -> `/`."""
    folded = fold(text.replace("\u2044", "/").replace("½", " 1/2").replace("¼", " 1/4").replace("¾", " 3/4"))
    folded = folded.replace("×", "*")
    return re.sub(r"(?<=[\d\s a-z])\s+x\s+(?=\d)|(?<=\d)x(?=\s*\d)", " * ", folded)


def parse_lieu_dung(text: str) -> Dosage:
    """Read a LIEU_DUNG text; never raises: what cannot be read is left None (see `understood`)."""
    work = prepare(text)
    total, total_unit = None, None
    for bracket in list(_BRACKET.finditer(work)):
        found = _TOTAL.search(bracket.group(1))
        if found and total is None:
            total, total_unit = parse_number(found.group(1)), found.group(2)
    work = _BRACKET.sub(" ; ", work)

    portions: list[Portion] = []
    units: list[str] = []
    for match in _PERIOD.finditer(work):
        portions.append(Portion(PERIODS[match.group(1)], parse_number(match.group(2))))
        if match.group(3):
            units.append(match.group(3))
    work = _PERIOD.sub(" ; ", work)

    times, period_unit, work = _times(work)
    days = None
    if found := _DAYS.search(work):
        days = int(found.group(1))
        work = _blank(work, found)

    dose, unit = None, None
    if found := _PER_TIME.search(work):
        number, word = (
            (found.group(1), found.group(2)) if found.group(1) else (found.group(3), found.group(4))
        )
        dose, unit = parse_number(number), word
        work = _blank(work, found)
    if total is None and not portions and (found := _TOTAL.search(work)):
        total, total_unit = parse_number(found.group(1)), found.group(2)
        work = _blank(work, found)
    if dose is None and not portions and (found := _AMOUNT.search(work)):
        dose, unit = parse_number(found.group(1)), found.group(2)

    portions = [p for p in portions if p.dose > 0]
    if portions:
        if times is None:
            times = len(portions)
        if len({p.dose for p in portions}) == 1:
            dose = portions[0].dose
        unit = unit or (units[0] if units else None)
    if dose is None and not portions and total is not None and times and period_unit == "d":
        dose = _tidy(total / times)
    if times is None and total is not None and dose and not portions:
        per_day = total / dose
        if per_day == per_day.to_integral_value():
            times = int(per_day)
    unit = unit or total_unit
    result = Dosage(
        text=text.strip(),
        dose=dose,
        unit=unit,
        times=times,
        period_unit=period_unit,
        days=days,
        portions=tuple(portions),
        daily_total=total,
        total_unit=total_unit,
    )
    return _checked(result, units)


def _times(work: str) -> tuple[int | None, str, str]:
    """Times per day (or per week), most explicit form first; the matched span is blanked out."""
    for pattern, unit in ((_PER_DAY, "d"), (_PER_WEEK, "wk")):
        if found := pattern.search(work):
            return _first_int(found), unit, _blank(work, found)
    if found := _EVERY_HOURS.search(work):
        hours = int(found.group(1))
        if hours and 24 % hours == 0:
            return 24 // hours, "d", _blank(work, found)
    if found := _BARE_TIMES.search(work):
        return _first_int(found), "d", _blank(work, found)
    return None, "d", work


def _checked(result: Dosage, period_units: list[str]) -> Dosage:
    issues: list[str] = []
    if not result.understood and result.times is None:
        issues.append("LIEU_DUNG not understood")
    daily = result.daily_amount
    if result.daily_total is not None and daily is not None:
        same_unit = result.total_unit is None or result.unit is None or result.total_unit == result.unit
        if same_unit and _tidy(daily) != _tidy(result.daily_total):
            issues.append("LIEU_DUNG bracketed daily total disagrees with dose x times per day")
    if len(set(period_units)) > 1:
        issues.append("LIEU_DUNG uses different units for different times of day")
    if result.portions and result.times is not None and result.times != len(result.portions):
        issues.append("LIEU_DUNG times of day disagree with times per day")
    if not issues:
        return result
    return Dosage(**{**result.__dict__, "issues": tuple(issues)})
