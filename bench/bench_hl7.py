"""Benchmark of HL7 v2 lab ingestion: our converter vs a full hl7apy parse, in the same run.

    python bench/bench_hl7.py                      # 100,000 messages, 1% for enrolled subjects
    python bench/bench_hl7.py --messages 20000 --baseline 500 --json

The feed is generated here, deterministically (fixed seed): ORU^R01 messages of a hospital LIS, each
with 6 results; 1% belong to the 60 enrolled subjects and carry the 6 study parameters, the rest are
strangers' routine panels. Rates are per core: CPU time of this process (`time.process_time`), so
other load on the machine inflates them less than wall time would; wall time is printed too.

Measured:
- mixed feed: `adapter.hl7.convert.convert_files` on the whole feed file (framing, routing, accounts,
  full conversion of the study messages);
- study messages only: each of the feed's study messages fully converted (6 Observations, a
  DiagnosticReport and a Provenance each);
- baseline: `hl7apy.parser.parse_message` (TOLERANT, find_groups=True) on a sample of the feed;
- for the parser choice: hl7apy without groups, python-hl7 (`hl7.parse`) and our tokenizer
  (`adapter.hl7.parse_message`) on the same sample.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapter.converters import ConvertContext
from adapter.hl7 import parse_message, split_messages
from adapter.hl7.convert import HL7Converter, convert_files
from adapter.roster import parse_roster
from adapter.study import default_mappings_dir, load_study

SUBJECTS = 60
STUDY_TESTS = (
    ("GLU-F^Glucose máu lúc đói^L", "mmol/L", "3.9-6.1", (5.0, 14.0)),
    ("INS-F^Insulin lúc đói^L", "uIU/mL", "2.6-24.9", (2.0, 40.0)),
    ("CPEP^C-peptide^L", "ng/mL", "1.1-4.4", (0.5, 5.0)),
    ("HBA1C^HbA1c^L", "%", "4.0-6.0", (6.0, 12.0)),
    ("TNFA^TNF-alpha^L", "pg/mL", "<8.1", (2.0, 20.0)),
    ("IL1B^IL-1 beta^L", "pg/mL", "<5.0", (0.5, 9.0)),
)
ROUTINE_TESTS = (
    ("WBC^Bạch cầu^L", "G/L", "4-10", (3.0, 15.0)),
    ("HGB^Huyết sắc tố^L", "g/L", "120-160", (90.0, 170.0)),
    ("PLT^Tiểu cầu^L", "G/L", "150-400", (100.0, 450.0)),
    ("CREA^Creatinin^L", "umol/L", "62-106", (50.0, 150.0)),
    ("ALT^ALT (GPT)^L", "U/L", "<40", (10.0, 90.0)),
    ("GLU^Glucose^L", "mmol/L", "3.9-6.1", (4.0, 12.0)),
    ("NA^Natri^L", "mmol/L", "135-145", (130.0, 150.0)),
    ("K^Kali^L", "mmol/L", "3.5-5.0", (3.0, 5.5)),
)
FAMILY = ("NGUYỄN", "TRẦN", "LÊ", "PHẠM", "HOÀNG", "VÕ", "ĐẶNG", "BÙI")
GIVEN = ("VĂN AN", "THỊ HOA", "MINH ĐỨC", "THỊ LAN", "QUANG HUY", "NGỌC ANH")


def roster_csv() -> str:
    lines = ["subject_id,mrn,arm,enrolled_on,infused_on,sex,birth_date,weight_kg"]
    for n in range(1, SUBJECTS + 1):
        enrolled = date(2019, 6, 1) + timedelta(days=n)
        arm = "cell-therapy" if n % 2 else "control"
        infused = (enrolled + timedelta(days=7)).isoformat() if arm == "cell-therapy" else ""
        lines.append(f"S{n:03d},BN{20190000 + n},{arm},{enrolled},{infused},{'MF'[n % 2]},1965-01-01,65")
    return "\n".join(lines) + "\n"


def generate_feed(count: int, study_share: float, seed: int = 20190605) -> tuple[bytes, int]:
    """A hospital LIS feed: `count` ORU^R01 messages, `study_share` of them for enrolled subjects."""
    rnd = random.Random(seed)
    start = time.mktime((2019, 6, 5, 6, 0, 0, 0, 0, 0))
    parts: list[str] = []
    study_count = 0
    for n in range(count):
        study = rnd.random() < study_share
        study_count += study
        mrn = (
            f"BN{20190001 + rnd.randrange(SUBJECTS)}" if study else f"BN{30000000 + rnd.randrange(5_000_000)}"
        )
        ts = time.strftime("%Y%m%d%H%M%S", time.localtime(start + n * 3))
        filler = f"F{n:09d}"
        tests = STUDY_TESTS if study else rnd.sample(ROUTINE_TESTS, 6)
        name = f"{rnd.choice(FAMILY)}^{rnd.choice(GIVEN)}"
        segments = [
            f"MSH|^~\\&|LIS|VANHANH|ADAPTER|TRIAL|{ts}||ORU^R01^ORU_R01|M{n:09d}|P|2.5.1|||AL|NE|VN|"
            "UNICODE UTF-8",
            f"PID|1||{mrn}^^^VANHANH^MR||{name}||19650302|{rnd.choice('MF')}|||"
            "12 Lê Lợi^^Quận 1^Hồ Chí Minh^^VN",
            "PV1|1|O|KHAMNOI^^^VANHANH||||BS001^Võ^Thành",
            f"ORC|RE|P{n:09d}|{filler}^LIS||CM",
            f"OBR|1|P{n:09d}|{filler}^LIS|XN^Xét nghiệm^L|||{ts}|||||||||BS001^Võ^Thành||||||{ts}|||F",
        ]
        for i, (code, unit, ref, (low, high)) in enumerate(tests, 1):
            value = f"{rnd.uniform(low, high):.1f}"
            segments.append(f"OBX|{i}|NM|{code}||{value}|{unit}|{ref}|N|||F|||{ts}")
        parts.append("\r".join(segments) + "\r")
    return "".join(parts).encode("utf-8"), study_count


def rate(fn: Callable[[], int]) -> tuple[float, float, int]:
    """(messages per CPU second, messages per wall second, messages) of one call of fn."""
    wall, cpu = time.perf_counter(), time.process_time()
    n = fn()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return n / max(cpu, 1e-9), n / max(wall, 1e-9), n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000, help="messages in the mixed feed")
    parser.add_argument(
        "--study-share", type=float, default=0.01, help="share of messages for enrolled subjects"
    )
    parser.add_argument("--baseline", type=int, default=1000, help="messages parsed by each baseline parser")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    study = load_study(default_mappings_dir() / "study.yaml")
    ctx = ConvertContext(study, parse_roster(roster_csv(), study, "bench"), default_mappings_dir())
    feed, study_count = generate_feed(args.messages, args.study_share)
    messages = split_messages(feed)
    study_messages = [m for m in messages if b"|GLU-F^" in m]
    sample = messages[: args.baseline]
    results: dict[str, object] = {
        "messages": len(messages),
        "study_messages": study_count,
        "feed_bytes": len(feed),
    }

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "feed.hl7"
        path.write_bytes(feed)
        outcome: dict[str, int] = {}

        def mixed() -> int:
            conversion = convert_files([path], ctx)
            outcome.update(conversion.counts())
            outcome["resources"] = len(conversion.resources)
            return len(conversion.accounts)

        convert_files([path], ctx) if len(messages) <= 2000 else None  # warm-up for tiny runs
        cpu_rate, wall_rate, _ = rate(mixed)
        results["mixed_per_cpu_s"] = round(cpu_rate)
        results["mixed_per_wall_s"] = round(wall_rate)
        results["mixed_outcomes"] = outcome

    converter = HL7Converter(ctx)

    def study_only() -> int:
        for raw in study_messages:
            out = converter.message(raw, "bench", 1)
            assert out.accounts[0].outcome == "converted" and len(out.resources) == 8
        return len(study_messages)

    cpu_rate, wall_rate, _ = rate(study_only)
    results["study_per_cpu_s"] = round(cpu_rate)
    results["study_ms_per_message"] = round(1000 / cpu_rate, 3)

    def parse_with(fn: Callable[[bytes], object]) -> Callable[[], int]:
        def run() -> int:
            for raw in sample:
                fn(raw)
            return len(sample)

        return run

    import hl7 as python_hl7
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.parser import parse_message as hl7apy_parse

    tolerant = VALIDATION_LEVEL.TOLERANT
    baselines = {
        "hl7apy_full_per_cpu_s": lambda raw: hl7apy_parse(raw.decode(), validation_level=tolerant),
        "hl7apy_no_groups_per_cpu_s": lambda raw: hl7apy_parse(
            raw.decode(), validation_level=tolerant, find_groups=False
        ),
        "python_hl7_per_cpu_s": lambda raw: python_hl7.parse(raw.decode()),
        "our_tokenizer_per_cpu_s": parse_message,
    }
    for key, fn in baselines.items():
        results[key] = round(rate(parse_with(fn))[0])
    results["ratio_mixed_vs_hl7apy"] = round(results["mixed_per_cpu_s"] / results["hl7apy_full_per_cpu_s"], 1)  # type: ignore[operator]
    results["targets_met"] = {
        "mixed >= 20000/s": results["mixed_per_cpu_s"] >= 20_000,  # type: ignore[operator]
        "mixed >= 50x hl7apy": results["ratio_mixed_vs_hl7apy"] >= 50,  # type: ignore[operator]
        "study >= 500/s": results["study_per_cpu_s"] >= 500,  # type: ignore[operator]
    }

    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"feed: {results['messages']} ORU^R01 messages ({results['study_messages']} for enrolled subjects), "
        f"{len(feed) / 1e6:.1f} MB"
    )
    print(
        f"adapter convert, mixed feed:   {results['mixed_per_cpu_s']:>9,} msg/s per core "
        f"({results['mixed_per_wall_s']:,} msg/s wall)  outcomes {results['mixed_outcomes']}"
    )
    print(
        f"adapter, study messages only:  {results['study_per_cpu_s']:>9,} msg/s per core "
        f"({results['study_ms_per_message']} ms each, 6 results -> 8 resources)"
    )
    print(f"hl7apy full parse (baseline):  {results['hl7apy_full_per_cpu_s']:>9,} msg/s per core")
    print(f"  hl7apy find_groups=False:    {results['hl7apy_no_groups_per_cpu_s']:>9,} msg/s per core")
    print(f"  python-hl7 parse:            {results['python_hl7_per_cpu_s']:>9,} msg/s per core")
    print(f"  our tokenizer (full parse):  {results['our_tokenizer_per_cpu_s']:>9,} msg/s per core")
    print(f"ratio mixed feed / hl7apy:     {results['ratio_mixed_vs_hl7apy']}x")
    for target, met in results["targets_met"].items():  # type: ignore[union-attr]
        print(f"  {'met' if met else 'MISSED'}: {target}")


if __name__ == "__main__":
    main()
