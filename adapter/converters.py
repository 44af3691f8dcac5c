"""The registry of input kinds: one converter function per kind, shared by `convert`, `ingest` and `sync`.

A converter turns input files into FHIR resources plus an account of every message or row. It never
talks to a server and never writes files: `convert` writes its result to NDJSON, `ingest` pushes it.
Converters are imported lazily so a broken optional stage never breaks the others.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from adapter.errors import ConfigError
from adapter.model import Conversion
from adapter.roster import Roster
from adapter.study import StudyConfig


@dataclass(frozen=True)
class ConvertContext:
    """What every converter may read: the protocol, the roster (MRN link key) and the site's mappings."""

    study: StudyConfig
    roster: Roster
    mappings_dir: Path
    identified: bool = False
    insulin_pmol_per_uiu: float = 6.0


ConverterFn = Callable[[Sequence[Path], ConvertContext], Conversion]

# kind -> "module:function"; the function has the ConverterFn signature.
CONVERTERS: dict[str, str] = {
    "roster": "adapter.mapping.subjects:convert_roster_files",
    "hl7": "adapter.hl7.convert:convert_files",
    "meds": "adapter.meds.convert:convert_files",
    "ae": "adapter.ae.convert:convert_files",
    "bhyt": "adapter.bhyt.convert:convert_files",
}


def converter(kind: str) -> ConverterFn:
    """The converter for an input kind; ConfigError for an unknown or not-installed kind."""
    target = CONVERTERS.get(kind)
    if target is None:
        raise ConfigError(f"unknown input kind {kind!r}; known: {', '.join(CONVERTERS)}")
    module_name, func_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"input kind {kind!r} is not available in this build ({exc.name})") from exc
    return getattr(module, func_name)
