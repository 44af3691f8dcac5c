from datetime import date

import pytest

from adapter.errors import ConfigError
from adapter.roster import parse_roster

HEADER = "subject_id,mrn,arm,enrolled_on,infused_on,sex,birth_date,weight_kg\n"


def test_day1_follows_the_arm_rule(roster, study):
    treated, control = roster.by_subject("S001"), roster.by_subject("S002")
    assert treated.day1(study) == date(2019, 6, 10)
    assert control.day1(study) == date(2019, 6, 4)
    assert roster.by_mrn(" MRN1002 ") is control


def test_bad_rows_are_named_and_others_kept(study):
    text = HEADER + (
        "S1,M1,control,2019-06-04,,F,1970-01-01,60\n"
        "S2,M2,placebo,2019-06-04,,F,1970-01-01,60\n"
        "S3,M3,control,04/06/2019,,F,1970-01-01,60\n"
        "S4,M1,control,2019-06-04,,F,1970-01-01,60\n"
        "S5,M5,control,2019-06-04,,X,1970-01-01,60\n"
        "S6,M6,control,2019-06-04,,F,1970-01-01,6,5\n"
    )
    roster = parse_roster("\ufeff" + text, study, "r.csv")
    assert [s.subject_id for s in roster] == ["S1"]
    messages = [str(e) for e in roster.errors]
    assert messages[0].startswith("r.csv:3: arm: 'placebo'")
    assert messages[1].startswith("r.csv:4: enrolled_on:")
    assert messages[2] == "r.csv:5: mrn: the same MRN appears on two rows"
    assert messages[3].startswith("r.csv:6: sex:")
    assert messages[4] == "r.csv:7: weight_kg: 6.0 kg is outside 20..300"
    assert all("M1" not in m and "M5" not in m for m in messages), "no MRN in error messages"


def test_missing_columns_is_a_config_error(study):
    with pytest.raises(ConfigError, match="lacks column"):
        parse_roster("subject_id,arm\nS1,control\n", study, "r.csv")
