"""Converter for input kind `bhyt`: GIAMDINHHS files -> MedicationStatement, Observation, Provenance.

One account per HOSO (encounter), `index` = its position in the file:
- `converted` (or `ignored` when the encounter holds nothing for the study), with a segment per table row
  (`XML2#3`, `XML4#1`) and per table not read (`XML3`, ...), never a value;
- `not-enrolled` when XML1's MA_BN is not in the roster: nothing is emitted, no identifier recorded, and
  the stranger's XML2/XML4 are not even decoded;
- `rejected` with a reason when the encounter cannot be placed (no XML1, empty MA_BN, unreadable table,
  broken envelope) or some row could not be read (the good rows are still converted; nothing is lost).
File-level problems (unreadable, no HOSO at all) are one `rejected` account with index 0.

XML1 is read for MA_BN (the roster link), MA_LK, MA_CSKCB and MA_LOAI_KCB only: names, ID and insurance
numbers, address, phone and money fields are never copied anywhere. One Provenance per file names every
resource it produced and carries the file's SHA-256; `meta.lastUpdated` is the file's NGAYLAP.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO

from adapter.bhyt.config import BhytConfig, load_bhyt_config
from adapter.bhyt.container import ContainerError, Decision, Envelope, Record, read_envelope
from adapter.bhyt.labs import LabRow, map_lab_rows
from adapter.bhyt.meds import DrugRow, DrugTable, Encounter, RowOutcome
from adapter.bhyt.times import TimeError, fhir_time, parse_local, start_of_day
from adapter.converters import ConvertContext
from adapter.errors import ConfigError
from adapter.hl7.codes import LabDictionary, dictionary_for
from adapter.ids import stable_id
from adapter.meds.drugs import DrugMap, load_drug_map
from adapter.model import Conversion, InputAccount, Resource, SegmentAccount

KIND = "bhyt"
AGENT = "adapter (BHYT claim XML import)"
USED_TABLES = frozenset({"XML1", "XML2", "XML4"})
log = logging.getLogger(__name__)


@dataclass
class _Hoso:
    """What is kept of one HOSO while the file is read: the encounter keys and the rows we need."""

    index: int
    subject_id: str | None = None
    stranger: bool = False
    xml1_count: int = 0
    encounter: dict[str, str] = field(default_factory=dict)
    version: str = ""
    drug_table: DrugTable | None = None  # once XML1 has named an enrolled subject
    drugs: list[DrugRow] = field(default_factory=list)  # rows read before XML1 (unlabelled tables)
    labs: list[LabRow] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class _FileConverter:
    """The `Sink` for one file: decides what to decode, keeps the needed facts, maps each HOSO at its end."""

    def __init__(
        self, source: str, ctx: ConvertContext, cfg: BhytConfig, drugs: DrugMap, labs: LabDictionary
    ):
        self.source = source
        self.ctx = ctx
        self.cfg = cfg
        self.drugs = drugs
        self.labs = labs
        self.hoso: dict[int, _Hoso] = {}
        self.envelope = Envelope()
        self.result = Conversion()

    def _state(self, index: int) -> _Hoso:
        return self.hoso.setdefault(index, _Hoso(index))

    # -- Sink ------------------------------------------------------------------------------------------
    def begin_table(self, hoso: int, kind: str, envelope: Envelope) -> Decision:
        self.envelope = envelope
        state = self._state(hoso)
        if kind and kind not in USED_TABLES:
            if kind not in state.skipped:
                state.skipped.append(kind)
            return "skip"
        if state.stranger:
            return "skip"
        if kind in ("XML1", "") or state.xml1_count:
            return "read"
        return "defer"  # XML2/XML4 before XML1: kept aside until we know whose they are

    def record(self, hoso: int, kind: str, record: Record) -> None:
        state = self._state(hoso)
        if state.stranger:
            return
        if record.tag == "TONG_HOP":
            self._xml1(state, record)
        elif record.tag == "CHI_TIET_THUOC":
            if "NGAY_TH_YL" in record.fields and state.version == "130":
                state.version = "4750"
            row = DrugRow.from_record(record)
            if state.drug_table is not None:
                state.drug_table.add(row)
            else:
                state.drugs.append(row)
        elif record.tag == "CHI_TIET_CLS":
            state.labs.append(LabRow.from_record(record))

    def end_table(self, hoso: int, kind: str, error: str | None) -> None:
        if error:
            self._state(hoso).errors.append(f"{kind or 'table'}: {error}")

    def end_hoso(self, hoso: int) -> None:
        state = self.hoso.pop(hoso, None) or _Hoso(hoso)
        try:
            self._finish(state)
        except ConfigError:
            raise
        except Exception as exc:  # a bug must not stop the file; never log content (PHI)
            log.warning("bhyt %s#%d: internal error %s", self.source, hoso, type(exc).__name__)
            self._account(state, "rejected", f"internal error while converting ({type(exc).__name__})")

    # -- XML1 ------------------------------------------------------------------------------------------
    def _xml1(self, state: _Hoso, record: Record) -> None:
        state.xml1_count += 1
        if state.xml1_count > 1:
            state.errors.append("XML1: more than one TONG_HOP record in one HOSO")
            return
        fields = record.fields
        state.version = "4210" if "MA_THE" in fields and "MA_THE_BHYT" not in fields else "130"
        if "NHOM_MAU" in fields:
            state.version = "4750"
        state.encounter = {k: fields.get(k, "").strip() for k in ("MA_LK", "MA_CSKCB", "MA_LOAI_KCB")}
        mrn = fields.get("MA_BN", "").strip()
        if not mrn:
            state.errors.append("XML1: MA_BN empty")
            return
        subject = self.ctx.roster.by_mrn(mrn)
        if subject is None:
            state.stranger = True
            state.drugs.clear()
            state.labs.clear()
            return
        state.subject_id = subject.subject_id
        if not state.encounter["MA_LK"]:
            state.errors.append("XML1: MA_LK empty")
        state.drug_table = DrugTable(self._encounter(state), self.ctx.study, self.cfg, self.drugs)
        for row in state.drugs:
            state.drug_table.add(row)
        state.drugs.clear()

    # -- one HOSO, mapped ------------------------------------------------------------------------------
    def _finish(self, state: _Hoso) -> None:
        if state.stranger:
            self.result.accounts.append(InputAccount(KIND, self.source, state.index, "not-enrolled"))
            return
        if not state.xml1_count:
            state.errors.insert(0, "no XML1 (TONG_HOP) in this HOSO: patient unknown")
        if state.subject_id is None or state.errors:
            # Unplaceable, or a table could not be read to its end: sending part of an encounter would
            # shorten periods and lose results silently, so nothing of it is sent.
            self._account(state, "rejected", "; ".join(state.errors) or "patient unknown")
            return
        enc = self._encounter(state)
        resources, segments, row_errors = self._map(state, enc)
        self.result.resources.extend(resources)
        outcome = "converted" if resources else "ignored"
        reason = None if resources else "nothing for the study in this encounter"
        if row_errors:
            outcome, reason = "rejected", "; ".join(row_errors)
        account = self._account(state, outcome, reason)
        account.resources = [f"{r['resourceType']}/{r['id']}" for r in resources]
        account.segments = segments

    def _encounter(self, state: _Hoso) -> Encounter:
        facility = state.encounter.get("MA_CSKCB") or self.envelope.facility or ""
        built_on, stamp = self._built_on()
        return Encounter(
            subject_id=state.subject_id or "",
            facility=facility,
            ma_lk=state.encounter.get("MA_LK", ""),
            encounter_type=state.encounter.get("MA_LOAI_KCB", ""),
            built_on=built_on,
            last_updated=stamp,
        )

    def _built_on(self) -> tuple[date | None, str | None]:
        """NGAYLAP as a date and as the version stamp of everything the file produces."""
        raw = (self.envelope.built_on or "").strip()
        if not raw:
            return None, None
        try:
            value = parse_local(raw, self.ctx.study.tz)
        except TimeError:
            return None, None
        if isinstance(value, datetime):
            return value.date(), fhir_time(value)
        return value, fhir_time(start_of_day(value, self.ctx.study.tz))

    def _map(self, state: _Hoso, enc: Encounter) -> tuple[list[Resource], list[SegmentAccount], list[str]]:
        study = self.ctx.study
        segments = [SegmentAccount(0, "XML1", "mapped", "subject (pseudonymised) and encounter keys")]
        resources: list[Resource] = []
        outcomes: list[tuple[str, dict[int, RowOutcome]]] = []
        if state.drug_table is not None and state.drug_table.rows:
            made, by_row = state.drug_table.finish()
            resources.extend(made)
            outcomes.append(("XML2", by_row))
        if state.labs:
            made, by_row = map_lab_rows(state.labs, enc, study, self.cfg, self.labs)
            resources.extend(made)
            outcomes.append(("XML4", by_row))
        errors: list[str] = []
        position = 0
        for table, by_row in outcomes:
            for first, last, outcome in _collapse(by_row):
                position += 1
                name = f"{table}#{first}" if first == last else f"{table}#{first}-{last}"
                if outcome.error:
                    errors.append(f"{table}#{first} {outcome.error}")
                status = "mapped" if outcome.resources else "ignored"
                reason = outcome.error or outcome.reason
                segments.append(
                    SegmentAccount(position, name, status, reason, list(dict.fromkeys(outcome.resources)))
                )
        for table in state.skipped:
            position += 1
            segments.append(
                SegmentAccount(position, table, "ignored", "table not used by the study (not decoded)")
            )
        return resources, segments, errors

    def _account(self, state: _Hoso, outcome: str, reason: str | None) -> InputAccount:
        account = InputAccount(
            KIND,
            self.source,
            state.index,
            outcome,  # type: ignore[arg-type]
            message_type=f"BHYT-{state.version}" if state.version else None,
            reason=reason,
        )
        self.result.accounts.append(account)
        return account


def _collapse(by_row: dict[int, RowOutcome]) -> list[tuple[int, int, RowOutcome]]:
    """Consecutive rows with the same outcome as one range (`XML2#3-12`): one line for a 30-day stay."""
    out: list[tuple[int, int, RowOutcome]] = []
    for index in sorted(by_row):
        outcome = by_row[index]
        if out and out[-1][1] == index - 1 and not outcome.error and out[-1][2] == outcome:
            out[-1] = (out[-1][0], index, out[-1][2])
        else:
            out.append((index, index, outcome))
    return out


class _HashingReader:
    """A binary stream that hashes what is read through it (the file's SHA-256 in one pass)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.digest.update(data)
        return data


def convert_stream(stream: IO[bytes], source: str, ctx: ConvertContext) -> Conversion:
    """Convert one GIAMDINHHS file read from `stream`; `source` names it in accounts (file name)."""
    cfg = load_bhyt_config(ctx.mappings_dir)
    drugs = load_drug_map(ctx.mappings_dir)
    labs = dictionary_for(ctx.mappings_dir, ctx.study)
    converter = _FileConverter(source, ctx, cfg, drugs, labs)
    reader = _HashingReader(stream)
    try:
        envelope = read_envelope(reader, converter)  # type: ignore[arg-type]
    except ContainerError as exc:
        envelope = converter.envelope
        index = exc.hoso or envelope.hoso_count + 1
        converter.hoso.pop(index, None)
        converter.result.accounts.append(InputAccount(KIND, source, index, "rejected", reason=str(exc)))
    else:
        if envelope.hoso_count == 0:
            reason = "no HOSO in the file (not a GIAMDINHHS claim export?)"
            converter.result.accounts.append(InputAccount(KIND, source, 0, "rejected", reason=reason))
    digest = reader.digest.hexdigest()
    result = converter.result
    for account in result.accounts:
        account.sha256 = digest
    if envelope.declared is not None and envelope.declared != envelope.hoso_count and result.accounts:
        note = f"SOLUONGHOSO declares {envelope.declared} HOSO, the file holds {envelope.hoso_count}"
        result.accounts[0].reason = "; ".join(r for r in (result.accounts[0].reason, note) if r)
    if result.resources:
        # the same encounter twice in one file (a HOSO repeated) gives the same ids: keep one, the last
        by_key = {(r["resourceType"], r["id"]): r for r in result.resources}
        result.resources = list(by_key.values())
        provenance = _provenance(result.resources, digest, envelope, ctx, converter)
        result.resources.append(provenance)
        ref = f"Provenance/{provenance['id']}"
        for account in result.accounts:
            if account.resources:
                account.resources.append(ref)
    return result


def _provenance(
    produced: list[Resource], digest: str, envelope: Envelope, ctx: ConvertContext, conv: _FileConverter
) -> Resource:
    _, stamp = conv._built_on()
    recorded = stamp or max(_times(produced), default=None) or fhir_time(datetime.now(ctx.study.tz))
    label = "BHYT claim XML (GIAMDINHHS)" + (
        f" from facility {envelope.facility}" if envelope.facility else ""
    )
    resource: Resource = {"resourceType": "Provenance", "id": stable_id("prov", KIND, digest)}
    if stamp:
        resource["meta"] = {"lastUpdated": stamp}
    resource.update(
        {
            "target": [
                {"reference": ref}
                for ref in dict.fromkeys(f"{r['resourceType']}/{r['id']}" for r in produced)
            ],
            "recorded": _instant(recorded, ctx),
            "agent": [{"who": {"display": AGENT}}],
            "entity": [
                {
                    "role": "source",
                    "what": {
                        "identifier": {"system": ctx.study.system("bhyt-file-sha256"), "value": digest},
                        "display": label,
                    },
                }
            ],
        }
    )
    return resource


def _times(resources: list[Resource]) -> list[str]:
    out = []
    for r in resources:
        value = r.get("effectiveDateTime") or (r.get("effectivePeriod") or {}).get("start")
        if isinstance(value, str) and "T" in value:
            out.append(value)
    return out


def _instant(value: str, ctx: ConvertContext) -> str:
    if "T" in value:
        return value
    return fhir_time(start_of_day(date.fromisoformat(value[:10]), ctx.study.tz))


def convert_files(paths: Sequence[Path], ctx: ConvertContext) -> Conversion:
    """Converter for kind `bhyt` (adapter/converters.py): every HOSO of every file is accounted for."""
    result = Conversion()
    for path in paths:
        try:
            with path.open("rb") as stream:
                result.extend(convert_stream(stream, path.name, ctx))
        except OSError as exc:
            reason = f"cannot read: {exc.strerror}"
            result.accounts.append(InputAccount(KIND, path.name, 0, "rejected", reason=reason))
    return result
