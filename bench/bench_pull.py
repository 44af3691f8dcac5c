"""Pull of the study's data from the FHIR server: search paging vs Bulk `$export`, same run, per cohort size.

    python bench/bench_pull.py [--subjects 60 5000] [--fhir-url URL] [--state-dir DIR] [--db mem|PATH]
                               [--page-size N]

Without --fhir-url the local HAPI server is started (port --port, database --db: in memory by default,
which ingests several times faster than H2 on file; give a path to keep the data for another run) and
stopped at the end; Java options from ADAPTER_FHIR_SERVER_JAVA_OPTS (5,000 subjects need -Xmx3g).
Per size: a study of its own (key BENCH<n>, from a copy of mappings/), n subjects with the trial's data
shape, about 48 resources each: Patient, ResearchSubject, infusion/harvest Procedures and body weight
(the enroll mapping), 4 visits x (DiagnosticReport, 6 lab Observations, HOMA-IR and HOMA-B derived
from glucose and insulin, one Provenance per lab message), 3 MedicationStatements, 1 AdverseEvent.
They are pushed once (skipped when the server already holds them); then each pull runs in a fresh
interpreter so its peak RSS (ru_maxrss) is its own, and the two output folders are compared.
Prints one JSON line per size and mode. Values are synthetic; codes come from mappings/study.yaml.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapter import fhir_server  # noqa: E402
from adapter.fhir.client import FhirClient  # noqa: E402
from adapter.fhir.retry import RetryPolicy  # noqa: E402
from adapter.ids import patient_id, reference, stable_id  # noqa: E402
from adapter.mapping.study import study_id  # noqa: E402
from adapter.mapping.subjects import roster_conversion  # noqa: E402
from adapter.model import Resource  # noqa: E402
from adapter.push import dependency_order  # noqa: E402
from adapter.roster import Subject, parse_roster  # noqa: E402
from adapter.study import StudyConfig, default_mappings_dir, load_study  # noqa: E402

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
# Plausible ranges for the synthetic values (trial eligibility: HbA1c 8-11 %, glucose > 7 mmol/L).
RANGES = {"CPEP": (0.7, 3.0), "GLUC": (7.2, 13.0), "HBA1C": (8.0, 11.0), "INS": (4.0, 25.0), "TNFA": (4, 20)}
RANGES |= {"IL1B": (0.5, 8.0)}
DRUGS = ("metformin", "gliclazide", "insulin glargine")

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[6])
from pathlib import Path
from adapter.fhir.client import FhirClient
from adapter.pull import pull_bulk, pull_search
from adapter.study import load_study
mode, mappings, out, url = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
page = int(sys.argv[5])
study = load_study(mappings / "study.yaml")
client = FhirClient(url, page_size=page, timeout=300)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
if mode == "search":
    result = pull_search(client, study, out)
else:
    result = pull_bulk(client, study, out, poll_cap=2.0)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": round(seconds, 1), "rss_before_mb": round(before / 1024, 1),
                  "rss_peak_mb": round(peak / 1024, 1), "requests": result.requests,
                  "resources": sum(result.files.values()), "subjects": result.subjects}))
"""


# -- the data ----------------------------------------------------------------------------------------
def bench_mappings(state_dir: Path, key: str) -> Path:
    """A copy of mappings/ whose study key and official identifier are `key` (ids of its own)."""
    folder = state_dir / f"mappings-{key}"
    shutil.copytree(default_mappings_dir(), folder, dirs_exist_ok=True)
    path = folder / "study.yaml"
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^(\s*key:) \S+", rf"\1 {key}", text, count=1)
    text = re.sub(r"value: [^,]+, use: official", f"value: {key}, use: official", text, count=1)
    path.write_text(text, encoding="utf-8")
    return folder


def roster_text(n: int) -> str:
    rng = random.Random(n)
    rows = ["subject_id,mrn,arm,enrolled_on,infused_on,sex,birth_date,weight_kg"]
    for i in range(1, n + 1):
        enrolled = date(2019, 6, 3) + timedelta(days=rng.randrange(0, 300))
        infused = (enrolled + timedelta(days=7)).isoformat() if i % 2 else ""
        arm = "cell-therapy" if i % 2 else "control"
        birth = date(1950 + rng.randrange(0, 40), 1 + rng.randrange(12), 1 + rng.randrange(28))
        sex, weight = rng.choice("FM"), 60 + rng.randrange(30)
        rows.append(f"B{i:05d},BM{i:07d},{arm},{enrolled},{infused},{sex},{birth},{weight}")
    return "\n".join(rows) + "\n"


def _quantity(value: float, unit: str) -> dict:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def clinical(study: StudyConfig, subject: Subject, rng: random.Random) -> list[Resource]:
    """One subject's labs (4 visits), derived HOMA values, lab messages' Provenance, meds and an AE."""
    key = study.study.key
    pref = reference("Patient", patient_id(key, subject.subject_id))
    day1 = subject.day1(study) or subject.enrolled_on
    out: list[Resource] = []
    labs = [p for p in study.parameters if p.kind == "lab"]
    derived = {p.id: p for p in study.parameters if p.kind == "derived"}
    for visit in study.visits:
        when = (day1 + timedelta(days=visit.target_day - 1)).isoformat() + "T07:30:00+07:00"
        ids: dict[str, str] = {}
        values: dict[str, float] = {}
        for param in labs:
            code = next(c for c in param.loinc if c.unit == param.unit)
            low, high = RANGES[param.id]
            values[param.id] = round(rng.uniform(low, high), 2)
            ids[param.id] = stable_id("obs", key, subject.subject_id, visit.id, param.id)
            out.append(
                {
                    "resourceType": "Observation",
                    "id": ids[param.id],
                    "status": "final",
                    "category": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                    "code": "laboratory",
                                }
                            ]
                        }
                    ],
                    "code": {"coding": [{"system": LOINC, "code": code.code, "display": code.display}]},
                    "subject": pref,
                    "effectiveDateTime": when,
                    "valueQuantity": _quantity(values[param.id], param.unit),
                }
            )
        glucose, insulin = values["GLUC"], values["INS"]
        for pid, value in (("HOMAIR", glucose * insulin / 22.5), ("HOMAB", 20 * insulin / (glucose - 3.5))):
            param = derived[pid]
            coding = (
                {"system": LOINC, "code": param.loinc[0].code} if param.loinc else param.code.as_fhir()  # type: ignore[union-attr]
            )
            out.append(
                {
                    "resourceType": "Observation",
                    "id": stable_id("obs", key, subject.subject_id, visit.id, pid),
                    "status": "final",
                    "code": {"coding": [coding]},
                    "subject": pref,
                    "effectiveDateTime": when,
                    "valueQuantity": _quantity(round(value, 2), param.unit),
                    "derivedFrom": [
                        reference("Observation", ids["GLUC"]),
                        reference("Observation", ids["INS"]),
                    ],
                }
            )
        report = stable_id("dr", key, subject.subject_id, visit.id)
        out.append(
            {
                "resourceType": "DiagnosticReport",
                "id": report,
                "status": "final",
                "code": {"text": "trial laboratory panel"},
                "subject": pref,
                "effectiveDateTime": when,
                "result": [reference("Observation", i) for i in ids.values()],
            }
        )
        out.append(
            {
                "resourceType": "Provenance",
                "id": stable_id("prov", key, subject.subject_id, visit.id),
                "target": [reference("DiagnosticReport", report)]
                + [reference("Observation", i) for i in ids.values()],
                "recorded": when,
                "agent": [{"who": {"display": "adapter"}}],
            }
        )
    for n, drug in enumerate(DRUGS):
        out.append(
            {
                "resourceType": "MedicationStatement",
                "id": stable_id("ms", key, subject.subject_id, n),
                "status": "active",
                "medicationCodeableConcept": {"text": drug},
                "subject": pref,
                "effectivePeriod": {"start": (day1 - timedelta(days=400)).isoformat()},
            }
        )
    out.append(
        {
            "resourceType": "AdverseEvent",
            "id": stable_id("ae", key, subject.subject_id),
            "actuality": "actual",
            "subject": pref,
            "event": {"text": "headache"},
            "date": (day1 + timedelta(days=rng.randrange(1, 150))).isoformat(),
        }
    )
    return out


def dataset(study: StudyConfig, n: int) -> list[Resource]:
    roster = parse_roster(roster_text(n), study, "bench-roster.csv")
    resources = roster_conversion(roster, study).resources
    rng = random.Random(f"bench-{n}")
    for subject in roster:
        resources.extend(clinical(study, subject, rng))
    return resources


def validate_sample(resources: list[Resource]) -> None:
    """Every resource type of the first subject validates as R4(B)."""
    from fhir.resources.R4B import get_fhir_model_class

    seen: set[str] = set()
    for resource in resources:
        if resource["resourceType"] not in seen:
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)
            seen.add(resource["resourceType"])


# -- the run -----------------------------------------------------------------------------------------
def ensure_pushed(client: FhirClient, study: StudyConfig, resources: list[Resource], n: int) -> dict:
    subjects = client.count("ResearchSubject", {"study": f"ResearchStudy/{study_id(study)}"})
    observations = sum(1 for r in resources if r["resourceType"] == "Observation")
    last = f"Patient/{patient_id(study.study.key, f'B{n:05d}')}"
    present = client.count("Observation", {"subject": last})  # the last subject's data: the push finished
    if subjects == n and present:
        return {"pushed": 0, "push_seconds": 0.0, "note": "already on the server"}
    started = time.perf_counter()
    result = client.transaction(dependency_order(resources), chunk_size=500)
    seconds = time.perf_counter() - started
    return {
        "pushed": len(resources),
        "observations": observations,
        "push_seconds": round(seconds, 1),
        "push_per_second": round(len(resources) / seconds, 1),
        "created": result.created,
    }


def run_child(mode: str, mappings: Path, out: Path, url: str, page: int) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(mappings), str(out), url, str(page), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{mode} pull failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def same_files(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.glob("*.ndjson"))
    return names == sorted(p.name for p in b.glob("*.ndjson")) and all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in names
    )


def bench_size(url: str, state_dir: Path, n: int, page: int) -> list[dict]:
    key = f"BENCH{n}"
    mappings = bench_mappings(state_dir, key)
    study = load_study(mappings / "study.yaml")
    resources = dataset(study, n)
    validate_sample(resources)
    client = FhirClient(url, timeout=600, retry=RetryPolicy(budget_seconds=600))
    client.require("transaction", "export")
    push = ensure_pushed(client, study, resources, n)
    rows = []
    outs = {}
    for mode in ("search", "bulk"):
        outs[mode] = state_dir / f"out-{key}-{mode}"
        figures = run_child(mode, mappings, outs[mode], url, page)
        rows.append({"subjects": n, "mode": mode, "page_size": page, **figures})
    identical = same_files(outs["search"], outs["bulk"])
    for row in rows:
        row["outputs_identical"] = identical
        row["expected_resources"] = len(resources)
    rows[0]["push"] = push
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, nargs="+", default=[60, 5000])
    parser.add_argument("--fhir-url", help="a running server (default: start the local HAPI server)")
    parser.add_argument("--state-dir", type=Path, default=Path("/tmp/adapter-bench-pull"))
    parser.add_argument("--port", type=int, default=18181)
    parser.add_argument(
        "--db", default=fhir_server.MEMORY_DB, help="server database: mem (default) or a path"
    )
    parser.add_argument("--page-size", type=int, default=1000, help="_count of search pages")
    args = parser.parse_args()
    args.state_dir.mkdir(parents=True, exist_ok=True)
    url = args.fhir_url
    started_here = False
    if not url:
        url = fhir_server.start(args.state_dir, port=args.port, db=args.db, timeout=900)
        started_here = True
    try:
        for n in args.subjects:
            for row in bench_size(url, args.state_dir, n, args.page_size):
                row["load_average"] = round(os.getloadavg()[0], 1)
                print(json.dumps(row), flush=True)
    finally:
        if started_here:
            fhir_server.stop(args.state_dir)


if __name__ == "__main__":
    main()
