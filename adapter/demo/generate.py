"""Orchestration: draw the facts once, render every output, and write manifest.json.

Deterministic: every random draw comes from a `random.Random` seeded with the run's seed and a label
(per subject where possible), no wall clock and no global state, so the same seed and arguments give a
byte-identical tree. Writers run in a fixed order; `WRITERS` is the hook for further formats (BHYT XML):
a writer takes (TrialFacts, output folder, Context) and returns its manifest section.
"""

from __future__ import annotations

import csv
import gc
import io
import json
import random
from collections import Counter
from collections.abc import Callable
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from adapter.demo.ae import bad_date, draw_adverse_events, write_ae_csv
from adapter.demo.bhyt import write_bhyt
from adapter.demo.cohort import draw_cohort, draw_mrns
from adapter.demo.facts import TrialFacts
from adapter.demo.feed import stranger_messages, write_feed
from adapter.demo.hl7text import Clock, Message, write_text
from adapter.demo.labs import draw_labs
from adapter.demo.meds import (
    draw_meds,
    meds_rows,
    pharmacy_messages,
    unknown_drug_course,
    write_meds_csv,
    write_pharmacy,
)
from adapter.demo.names import fold
from adapter.demo.oru import Renderer, Spec, assign_ids, sort_specs, study_specs, write_lab_files
from adapter.demo.params import DemoParams
from adapter.roster import COLUMNS as ROSTER_COLUMNS
from adapter.study import StudyConfig

# Everything `generate` writes at the top of the output folder (and removes first with overwrite=True).
OUTPUTS = ("roster.csv", "hl7", "meds.csv", "pharmacy", "ae.csv", "feed", "bhyt", "manifest.json")
UNREADABLE = "Tán huyết"  # "haemolysed", typed into the result field instead of a number
UNKNOWN_UNIT = "mmo/L"  # a typo no unit table knows

Progress = Callable[[str], None]


@dataclass
class Context:
    """What writers share: the clock, the renderer, the fault list, the manifest under construction."""

    clock: Clock
    renderer: Renderer
    faults: list[dict[str, Any]] = field(default_factory=list)
    lab_messages: list[Message] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)


Writer = Callable[[TrialFacts, Path, Context], dict[str, Any]]


def draw_facts(study: StudyConfig, params: DemoParams, subjects: int, seed: int) -> TrialFacts:
    """The whole synthetic trial as plain facts (no files)."""
    mrns = draw_mrns(random.Random(f"{seed}:mrn"), subjects)
    cohort = draw_cohort(study, params, subjects, seed, mrns)
    facts = TrialFacts(study, params, seed, cohort)
    facts.labs = draw_labs(study, params, cohort, seed)
    facts.meds = draw_meds(study, params, cohort, facts.labs, seed)
    last_day = max(v.target_day for v in study.visits) + 7
    facts.adverse_events = draw_adverse_events(params, cohort, last_day, seed)
    _add_fact_faults(facts)
    return facts


def _add_fact_faults(facts: TrialFacts) -> None:
    """Faults that live in the facts themselves: an unknown drug, an AE with an impossible date."""
    count = facts.params.fault_count(len(facts.subjects))
    rng = random.Random(f"{facts.seed}:faults")
    if not count or not facts.subjects:
        return
    for subject in rng.sample(facts.subjects, min(count, len(facts.subjects))):
        facts.meds.append(unknown_drug_course(rng, subject))
    candidates = [e for e in facts.adverse_events if e.onset.day > 12 and e.outcome != "fatal"]
    for event in rng.sample(candidates, min(count, len(candidates))):
        event.fault = "bad-date"
        event.onset_text = bad_date(event.onset)


def _lab_faults(specs: list[Spec], count: int, seed: int) -> list[Spec]:
    """Faulty copies of ordinary chemistry messages, sent shortly before the good one (a resend fixes
    each), so the facts stay whole while the converter must reject or flag the copy."""
    rng = random.Random(f"{seed}:lab-faults")
    eligible = [
        s
        for s in specs
        if s.groups[0].panel == "CHEM"
        and s.groups[0].status == "F"
        and not any(o.raw_value for o in s.groups[0].obx)
        and len(s.groups[0].obx) == 3
    ]
    kinds = ("hl7-truncated", "hl7-unreadable-value", "hl7-unknown-unit")
    chosen = rng.sample(eligible, min(len(eligible), count * len(kinds)))
    faulty: list[Spec] = []
    for index, original in enumerate(chosen):
        kind = kinds[index % len(kinds)]
        spec = deepcopy(original)
        spec.sent_at = original.sent_at - timedelta(minutes=rng.randint(20, 90))
        spec.tags = [*spec.tags, f"fault:{kind}"]
        chem = spec.groups[0]
        if kind == "hl7-truncated":
            spec.partial = True
            spec.fault = {
                "kind": kind,
                "expect": "rejected-or-flagged",
                "reason": "message cut off inside its last OBX (no value, no status, no segment end)",
            }
        elif kind == "hl7-unreadable-value":
            obx = next(o for o in chem.obx if o.param == "INS")
            obx.raw_value = fold(UNREADABLE) if spec.style.ascii else UNREADABLE
            spec.fault = {
                "kind": kind,
                "expect": "rejected-or-flagged",
                "obx": chem.obx.index(obx) + 1,
                "reason": "NM result that is not a number",
            }
        else:
            obx = next(o for o in chem.obx if o.param == "GLUC")
            obx.raw_unit = UNKNOWN_UNIT
            spec.fault = {
                "kind": kind,
                "expect": "rejected-or-flagged",
                "obx": chem.obx.index(obx) + 1,
                "reason": f"unit {UNKNOWN_UNIT!r} is not a known unit",
            }
        faulty.append(spec)
    return faulty


def write_roster(facts: TrialFacts, out: Path, ctx: Context) -> dict[str, Any]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(ROSTER_COLUMNS)
    for s in facts.subjects:
        writer.writerow(
            [
                s.subject_id,
                s.mrn,
                s.arm,
                s.enrolled_on.isoformat(),
                s.infused_on.isoformat() if s.infused_on else "",
                s.sex,
                s.birth_date.isoformat(),
                f"{s.weight_kg:.1f}",
            ]
        )
    write_text(out / "roster.csv", buffer.getvalue())
    return {"rows": len(facts.subjects)}


def write_hl7(facts: TrialFacts, out: Path, ctx: Context) -> dict[str, Any]:
    quirks = facts.params.quirks
    specs = study_specs(facts.subjects, facts.labs, quirks, facts.seed)
    specs = sort_specs(
        [*specs, *_lab_faults(specs, facts.params.fault_count(len(facts.subjects)), facts.seed)]
    )
    messages = assign_ids(specs, ctx.renderer)
    for spec, message in zip(specs, messages, strict=True):
        message.fault = spec.fault
    files = write_lab_files(out, "hl7", messages, ctx.clock, quirks, facts.seed)
    where = {cid: f.path for f in files for cid in f.messages}
    for message in messages:
        if message.fault:
            entry = {"input": "hl7", "file": where[message.control_id], "control_id": message.control_id}
            entry.update(message.fault)
            entry["subject_id"] = message.subject_id
            ctx.faults.append(entry)
    ctx.lab_messages = messages
    tags = Counter(tag for m in messages for tag in m.tags)
    return {
        "files": len(files),
        "messages": len(messages),
        "results": sum(seg.startswith("OBX") for m in messages for seg in m.segments),
        "layouts": dict(sorted(Counter(f.layout for f in files).items())),
        "segment_ends": dict(sorted(Counter(repr(f.eol)[1:-1] for f in files).items())),
        "quirks": dict(sorted(tags.items())),
    }


def write_meds(facts: TrialFacts, out: Path, ctx: Context) -> dict[str, Any]:
    mrn_of = {s.subject_id: s.mrn for s in facts.subjects}
    lines = write_meds_csv(out / "meds.csv", meds_rows(facts.meds, mrn_of))
    for line, course in lines.items():
        if course.fault:
            ctx.faults.append(
                {
                    "input": "meds",
                    "file": "meds.csv",
                    "line": line,
                    "kind": f"meds-{course.fault}",
                    "expect": "rejected",
                    "reason": "drug name in no drug map, no code",
                    "subject_id": course.subject_id,
                }
            )
    coded = Counter(c.code_system or "none" for c in facts.meds)
    return {
        "rows": len(lines),
        "insulin_rows": sum(c.insulin for c in facts.meds),
        "codes": dict(sorted(coded.items())),
    }


def write_pharmacy_messages(facts: TrialFacts, out: Path, ctx: Context) -> dict[str, Any]:
    messages = pharmacy_messages(facts.meds, facts.by_id, ctx.clock, facts.seed)
    where = write_pharmacy(out, "pharmacy", messages)
    for m in messages:
        if m.fault:
            ctx.faults.append(
                {
                    "input": "pharmacy",
                    "file": where[m.control_id],
                    "control_id": m.control_id,
                    "kind": m.fault["kind"],
                    "expect": "rejected",
                    "reason": "drug name in no drug map, no code",
                    "subject_id": m.subject_id,
                }
            )
    types = Counter(m.message_type for m in messages)
    return {"files": len(set(where.values())), "messages": dict(sorted(types.items()))}


def write_ae(facts: TrialFacts, out: Path, ctx: Context) -> dict[str, Any]:
    lines = write_ae_csv(out / "ae.csv", facts.adverse_events)
    for line, event in lines.items():
        if event.fault:
            ctx.faults.append(
                {
                    "input": "ae",
                    "file": "ae.csv",
                    "line": line,
                    "kind": f"ae-{event.fault}",
                    "expect": "rejected",
                    "reason": "onset is not a calendar date",
                    "subject_id": event.subject_id,
                }
            )
    return {"rows": len(lines), "serious": sum(e.serious for e in facts.adverse_events)}


def feed_writer(hospital_feed: int) -> Writer:
    def write(facts: TrialFacts, out: Path, ctx: Context) -> dict[str, Any]:
        if hospital_feed <= 0:
            return {"messages": 0}
        pool = draw_mrns(random.Random(f"{facts.seed}:mrn"), len(facts.subjects) + max(1, hospital_feed // 3))
        strangers = pool[len(facts.subjects) :]
        start = date.fromisoformat(facts.params.first_enrollment) - timedelta(days=28)
        others = stranger_messages(
            hospital_feed, strangers, start, facts.end_date, ctx.renderer, facts.params.quirks, facts.seed
        )
        where = write_feed(out, "feed", ctx.lab_messages, others)
        for entry in ctx.faults:
            if entry["input"] == "hl7":
                entry["feed_file"] = where[entry["control_id"]]
        return {
            "files": len(set(where.values())),
            "messages": len(where),
            "study_messages": len(ctx.lab_messages),
            "stranger_messages": len(others),
            "stranger_patients": len(strangers),
        }

    return write


WRITERS: list[tuple[str, Writer]] = [
    ("roster.csv", write_roster),
    ("hl7", write_hl7),
    ("meds.csv", write_meds),
    ("pharmacy", write_pharmacy_messages),
    ("ae.csv", write_ae),
    ("bhyt", write_bhyt),
]


def generate(
    study: StudyConfig,
    params: DemoParams,
    subjects: int,
    seed: int,
    out: Path,
    hospital_feed: int = 0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Generate the whole demo into `out`; return the manifest (also written to out/manifest.json)."""
    collecting = gc.isenabled()
    gc.disable()  # millions of small objects and no cycles: the collector would only rescan them
    try:
        return _generate(study, params, subjects, seed, out, hospital_feed, progress)
    finally:
        if collecting:
            gc.enable()


def _generate(
    study: StudyConfig,
    params: DemoParams,
    subjects: int,
    seed: int,
    out: Path,
    hospital_feed: int,
    progress: Progress | None,
) -> dict[str, Any]:
    say = progress or (lambda _step: None)
    say("drawing the cohort, labs, medications and adverse events")
    facts = draw_facts(study, params, subjects, seed)
    ctx = Context(Clock(study.tz), Renderer(study, Clock(study.tz)))
    out.mkdir(parents=True, exist_ok=True)
    outputs: dict[str, Any] = {}
    for name, writer in [*WRITERS, ("feed", feed_writer(hospital_feed))]:
        say(f"writing {name}")
        outputs[name] = writer(facts, out, ctx)
    manifest = _manifest(facts, subjects, seed, hospital_feed, outputs, ctx)
    write_text(out / "manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
    return manifest


def _manifest(
    facts: TrialFacts, subjects: int, seed: int, hospital_feed: int, outputs: dict[str, Any], ctx: Context
) -> dict[str, Any]:
    arms = Counter(s.arm for s in facts.subjects)
    scheduled = [v.id for v in sorted(facts.study.visits, key=lambda v: v.target_day)]
    attended = Counter((d.subject_id, d.visit) for d in facts.labs)
    missed = sum(1 for s in facts.subjects for v in scheduled if (s.subject_id, v) not in attended)
    faults = sorted(
        ctx.faults, key=lambda f: (f["input"], f["file"], f.get("line", 0), f.get("control_id", ""))
    )
    for number, fault in enumerate(faults, start=1):
        fault["id"] = f"F{number}"
    return {
        "generator": "adapter demo generate",
        "format": 1,
        "study": facts.study.study.key,
        "seed": seed,
        "subjects": subjects,
        "hospital_feed": hospital_feed,
        "scenario": facts.params.scenario,
        "arms": {a.id: arms.get(a.id, 0) for a in facts.study.arms},
        "conduct": {
            "first_enrollment": min((s.enrolled_on for s in facts.subjects), default=date.min).isoformat(),
            "last_follow_up": facts.end_date.isoformat(),
            "draws": len(facts.labs),
            "off_window_draws": sum(not d.in_window for d in facts.labs),
            "visits_without_draw": missed,
            "dropouts": sum(s.dropout_day is not None for s in facts.subjects),
            "insulin_users": sum(s.insulin_user for s in facts.subjects),
            "adverse_events": len(facts.adverse_events),
        },
        "outputs": outputs,
        "faults": faults,
        "fault_expectations": {
            "rejected": "the converter must reject this message or row",
            "rejected-or-flagged": "rejected, or accounted with a reason on its segment (value kept as sent)",
        },
        "params": facts.params.model_dump(mode="json"),
    }
