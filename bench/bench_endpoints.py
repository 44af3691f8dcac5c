"""Benchmark `adapter endpoints`: seconds and peak memory for 60 and 5,000 subjects (~200,000 Observations).

    python bench/bench_endpoints.py                      # NDJSON folder, 60 and 5000 subjects
    python bench/bench_endpoints.py --sizes 60 --server http://127.0.0.1:8080/fhir   # also from a server
    python bench/bench_endpoints.py --sizes 60 5000 --start-server   # start our local HAPI (in memory) for it

The data are generated here, deterministically (seeded), in the layout `adapter convert` writes: per subject
~40 lab and weight Observations (6 labs at 4 visits, retests, unscheduled values, mixed units, some
comparators), 3 MedicationStatements, 0-2 AdverseEvents. Each run is a separate `adapter endpoints`
process; its wall time and peak RSS (getrusage of that child) are reported. Targets: 60 subjects < 5 s;
5,000 subjects < 2 min and < 1 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from adapter.ids import patient_id, research_subject_id, stable_id  # noqa: E402

KEY = "NCT03943940"
BASE = "https://vanhanh.example.org/fhir"
UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
ATC = "http://www.whocc.no/atc"
CAUSALITY = "http://terminology.hl7.org/CodeSystem/adverse-event-causality-assess"
LABS = [  # param, (loinc, ucum, lab unit, typical value in that unit, sd)
    ("GLUC", ("14771-0", "mmol/L", "mmol/L", 9.5, 1.5), ("1558-6", "mg/dL", "mg/dl", 171.0, 27.0)),
    ("INS", ("20448-7", "u[IU]/mL", "uIU/mL", 12.0, 4.0), ("14796-7", "pmol/L", "pmol/L", 72.0, 24.0)),
    ("CPEP", ("1986-9", "ng/mL", "ng/ml", 1.8, 0.5), ("14633-2", "pmol/L", "pmol/L", 596.0, 165.0)),
    ("HBA1C", ("4548-4", "%", "%", 9.0, 1.0), ("59261-8", "mmol/mol", "mmol/mol", 75.0, 11.0)),
    ("TNFA", ("3074-2", "pg/mL", "pg/mL", 8.0, 3.0), None),
    ("IL1B", ("13629-1", "pg/mL", "pg/mL", 2.0, 1.0), None),
]
VISIT_DAYS = [(1, 6), (30, 5), (91, 8), (182, 10)]  # target, jitter


def _obs(oid: str, pid: str, code: tuple, value: float, when: str, comparator: str | None = None) -> dict:
    quantity = {"value": round(value, 2), "unit": code[2], "system": UCUM, "code": code[1]}
    if comparator:
        quantity["comparator"] = comparator
    return {
        "resourceType": "Observation",
        "id": oid,
        "meta": {"lastUpdated": "2024-08-01T00:00:00+07:00"},
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
        "code": {"coding": [{"system": LOINC, "code": code[0]}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": when,
        "valueQuantity": quantity,
    }


def generate(folder: Path, subjects: int, seed: int = 20240101) -> dict[str, int]:
    """Write a synthetic trial of `subjects` subjects to `folder`; return resources per type."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        t: (folder / f"{t}.ndjson").open("w", encoding="utf-8")
        for t in (
            "Patient",
            "ResearchSubject",
            "Procedure",
            "Observation",
            "MedicationStatement",
            "AdverseEvent",
        )
    }
    counts = dict.fromkeys(files, 0)

    def emit(resource: dict) -> None:
        files[resource["resourceType"]].write(json.dumps(resource, separators=(",", ":")) + "\n")
        counts[resource["resourceType"]] += 1

    study = stable_id("study", KEY)
    for n in range(1, subjects + 1):
        sid = f"S{n:05d}"
        pid = patient_id(KEY, sid)
        arm = "cell-therapy" if n % 2 else "control"
        enrolled = date(2024, 1, 1) + timedelta(days=rng.randrange(0, 120))
        day1 = enrolled + timedelta(days=7) if arm == "cell-therapy" else enrolled
        emit(
            {
                "resourceType": "Patient",
                "id": pid,
                "identifier": [{"system": f"{BASE}/subject-id", "value": sid}],
                "gender": rng.choice(["male", "female"]),
                "birthDate": str(rng.randrange(1955, 1995)),
            }
        )
        emit(
            {
                "resourceType": "ResearchSubject",
                "id": research_subject_id(KEY, sid),
                "identifier": [{"system": f"{BASE}/subject-id", "value": sid}],
                "status": "on-study",
                "period": {"start": enrolled.isoformat()},
                "study": {"reference": f"ResearchStudy/{study}"},
                "individual": {"reference": f"Patient/{pid}"},
                "assignedArm": arm,
                "actualArm": arm,
            }
        )
        if arm == "cell-therapy" and n % 97 != 0:  # a few never infused
            emit(
                {
                    "resourceType": "Procedure",
                    "id": f"proc-{sid}",
                    "status": "completed",
                    "code": {
                        "coding": [{"system": f"{BASE}/CodeSystem/procedures", "code": "cell-infusion"}]
                    },
                    "subject": {"reference": f"Patient/{pid}"},
                    "performedDateTime": f"{day1.isoformat()}T09:00:00+07:00",
                }
            )
        weight = rng.gauss(65, 10)
        for k, offset in enumerate((-3, 88)):
            emit(
                {
                    "resourceType": "Observation",
                    "id": f"wt-{sid}-{k}",
                    "status": "final",
                    "code": {"coding": [{"system": LOINC, "code": "29463-7"}]},
                    "subject": {"reference": f"Patient/{pid}"},
                    "effectiveDateTime": (day1 + timedelta(days=offset)).isoformat(),
                    "valueQuantity": {
                        "value": round(weight - k, 1),
                        "unit": "kg",
                        "system": UCUM,
                        "code": "kg",
                    },
                }
            )
        for param, main, alt in LABS:
            for v, (target, jitter) in enumerate(VISIT_DAYS):
                if rng.random() < 0.08:  # missed visit
                    continue
                samples = 2 if rng.random() < 0.5 else 1  # retests in the window
                for s in range(samples):
                    code = alt if alt and rng.random() < 0.2 else main
                    day = day1 + timedelta(
                        days=target - 1 + rng.randint(-jitter, 0 if target == 1 else jitter)
                    )
                    value = max(0.05, rng.gauss(code[3], code[4]) * (1 - 0.05 * v))
                    comparator = "<" if param == "IL1B" and value < 0.5 else None
                    when = f"{day.isoformat()}T0{7 + s}:00:00+07:00"
                    emit(
                        _obs(
                            f"obs-{sid}-{param}-{v}-{s}",
                            pid,
                            code,
                            0.5 if comparator else value,
                            when,
                            comparator,
                        )
                    )
            if rng.random() < 0.7:  # an unscheduled value between visits
                day = day1 + timedelta(days=rng.randrange(45, 70))
                emit(_obs(f"obs-{sid}-{param}-u", pid, main, rng.gauss(main[3], main[4]), day.isoformat()))
        drugs = [("A10BA02", "metformin", 850, "mg", 2), ("A10BB09", "gliclazide", 60, "mg", 1)]
        if rng.random() < 0.4:
            drugs.append(("A10AE04", "insulin glargine", rng.randrange(10, 40), "[IU]", 1))
        for k, (atc, name, dose, unit, freq) in enumerate(drugs):
            period = {"start": (enrolled - timedelta(days=400)).isoformat()}
            if k == 1 and rng.random() < 0.3:
                period["end"] = (day1 + timedelta(days=100)).isoformat()
            emit(
                {
                    "resourceType": "MedicationStatement",
                    "id": f"ms-{sid}-{k}",
                    "status": "active",
                    "medicationCodeableConcept": {
                        "coding": [{"system": ATC, "code": atc, "display": name}],
                        "text": name,
                    },
                    "subject": {"reference": f"Patient/{pid}"},
                    "effectivePeriod": period,
                    "dosage": [
                        {
                            "timing": {"repeat": {"frequency": freq, "period": 1, "periodUnit": "d"}},
                            "doseAndRate": [
                                {"doseQuantity": {"value": dose, "unit": unit, "system": UCUM, "code": unit}}
                            ],
                        }
                    ],
                }
            )
        infused = arm == "cell-therapy" and n % 97 != 0
        for k in range(rng.choice([0, 0, 1, 2])):
            assessment = {
                "coding": [{"system": CAUSALITY, "code": rng.choice(["Possible", "Unlikely", "Certain"])}]
            }
            ae = {
                "resourceType": "AdverseEvent",
                "id": f"ae-{sid}-{k}",
                # like adapter/ae: the assessment in an extension for everyone, suspectEntity when infused
                "extension": [
                    {"url": f"{BASE}/StructureDefinition/ae-causality", "valueCodeableConcept": assessment}
                ],
                "actuality": "actual",
                "event": {"text": rng.choice(["Fever", "Headache", "Hypoglycaemia", "Nausea"])},
                "subject": {"reference": f"Patient/{pid}"},
                "date": (day1 + timedelta(days=rng.randrange(-5, 180))).isoformat(),
                "severity": {"coding": [{"code": rng.choice(["mild", "mild", "moderate", "severe"])}]},
                "seriousness": {"coding": [{"code": rng.choice(["Non-serious"] * 9 + ["Serious"])}]},
            }
            if infused:
                ae["suspectEntity"] = [
                    {
                        "instance": {"reference": f"Procedure/proc-{sid}"},
                        "causality": [{"assessment": assessment}],
                    }
                ]
            emit(ae)
    for handle in files.values():
        handle.close()
    return counts


def run_endpoints(source: str, out: Path, extra: list[str] | None = None) -> tuple[float, float, int]:
    """One `adapter endpoints` process: (wall seconds, peak RSS MiB, exit code)."""
    cmd = [
        sys.executable,
        "-m",
        "adapter.cli",
        "endpoints",
        "--source",
        source,
        "--out",
        str(out),
        "--json",
        *(extra or []),
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        sys.stderr.write(proc.stderr.read().decode() if proc.stderr else "")
    return elapsed, usage.ru_maxrss / 1024, proc.returncode


def push_folder(folder: Path, base_url: str) -> float:
    """Load a generated folder into a FHIR server (transaction bundles of PUTs); return seconds."""
    from adapter.fhir.client import FhirClient
    from adapter.mapping.study import study_resources
    from adapter.ndjson import iter_resources
    from adapter.study import default_mappings_dir, load_study

    client = FhirClient(base_url, timeout=300)
    start = time.perf_counter()
    client.transaction(study_resources(load_study(default_mappings_dir() / "study.yaml")))
    for resource_type in (
        "Patient",
        "ResearchSubject",
        "Procedure",
        "Observation",
        "MedicationStatement",
        "AdverseEvent",
    ):
        batch: list[dict] = []
        for resource in iter_resources(folder, resource_type):
            batch.append(resource)
            if len(batch) == 500:
                client.transaction(batch, chunk_size=500)
                batch = []
        if batch:
            client.transaction(batch, chunk_size=500)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[60, 5000])
    parser.add_argument("--server", help="also run against this FHIR server (data are pushed to it first)")
    parser.add_argument("--start-server", action="store_true", help="start the local HAPI server (in memory)")
    parser.add_argument("--keep", type=Path, help="keep generated data and outputs in this folder")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-endpoints-"))
    if args.start_server:
        from adapter import fhir_server

        state = root / "server-state"
        args.server = fhir_server.start(state, port=_free_port(), db=fhir_server.MEMORY_DB, timeout=600)
        try:
            _run(args, root)
        finally:
            fhir_server.stop(state)
    else:
        _run(args, root)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run(args: argparse.Namespace, root: Path) -> None:
    results = []
    for size in args.sizes:
        data = root / f"data-{size}"
        counts = generate(data, size)
        seconds, rss, code = run_endpoints(str(data), root / f"out-{size}")
        row = {
            "subjects": size,
            "observations": counts["Observation"],
            "source": "folder",
            "seconds": round(seconds, 1),
            "peak_rss_mib": round(rss),
            "exit": code,
        }
        results.append(row)
        print(json.dumps(row), flush=True)
        if args.server:
            pushed = push_folder(data, args.server)
            seconds, rss, code = run_endpoints(args.server, root / f"out-{size}-server")
            same = (root / f"out-{size}" / "endpoints.csv").read_bytes() == (
                root / f"out-{size}-server" / "endpoints.csv"
            ).read_bytes()
            row = {
                "subjects": size,
                "observations": counts["Observation"],
                "source": "server",
                "push_seconds": round(pushed, 1),
                "seconds": round(seconds, 1),
                "peak_rss_mib": round(rss),
                "exit": code,
                "same_endpoints_csv": same,
            }
            results.append(row)
            print(json.dumps(row), flush=True)
    print(f"outputs in {root}")


if __name__ == "__main__":
    main()
