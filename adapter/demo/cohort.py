"""The cohort: who is enrolled when, in which arm, and who they are at the hospital.

Arms and their split come from mappings/study.yaml (`planned_subjects`, scaled to N by largest
remainder); Day 1 follows each arm's `day1` rule. Everyone meets the design's eligibility: age 18-70 at
enrollment (the lab criteria are met by the baseline draws, see labs.py).
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from adapter.demo.facts import DemoSubject
from adapter.demo.names import draw_name
from adapter.demo.params import DemoParams
from adapter.demo.stats import TruncatedNormal
from adapter.study import Arm, StudyConfig


def arm_split(arms: list[Arm], n: int) -> dict[str, int]:
    """Subjects per arm for N subjects: planned counts scaled to N, remainders to the largest fractions."""
    planned = [a.planned_subjects or 0 for a in arms]
    if sum(planned) == 0:
        planned = [1] * len(arms)
    total = sum(planned)
    exact = [n * p / total for p in planned]
    counts = [int(x) for x in exact]
    order = sorted(range(len(arms)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return {a.id: c for a, c in zip(arms, counts, strict=True)}


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _weekday(day: date) -> date:
    """The next working day (clinics enroll and infuse Monday to Friday)."""
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _birth_date(rng: random.Random, enrolled: date, age: int) -> date:
    """A birth date that makes the subject exactly `age` on the enrollment date."""
    latest = (
        enrolled.replace(year=enrolled.year - age)
        if (enrolled.month, enrolled.day) != (2, 29)
        else (date(enrolled.year - age, 2, 28))
    )
    birth = latest - timedelta(days=rng.randrange(0, 365))
    while age_on(birth, enrolled) > age:
        birth += timedelta(days=1)
    return birth


def subject_id_width(n: int) -> int:
    return max(3, len(str(n)))


def draw_cohort(
    study: StudyConfig, params: DemoParams, n: int, seed: int, mrns: list[str]
) -> list[DemoSubject]:
    """N subjects ordered by enrollment, ids VH-001..; `mrns` are unique hospital numbers, one each."""
    rng = random.Random(f"{seed}:cohort")
    split = arm_split(study.arms, n)
    arms = [arm for arm in study.arms for _ in range(split[arm.id])]
    rng.shuffle(arms)  # non-randomised, but allocation interleaves over the enrollment period
    start = date.fromisoformat(params.first_enrollment)
    offsets = sorted(rng.randrange(0, params.enrollment_days) for _ in range(n))
    if offsets:
        offsets[0] = 0  # the first enrollment is the configured date
    low, high = params.age_range
    ages = TruncatedNormal(params.age_mean, params.age_sd, low - 0.5, high + 0.49)
    width = subject_id_width(n)
    subjects: list[DemoSubject] = []
    for index, (arm, offset) in enumerate(zip(arms, offsets, strict=True)):
        enrolled = _weekday(start + timedelta(days=offset))
        infused = None
        if arm.day1 == "infused_on" or arm.intervention:
            gap_low, gap_high = params.infusion_after_enrollment_days
            infused = _weekday(enrolled + timedelta(days=rng.randint(gap_low, gap_high)))
        sex = "F" if rng.random() < 0.52 else "M"
        age = min(max(round(ages.draw(rng)), low), high)
        weight = rng.gauss(66.0 if sex == "M" else 58.0, 9.0)
        day1 = infused if arm.day1 == "infused_on" else enrolled
        assert day1 is not None
        subjects.append(
            DemoSubject(
                subject_id=f"VH-{index + 1:0{width}d}",
                mrn=mrns[index],
                arm=arm.id,
                intervention=arm.intervention,
                enrolled_on=enrolled,
                infused_on=infused,
                sex=sex,
                birth_date=_birth_date(rng, enrolled, age),
                weight_kg=round(min(max(weight, 40.0), 110.0), 1),
                name=draw_name(rng, sex),
                day1=day1,
                insulin_user=rng.random() < params.insulin_user_share,
            )
        )
    _draw_dropouts(rng, study, params, subjects)
    return subjects


def _draw_dropouts(
    rng: random.Random, study: StudyConfig, params: DemoParams, subjects: list[DemoSubject]
) -> None:
    """A few subjects leave between the first follow-up visit and the last one."""
    targets = sorted(v.target_day for v in study.visits)
    if len(targets) < 2:
        return
    first_follow_up, last = targets[1], targets[-1]
    for subject in subjects:
        if rng.random() < params.dropout_share:
            subject.dropout_day = rng.randint(max(2, first_follow_up - 10), last - 5)


def draw_mrns(rng: random.Random, count: int) -> list[str]:
    """Unique 8-digit hospital numbers (MRNs), in random order."""
    return [f"{n:08d}" for n in rng.sample(range(10_000_000, 100_000_000), count)]
