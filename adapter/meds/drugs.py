"""The drug map (`mappings/drugs.yaml`): local names and codes -> one known product, with its RxNorm and ATC.

Every medication input (HIS CSV, HL7 RDE/RAS, BHYT XML2) resolves drugs here, so one table serves them all.
A drug that does not resolve is reported by the caller with its name and row, never guessed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from adapter.yamlconf import load_model

ATC_SYSTEM = "http://www.whocc.no/atc"
RXNORM_SYSTEM = "http://www.nlm.nih.gov/research/umls/rxnorm"
INSULIN_ATC_PREFIX = "A10A"
DRUGS_FILE = "drugs.yaml"

_ATC_RE = re.compile(r"^[A-Z](\d{2}([A-Z]([A-Z](\d{2})?)?)?)?$")
_RXCUI_RE = re.compile(r"^\d{1,9}$")


@lru_cache(maxsize=8192)
def fold(text: str) -> str:
    """Lower-case, strip Vietnamese/Latin diacritics (đ -> d), collapse spaces: how names are compared."""
    text = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(text.lower().split())


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Code(_Strict):
    code: str
    display: str | None = None


class DrugEntry(_Strict):
    """One therapeutic product concept (insulins: one per action profile)."""

    model_config = ConfigDict(extra="forbid", frozen=True, ignored_types=(cached_property,))

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9\-]{0,63}$")
    display: str
    atc: Code | None = None
    rxnorm: Code | None = None
    components: list[str] = []
    names: list[str] = []
    codes: list[str] = Field(default=[], description="local HIS drug codes")
    vn_codes: list[str] = Field(default=[], description="Vietnamese MoH active-ingredient codes (MA_THUOC)")
    patterns: list[str] = Field(default=[], description="regexes searched in the folded name (+ strength)")

    @field_validator("atc")
    @classmethod
    def _atc_shape(cls, value: Code | None) -> Code | None:
        if value is not None and not _ATC_RE.match(value.code):
            raise ValueError(f"{value.code!r} is not an ATC code (e.g. A10BA02)")
        return value

    @field_validator("rxnorm")
    @classmethod
    def _rxnorm_shape(cls, value: Code | None) -> Code | None:
        if value is not None and not _RXCUI_RE.match(value.code):
            raise ValueError(f"{value.code!r} is not an RxNorm CUI (digits)")
        return value

    @field_validator("patterns")
    @classmethod
    def _patterns_compile(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {exc}") from exc
        return value

    @cached_property
    def compiled(self) -> list[re.Pattern[str]]:
        return [re.compile(p) for p in self.patterns]


class RouteEntry(_Strict):
    id: str
    display: str
    aliases: list[str] = []
    vn_codes: list[str] = []


class DrugMapFile(_Strict):
    drugs: list[DrugEntry]
    routes: list[RouteEntry] = []

    @model_validator(mode="after")
    def _consistent(self) -> DrugMapFile:
        ids = [d.id for d in self.drugs]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate drug id(s): {', '.join(dupes)}")
        known = set(ids)
        for drug in self.drugs:
            missing = [c for c in drug.components if c not in known]
            if missing:
                raise ValueError(f"drug {drug.id}: unknown component(s) {', '.join(missing)}")
            if drug.components and (drug.atc or drug.rxnorm):
                raise ValueError(f"drug {drug.id}: a combination carries its components' codes, not its own")
        _no_clash(self.drugs, lambda d: [fold(n) for n in (*d.names, d.display)], "name")
        _no_clash(self.drugs, lambda d: [c.strip().upper() for c in d.codes], "local code")
        _no_clash(self.drugs, lambda d: [c.strip() for c in d.vn_codes], "vn_code")
        return self


def _no_clash(drugs: list[DrugEntry], keys, what: str) -> None:
    owner: dict[str, str] = {}
    for drug in drugs:
        for key in set(keys(drug)):
            if key in owner and owner[key] != drug.id:
                raise ValueError(f"{what} {key!r} belongs to both {owner[key]} and {drug.id}")
            owner[key] = drug.id


class DrugNotFound(LookupError):
    """No entry (or more than one equally good entry) for an input drug; the message names it."""


@dataclass(frozen=True)
class DrugMatch:
    """How an input drug was identified: the entry if known, else just the code the source sent."""

    entry: DrugEntry | None
    system: str | None = None  # for an unmapped but source-coded drug: ATC_SYSTEM or RXNORM_SYSTEM
    code: str | None = None

    @property
    def key(self) -> str:
        """A stable short key for identities (entry id, or system:code)."""
        if self.entry is not None:
            return self.entry.id
        return f"{'atc' if self.system == ATC_SYSTEM else 'rxnorm'}:{self.code}"


class DrugMap:
    """The loaded drug map with its lookup indexes."""

    def __init__(self, data: DrugMapFile) -> None:
        self.data = data
        self.by_id = {d.id: d for d in data.drugs}
        self._names = {fold(n): d for d in data.drugs for n in (*d.names, d.display)}
        self._codes = {c.strip().upper(): d for d in data.drugs for c in d.codes}
        self._vn = {c.strip(): d for d in data.drugs for c in d.vn_codes}
        self._atc = {d.atc.code: d for d in data.drugs if d.atc}
        self._rxnorm = {d.rxnorm.code: d for d in data.drugs if d.rxnorm}
        self._routes = {fold(a): r for r in data.routes for a in (*r.aliases, r.id, r.display)}
        self._route_vn = {c: r for r in data.routes for c in r.vn_codes}
        self._by_name_cache: dict[tuple[str, str], DrugMatch | DrugNotFound] = {}  # feeds repeat names

    # -- drugs ---------------------------------------------------------------------------------------
    def by_code(self, code: str, system: str) -> DrugMatch:
        """A drug from a source code. `system`: ATC, RxNorm, local or VN (MA_THUOC), case-insensitive.

        An ATC or RxNorm code identifies the drug even when no entry lists it (the source's code is kept);
        a local or VN code must be in the map.
        """
        code = code.strip()
        kind = normalise_code_system(system)
        if kind == "atc":
            code = code.upper()
            if not _ATC_RE.match(code):
                raise DrugNotFound(f"{code!r} is not an ATC code")
            entry = self._atc.get(code)
            return DrugMatch(entry) if entry else DrugMatch(None, ATC_SYSTEM, code)
        if kind == "rxnorm":
            if not _RXCUI_RE.match(code):
                raise DrugNotFound(f"{code!r} is not an RxNorm CUI")
            entry = self._rxnorm.get(code)
            return DrugMatch(entry) if entry else DrugMatch(None, RXNORM_SYSTEM, code)
        entry = self._vn.get(code) if kind == "vn" else self._codes.get(code.upper())
        if entry is None:
            raise DrugNotFound(f"{code!r} is not in {DRUGS_FILE}")
        return DrugMatch(entry)

    def by_name(self, name: str, strength: str = "") -> DrugMatch:
        """A drug from its local name (and, for patterns, its strength text); DrugNotFound names it."""
        key = (name, strength)
        if key not in self._by_name_cache:
            try:
                self._by_name_cache[key] = self._by_name(name, strength)
            except DrugNotFound as exc:
                self._by_name_cache[key] = exc
        found = self._by_name_cache[key]
        if isinstance(found, DrugNotFound):
            raise DrugNotFound(str(found))
        return found

    def _by_name(self, name: str, strength: str) -> DrugMatch:
        folded = fold(name)
        if not folded:
            raise DrugNotFound("empty")
        entry = self._names.get(folded)
        if entry is not None:
            return DrugMatch(entry)
        prefixed = self._by_prefix(folded)
        if prefixed is not None:
            return DrugMatch(prefixed)
        haystack = f"{folded} {fold(strength)}".strip()
        hits = {d.id: d for d in self.data.drugs if any(p.search(haystack) for p in d.compiled)}
        if len(hits) == 1:
            return DrugMatch(next(iter(hits.values())))
        if len(hits) > 1:
            raise DrugNotFound(f"{name.strip()!r} matches several entries ({', '.join(sorted(hits))})")
        raise DrugNotFound(f"{name.strip()!r} is not in {DRUGS_FILE}")

    def _by_prefix(self, folded: str) -> DrugEntry | None:
        best: list[tuple[int, DrugEntry]] = []
        for known, entry in self._names.items():
            if folded.startswith(known) and re.match(r"[\s,;:/()\-]*\d", folded[len(known) :]):
                best.append((len(known), entry))
        if not best:
            return None
        top = max(length for length, _ in best)
        winners = {e.id: e for length, e in best if length == top}
        if len(winners) > 1:
            raise DrugNotFound(f"the name matches several entries ({', '.join(sorted(winners))})")
        return next(iter(winners.values()))

    def resolve(self, name: str, code: str = "", system: str = "", strength: str = "") -> DrugMatch:
        """The drug of an input line: its code when it has one, else its name.

        An ATC or RxNorm code decides alone; a local or MA_THUOC code missing from the map falls back to
        the name (DrugNotFound then names both).
        """
        if not code.strip():
            return self.by_name(name, strength)
        try:
            return self.by_code(code, system)
        except DrugNotFound as exc:
            if normalise_code_system(system) in ("atc", "rxnorm") or not name.strip():
                raise
            try:
                return self.by_name(name, strength)
            except DrugNotFound:
                raise DrugNotFound(f"{exc}, and {name.strip()!r} is not either") from None

    def components(self, entry: DrugEntry) -> list[DrugEntry]:
        return [self.by_id[c] for c in entry.components]

    def atc_codes(self, match: DrugMatch) -> list[str]:
        """The ATC codes a drug counts under (a combination: its components')."""
        if match.entry is None:
            return [match.code] if match.system == ATC_SYSTEM and match.code else []
        if match.entry.components:
            return [c.atc.code for c in self.components(match.entry) if c.atc]
        return [match.entry.atc.code] if match.entry.atc else []

    def is_insulin(self, match: DrugMatch) -> bool:
        return any(code.startswith(INSULIN_ATC_PREFIX) for code in self.atc_codes(match))

    # -- routes --------------------------------------------------------------------------------------
    def route(self, text: str) -> RouteEntry | None:
        """A route from free text or a BHYT DUONG_DUNG code; None when unknown (caller keeps the text)."""
        stripped = text.strip()
        return self._route_vn.get(stripped) or self._routes.get(fold(stripped))


def normalise_code_system(system: str) -> str:
    """ATC | RxNorm | VN (MA_THUOC) | local, from what sources write; ValueError for anything else."""
    key = fold(system).replace(" ", "").replace("_", "").replace("-", "")
    if key in {"atc", "whoatc", "wc", ATC_SYSTEM}:  # WC: HL7 table 0396 for WHO ATC
        return "atc"
    if key in {"rxnorm", "rxcui", "rxn", RXNORM_SYSTEM}:
        return "rxnorm"
    if key in {"vn", "mathuoc", "dmdc", "byt"}:
        return "vn"
    if key in {"", "local", "his", "l", "99vh"}:
        return "local"
    raise ValueError(f"{system!r} is not ATC, RxNorm, local or MA_THUOC")


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int) -> DrugMap:
    return DrugMap(load_model(Path(path), DrugMapFile))


def load_drug_map(mappings_dir: Path) -> DrugMap:
    """`mappings_dir/drugs.yaml`, validated (ConfigError names file:line); cached while unchanged."""
    path = (mappings_dir / DRUGS_FILE).resolve()
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        mtime = -1  # load_model reports the missing file as a ConfigError
    return _load(str(path), mtime)
