"""The hospital feed: the lab's whole output, in which the study's messages are a small minority.

`--hospital-feed M` adds M result messages for patients who are not enrolled ("strangers": other
outpatients with glucose, HbA1c, kidney, liver and lipid tests), interleaved in time order with the
study's own messages. The adapter must acknowledge and drop every stranger's message without keeping
anything; the feed also serves throughput benchmarks.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from pathlib import Path

from adapter.demo.facts import LabDraw, LabValue
from adapter.demo.hl7text import Message, write_text
from adapter.demo.names import draw_name
from adapter.demo.oru import (
    Group,
    Obx,
    Patient,
    Renderer,
    Spec,
    _Order,
    assign_ids,
    draw_style,
    number_orders,
)
from adapter.demo.params import QuirkShares

# test -> (log-normal median, log sd, decimals)
_TESTS = {
    "GLU": (6.2, 0.3, 1),
    "CREA": (85.0, 0.3, 0),
    "ALT": (28.0, 0.5, 0),
    "AST": (26.0, 0.4, 0),
    "CHOL": (5.0, 0.2, 2),
    "TG": (1.8, 0.45, 2),
}
MESSAGES_PER_FILE = 1000
STYLE_POOL = 256
STRANGER_SERIAL_START = 50001  # order and control numbers of strangers: same shape, other range


def stranger_messages(
    count: int, mrns: list[str], start: date, end: date, renderer: Renderer, quirks: QuirkShares, seed: int
) -> list[Message]:
    """`count` result messages for the patients behind `mrns` (not enrolled), between start and end."""
    if count <= 0:
        return []
    rng = random.Random(f"{seed}:feed")
    patients = []
    for mrn in mrns:
        sex = "F" if rng.random() < 0.5 else "M"
        birth = date(1935, 1, 1) + timedelta(days=rng.randrange(0, 70 * 365))
        patients.append(Patient(mrn, draw_name(rng, sex), birth, sex))
    span = (end - start).days + 1
    tests = list(_TESTS)
    orders: list[_Order] = []
    plans: list[tuple[Patient, _Order, _Order | None, datetime]] = []
    for _ in range(count):
        patient = rng.choice(patients)
        collected = datetime.combine(start + timedelta(days=rng.randrange(span)), time(6)) + timedelta(
            minutes=rng.randrange(0, 600)
        )
        values = {}
        for test in rng.sample(tests, rng.randint(1, 4)):
            median, log_sd, decimals = _TESTS[test]
            values[test] = LabValue(test, round(median * rng.lognormvariate(0.0, log_sd), decimals))
        bio = _Order(LabDraw("", "", 0, collected, False, values), "BIO")
        a1c = None
        if rng.random() < 0.25:
            a1c = _Order(
                LabDraw(
                    "",
                    "",
                    0,
                    collected,
                    False,
                    {"HBA1C": LabValue("HBA1C", round(rng.uniform(5.0, 10.5), 1))},
                ),
                "A1C",
            )
            orders.append(a1c)
        orders.append(bio)
        plans.append((patient, bio, a1c, collected + timedelta(minutes=rng.randint(60, 300))))
    number_orders(orders, start=STRANGER_SERIAL_START)
    styles = [draw_style(rng, quirks) for _ in range(STYLE_POOL)]  # drawing one per message costs too much
    specs: list[Spec] = []
    for patient, bio, a1c, sent in plans:
        groups = [
            Group(
                "BIO",
                bio.filler,
                bio.placer,
                bio.draw.collected_at,
                sent,
                "F",
                [Obx(p, v) for p, v in bio.draw.values.items()],
            )
        ]
        if a1c is not None:
            groups.append(
                Group(
                    "A1C",
                    a1c.filler,
                    a1c.placer,
                    a1c.draw.collected_at,
                    sent,
                    "F",
                    [Obx("HBA1C", a1c.draw.values["HBA1C"])],
                )
            )
        specs.append(Spec(sent, patient, None, rng.choice(styles), groups))
    specs.sort(key=lambda s: (s.sent_at, s.groups[0].filler))
    return assign_ids(specs, renderer, start=STRANGER_SERIAL_START)


def write_feed(out: Path, folder: str, study: list[Message], strangers: list[Message]) -> dict[str, str]:
    """Interleave by send time and write files of MESSAGES_PER_FILE messages; control id -> file.

    A deliberately truncated message keeps a segment end here, so the message after it stays whole.
    """
    merged = sorted([*study, *strangers], key=lambda m: (m.sent_at, m.control_id))
    where: dict[str, str] = {}
    for index in range(0, len(merged), MESSAGES_PER_FILE):
        chunk = merged[index : index + MESSAGES_PER_FILE]
        name = f"{folder}/FEED_{index // MESSAGES_PER_FILE + 1:05d}.hl7"
        write_text(out / name, "".join(m.text("\r") + ("\r" if m.truncated else "") for m in chunk))
        where.update({m.control_id: name for m in chunk})
    return where
