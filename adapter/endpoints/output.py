"""CSV output: UTF-8, a header row, `\n` line ends, numbers rounded for reading, never in computations.

Rounding happens only here: computations keep full precision. Trailing zeros are dropped (7.50 -> 7.5) and
-0 is written 0; a missing value is an empty field.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

_SPECS = [f".{d}f" for d in range(11)]


def fmt(value: Any, decimals: int = 4) -> str:
    """One field: numbers rounded to `decimals` places, dates ISO 8601, None empty, tuples `;`-joined."""
    kind = type(value)
    if kind is float:
        if value != value or value in (math.inf, -math.inf):
            return ""
        text = format(value, _SPECS[decimals])
        if decimals:
            text = text.rstrip("0").rstrip(".")
        return "0" if text == "-0" else text
    if value is None:
        return ""
    if kind is str:
        return value
    if kind is bool:
        return "Y" if value else "N"
    if kind is int:
        return str(value)
    if kind is tuple or kind is list:
        return ";".join(str(v) for v in value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, float):  # numpy floats
        return fmt(float(value), decimals)
    return str(value)


def fmt_p(value: float | None) -> str:
    """A p-value with 4 significant digits (small ones in scientific notation)."""
    if value is None or not math.isfinite(value):
        return ""
    return f"{value:.4g}"


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> int:
    """Write a CSV file (already formatted fields); return the number of data rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            count += 1
    return count
