"""SDTM-like domains of the fixture: study days, baseline flags, standardised results, the infusion as EX."""

from __future__ import annotations

from tests.endpoints.conftest import Run


def test_dm(fixture_run: Run) -> None:
    dm = {r["SUBJID"]: r for r in fixture_run.csv("sdtm/dm.csv")}
    assert set(dm) == {"C01", "C02", "C03", "E01", "E02", "E03"}
    e01 = dm["E01"]
    assert (e01["USUBJID"], e01["RFSTDTC"], e01["RFXSTDTC"], e01["SEX"], e01["BRTHDTC"]) == (
        "NCT03943940-E01",
        "2024-01-10",
        "2024-01-10",
        "F",
        "1965",
    )
    assert (e01["ARMCD"], e01["ACTARMCD"]) == ("CELL-THERAPY", "CELL-THERAPY")
    assert (dm["E03"]["RFSTDTC"], dm["E03"]["ACTARMCD"], dm["E03"]["ACTARM"]) == ("", "NOTTRT", "Not Treated")
    assert (dm["C01"]["RFSTDTC"], dm["C01"]["RFXSTDTC"], dm["C01"]["ARM"]) == (
        "2024-01-05",
        "",
        "Standard medicines",
    )


def test_lb_keeps_every_value_with_visit_and_flags(fixture_run: Run) -> None:
    lb = fixture_run.csv("sdtm/lb.csv")
    by_id = {r["LBSPID"]: r for r in lb}
    # 56 Observations: 5 body weights (VS), 6 not analysed (statuses, bad unit, no date), X99's one
    assert len(lb) == 56 - 5 - 6 - 1
    base = by_id["e01-glu-b3"]
    assert (base["LBDY"], base["VISIT"], base["VISITNUM"], base["LBBLFL"]) == ("1", "BASELINE", "1", "Y")
    assert base["LBDTC"] == "2024-01-10T06:30"  # site-local time of 23:30Z
    not_chosen = by_id["e01-glu-b2"]  # day -1, in the window but not the baseline
    assert (not_chosen["LBDY"], not_chosen["VISIT"], not_chosen["LBBLFL"]) == ("-1", "BASELINE", "")
    mg = by_id["e01-glu-m1b"]
    assert (mg["LBORRES"], mg["LBORRESU"], mg["LBSTRESN"], mg["LBSTRESU"]) == (
        "126",
        "mg/dl",
        "6.9939",
        "mmol/L",
    )
    censored = by_id["e01-cpep-m3"]
    assert (censored["LBORRES"], censored["LBSTRESC"], censored["LBSTRESN"]) == ("<0.1", "<0.1", "")
    unscheduled = by_id["e01-glu-u76"]
    assert (unscheduled["VISIT"], unscheduled["VISITNUM"], unscheduled["LBDY"]) == (
        "UNSCHEDULED",
        "2.1",
        "76",
    )
    assert by_id["e03-glu"]["LBDY"] == "" and by_id["e03-glu"]["VISIT"] == ""
    assert (by_id["e01-ins-b"]["LBSTRESN"], by_id["e01-ins-b"]["LBFAST"]) == ("10", "Y")
    assert [r["LBSEQ"] for r in lb if r["USUBJID"] == "NCT03943940-C02"] == ["1", "2", "3", "4", "5"]


def test_ae_cm_ex_vs(fixture_run: Run) -> None:
    ae = {r["AESPID"]: r for r in fixture_run.csv("sdtm/ae.csv")}
    hypo = ae["ae-c01-hypo"]
    assert (hypo["AESEV"], hypo["AESER"], hypo["AEREL"], hypo["AESTDY"]) == ("SEVERE", "Y", "UNLIKELY", "40")
    assert ae["ae-e02-pain"]["AESTDY"] == "-6"
    assert (ae["ae-e02-fever1"]["AEENDTC"], ae["ae-e02-fever1"]["AEENDY"]) == ("2024-01-13", "3")
    cm = {r["CMSPID"]: r for r in fixture_run.csv("sdtm/cm.csv")}
    nph = cm["ms-c01-nph"]
    assert (nph["CMDOSE"], nph["CMDOSU"], nph["CMDOSFRQ"], nph["CMCLASCD"], nph["CMENRTPT"]) == (
        "10",
        "IU",
        "BID",
        "A10AC01",
        "ONGOING",
    )
    assert (nph["CMSTDTC"], nph["CMSTDY"]) == (
        "2023-01-01",
        "-369",
    )  # 2023-01-01 is 369 days before 2024-01-05
    aspart = cm["ms-e02-aspart"]
    assert (aspart["CMDOSFRQ"], aspart["CMENDTC"], aspart["CMENDY"], aspart["CMENRTPT"]) == (
        "TID",
        "2024-07-31",
        "203",
        "",
    )
    assert cm["ms-c03-lispro"]["CMTRT"] == "insulin lispro"  # resolved through the Medication resource
    ex = fixture_run.csv("sdtm/ex.csv")
    assert [(r["USUBJID"], r["EXSTDTC"], r["EXSTDY"], r["EXSPID"]) for r in ex] == [
        ("NCT03943940-E01", "2024-01-10", "1", "proc-e01-infusion"),
        ("NCT03943940-E02", "2024-01-11", "1", "proc-e02-infusion"),
    ]
    assert ex[0]["EXROUTE"] == "INTRAVENOUS"
    assert (ex[0]["EXDOSE"], ex[0]["EXDOSU"]) == (
        "1500000",
        "cells/kg",
    )  # from the Procedure's dose extension
    assert (ex[1]["EXDOSE"], ex[1]["EXDOSU"]) == ("", "")  # E02's infusion records no dose
    vs = fixture_run.csv("sdtm/vs.csv")
    assert [(r["USUBJID"][-3:], r["VSSTRESN"], r["VSDY"]) for r in vs] == [
        ("C01", "70", "1"),
        ("C02", "65", "1"),
        ("E01", "60", "-8"),
        ("E02", "80", "-8"),
        ("E02", "78", "82"),
    ]
