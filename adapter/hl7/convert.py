"""The `hl7` converter: files or single messages -> FHIR resources plus one account per message.

Order of work per message, cheapest first, so a hospital feed where 99% of messages are for other
patients costs microseconds each:
0. `route.peek` reads MSH-9, MSH-10 and PID-3 straight from the bytes (standard delimiters): an ORU
   for nobody on the roster is accounted `not-enrolled` at once. Anything else takes the general path:
1. `parse_header` (MSH only): not HL7 -> rejected; RDE/RAS -> the pharmacy hook; not ORU -> rejected.
2. PID-3 of every PID segment against the roster: nobody enrolled -> `not-enrolled`, nothing else read
   (no content, no hash, no identifier kept).
3. Full parse and mapping (oru.py) -> `converted`, `ignored` (enrolled, but no study results) or
   `rejected` with a reason. A message is converted whole or not at all.

Pharmacy messages (RDE^O11, RAS^O17) go, after the same roster check, to
`adapter.meds.hl7:convert_pharmacy_message(message, ctx, source, index) -> Conversion` when that module
exists; without it they are rejected as an unsupported message type.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from adapter.converters import ConvertContext
from adapter.errors import ConfigError, InputError
from adapter.hl7.codes import dictionary_for
from adapter.hl7.framing import split_messages
from adapter.hl7.header import Header, MalformedMessage, parse_header
from adapter.hl7.message import Message, parse_message
from adapter.hl7.oru import MapContext, map_oru
from adapter.hl7.route import enrolled_subjects, match_subject, peek
from adapter.ids import sha256_hex
from adapter.model import Conversion, InputAccount, Resource
from adapter.ndjson import newer

log = logging.getLogger(__name__)

KIND = "hl7"
ORU_TRIGGERS = frozenset(("R01", "R30", "R31", "R32", ""))
PHARMACY_CODES = frozenset(("RDE", "RAS"))
PHARMACY_HOOK = ("adapter.meds.hl7", "convert_pharmacy_message")
PharmacyFn = Callable[[Message, ConvertContext, str, int], Conversion]


def pharmacy_hook() -> PharmacyFn | None:
    """The meds converter for HL7 pharmacy messages, if this build has it (imported lazily)."""
    module_name, func_name = PHARMACY_HOOK
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            return None
        raise
    return getattr(module, func_name, None)


class HL7Converter:
    """Converts messages for one context; holds the (cached) lab dictionary and the site timezone."""

    def __init__(self, ctx: ConvertContext) -> None:
        self.ctx = ctx
        self.map_ctx = MapContext(
            ctx.study, ctx.roster, dictionary_for(ctx.mappings_dir, ctx.study), ctx.study.tz
        )

    def account(
        self, source: str, index: int, outcome: str, header: Header | None = None, reason: str | None = None
    ) -> InputAccount:
        return InputAccount(
            kind=KIND,
            source=source,
            index=index,
            outcome=outcome,  # type: ignore[arg-type]
            control_id=(header.control_id[:199] or None) if header else None,
            message_type=(header.message_type[:40] or None) if header else None,
            reason=reason,
        )

    def message(self, raw: bytes, source: str, index: int) -> Conversion:
        """Convert one wire-form message; never raises for a bad message (ConfigError does raise)."""
        out = Conversion()
        self._message(raw, source, index, out)
        return out

    def _message(self, raw: bytes, source: str, index: int, out: Conversion) -> None:
        fast = peek(raw)
        if fast is not None and fast.message_code == "ORU" and fast.trigger_event in ORU_TRIGGERS:
            try:
                strangers = not any(match_subject(ids, self.ctx.roster) for ids in fast.patient_ids)
            except InputError:
                strangers = False  # ambiguous identity: the general path rejects it with its reason
            if strangers and fast.patient_ids:
                out.accounts.append(
                    InputAccount(
                        kind=KIND,
                        source=source,
                        index=index,
                        outcome="not-enrolled",
                        control_id=fast.control_id[:199] or None,
                        message_type=fast.message_type,
                        reason="patient not enrolled",
                    )
                )
                return
        header: Header | None = None
        try:
            header = parse_header(raw)
            code = header.message_code
            pharmacy = code in PHARMACY_CODES
            if not pharmacy and (code != "ORU" or header.trigger_event not in ORU_TRIGGERS):
                kind = header.message_type[:40] or "(empty MSH-9)"
                reason = f"unsupported message type {kind}"
                out.accounts.append(self.account(source, index, "rejected", header, reason))
                return
            subjects = enrolled_subjects(raw, header, self.ctx.roster)
            if not any(subjects):
                outcome, reason = (
                    ("not-enrolled", "patient not enrolled") if subjects else ("rejected", "no PID segment")
                )
                out.accounts.append(self.account(source, index, outcome, header, reason))
                return
            message = parse_message(raw)
            out.extend(
                self.pharmacy(message, source, index) if pharmacy else self.oru(message, source, index)
            )
        except ConfigError:
            raise
        except InputError as exc:
            out.accounts.append(self.account(source, index, "rejected", header, exc.reason))
        except Exception as exc:  # a bug must not stop the feed; never log content (PHI)
            log.warning("hl7 %s#%d: internal error %s", source, index, type(exc).__name__)
            reason = f"internal error while converting ({type(exc).__name__})"
            out.accounts.append(self.account(source, index, "rejected", header, reason))

    def oru(self, message: Message, source: str, index: int) -> Conversion:
        result = map_oru(message, self.map_ctx)
        account = self.account(source, index, "converted" if result.resources else "ignored", message.header)
        account.reason = result.reason
        account.resources = [f"{r['resourceType']}/{r['id']}" for r in result.resources]
        account.segments = result.segments
        account.sha256 = sha256_hex(message.raw)
        return Conversion(result.resources, [account])

    def pharmacy(self, message: Message, source: str, index: int) -> Conversion:
        hook = pharmacy_hook()
        if hook is None:
            reason = f"unsupported message type {message.header.message_type} (no pharmacy converter)"
            return self._one(self.account(source, index, "rejected", message.header, reason))
        return hook(message, self.ctx, source, index)

    @staticmethod
    def _one(account: InputAccount) -> Conversion:
        return Conversion([], [account])

    def data(self, data: bytes, source: str) -> Conversion:
        """Every message in a file's bytes (batches, MLLP framing and all)."""
        messages = split_messages(data)
        if not messages:
            return self._one(self.account(source, 0, "rejected", reason="no HL7 message in the input"))
        out = Conversion()
        for index, raw in enumerate(messages, 1):
            self._message(raw, source, index, out)
        return out


def newest_versions(resources: Sequence[Resource]) -> list[Resource]:
    """One resource per type and id, the newest version (as the NDJSON merge would keep it)."""
    by_key: dict[tuple[str, str], Resource] = {}
    for resource in resources:
        key = (resource["resourceType"], resource["id"])
        by_key[key] = newer(resource, by_key[key]) if key in by_key else resource
    return list(by_key.values())


def convert_files(paths: Sequence[Path], ctx: ConvertContext) -> Conversion:
    """The `hl7` converter (adapter/converters.py): each file may hold many messages. Source = file name."""
    converter = HL7Converter(ctx)
    out = Conversion()
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            reason = f"cannot read the file: {exc.strerror or type(exc).__name__}"
            out.accounts.append(converter.account(path.name, 0, "rejected", reason=reason))
            continue
        out.extend(converter.data(data, path.name))
    out.resources = newest_versions(out.resources)
    return out


def convert_message(raw: bytes, ctx: ConvertContext, source: str, index: int) -> Conversion:
    """Convert one message as received (e.g. an MLLP payload): framing, BOM and line endings tolerated."""
    converter = HL7Converter(ctx)
    parts = split_messages(raw)
    if len(parts) != 1:
        reason = "no HL7 message in the input" if not parts else f"expected one message, found {len(parts)}"
        header = None
        try:
            header = parse_header(parts[0]) if parts else None
        except MalformedMessage:
            header = None
        return Conversion([], [converter.account(source, index, "rejected", header, reason)])
    return converter.message(parts[0], source, index)
