"""Peak memory and time of the BHYT importer on generated files of a given size (default 100 MB).

    python bench/bench_bhyt.py [--mb 100] [--shape many|one-table|stranger] [--keep DIR]

Shapes:
  many       ~100 KB encounters, every 10th one enrolled (a month of a hospital's outpatient claims)
  one-table  one enrolled encounter whose XML2 alone is the whole file (the worst case for memory)
  stranger   the same, for a patient who is not enrolled (the table must not even be decoded)

The file is written in constant memory by adapter.bhyt.writer; the conversion runs in a fresh
interpreter so its peak RSS (ru_maxrss) is not the generator's. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapter.bhyt.writer import Table, write_envelope  # noqa: E402

ROSTER = "subject_id,mrn,arm,enrolled_on,infused_on,sex,birth_date,weight_kg\n" + "".join(
    f"S{i:04d},BN{i:08d},control,2024-01-01,,M,1960-01-01,70\n" for i in range(0, 100000, 10)
)

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from adapter.converters import ConvertContext
from adapter.roster import load_roster
from adapter.study import default_mappings_dir, load_study
import adapter.bhyt.convert as c
study = load_study(default_mappings_dir() / "study.yaml")
ctx = ConvertContext(study, load_roster(Path(sys.argv[2]), study), default_mappings_dir())
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
result = c.convert_files([Path(sys.argv[1])], ctx)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": round(seconds, 2), "rss_before_mb": round(before / 1024, 1),
                  "rss_peak_mb": round(peak / 1024, 1), "rss_growth_mb": round((peak - before) / 1024, 1),
                  "inputs": result.counts(), "resources": len(result.resources)}))
"""


def xml1(n: int) -> dict[str, str]:
    return {
        "MA_LK": f"LK{n:08d}",
        "STT": str(n),
        "MA_BN": f"BN{n:08d}",
        "HO_TEN": "NGUYỄN VĂN BENCH",
        "SO_CCCD": "079000000000",
        "DIA_CHI": "1 Đường Bench, TP. Hồ Chí Minh",
        "MA_THE_BHYT": "GD4790000000000",
        "NGAY_VAO": "202401150800",
        "NGAY_RA": "202401151000",
        "MA_LOAI_KCB": "01",
        "MA_CSKCB": "79999",
        "T_TONGCHI_BV": "123456.00",
    }


def drug(n: int, i: int) -> dict[str, str]:
    day = 1 + i % 28
    return {
        "MA_LK": f"LK{n:08d}",
        "STT": str(i),
        "MA_THUOC": ("40.807", "40.800", "40.9002")[i % 3],
        "MA_NHOM": "4",
        "TEN_THUOC": ("Glucophage 850mg", "Diamicron MR 30mg", "Paracetamol 500mg")[i % 3],
        "DON_VI_TINH": "Viên",
        "HAM_LUONG": ("850mg", "30mg", "500mg")[i % 3],
        "DUONG_DUNG": "1.01",
        "DANG_BAO_CHE": "Viên nén bao phim",
        "LIEU_DUNG": "1 viên/lần * 2 lần/ngày * 01 ngày [2 viên/ngày]",
        "CACH_DUNG": "Sau ăn",
        "SO_DANG_KY": "VN-99901-23",
        "TT_THAU": "1234/QĐ-SYT;G1;N4;2023",
        "PHAM_VI": "1",
        "SO_LUONG": "2",
        "DON_GIA": "1234.00",
        "THANH_TIEN_BV": "2468.00",
        "THANH_TIEN_BH": "2468.00",
        "T_BHTT": "2468.00",
        "MA_KHOA": "K01",
        "MA_BAC_SI": "000101/HCM-CCHN",
        "NGAY_YL": f"202401{day:02d}0800",
        "NGAY_TH_YL": f"202401{day:02d}0815",
        "MA_PTTT": "1",
    }


def lab(n: int, i: int) -> dict[str, str]:
    return {
        "MA_LK": f"LK{n:08d}",
        "STT": str(i),
        "MA_DICH_VU": ("23.0075.1494", "23.0083.1523", "99.0001")[i % 3],
        "TEN_CHI_SO": ("Glucose", "HbA1c", "WBC")[i % 3],
        "GIA_TRI": "7,8",
        "DON_VI_DO": ("mmol/L", "%", "G/L")[i % 3],
        "NGAY_KQ": "202401150815",
        "MA_BS_DOC_KQ": "7999900009",
    }


def hosos(shape: str, target: int) -> Iterator[list[Table]]:
    if shape == "many":
        # ~60 drug rows + 20 lab rows per encounter: about 100 KB of envelope each
        for n in range(target // 100_000 + 1):
            yield [
                Table("XML1", [xml1(n)]),
                Table("XML2", (drug(n, i) for i in range(60))),
                Table("XML4", (lab(n, i) for i in range(20))),
            ]
        return
    n = 0 if shape == "one-table" else 1  # BN00000000 is enrolled, BN00000001 is not
    rows = target // 1400  # one drug row is ~1.4 KB of envelope once base64-encoded
    yield [Table("XML1", [xml1(n)]), Table("XML2", (drug(n, i) for i in range(rows)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--shape", choices=["many", "one-table", "stranger"], default="many")
    parser.add_argument("--keep", type=Path, help="write the files here and keep them")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-bhyt-"))
    folder.mkdir(parents=True, exist_ok=True)
    path, roster = folder / f"bench-{args.shape}.xml", folder / "roster.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    start = time.perf_counter()
    with path.open("wb") as out:
        count = write_envelope(
            out, hosos(args.shape, args.mb * 1_000_000), facility="79999", built_on="20240131"
        )
    written = time.perf_counter() - start
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(roster)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    report = {
        "shape": args.shape,
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "hoso": count,
        "write_seconds": round(written, 1),
        **json.loads(child.stdout),
    }
    print(json.dumps(report))
    if not args.keep:
        path.unlink()
        roster.unlink()
        folder.rmdir()


if __name__ == "__main__":
    main()
