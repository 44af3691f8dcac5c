"""A synthetic trial and hospital feed that behave like the real thing (no real patient ever enters the repo).

`adapter demo generate --subjects N --seed S --out DIR [--hospital-feed M]` writes, deterministically for
a seed (byte-identical output for the same arguments):

    DIR/roster.csv      the enrollment roster (design.md format): subject_id,mrn,arm,enrolled_on,infused_on,
                        sex,birth_date,weight_kg; arms and split from mappings/study.yaml; ages 18-70
    DIR/hl7/            the LIS's ORU^R01 results, one file per message (ORU_<control id>.hl7), per day
                        (LIS_<yyyymmdd>.hl7) or as FHS/BHS batches (LIS_<yyyymmdd>_batch.hl7); `\\r`, `\\n` or
                        `\\r\\n` segment ends; names with diacritics under MSH-18 UNICODE UTF-8
    DIR/meds.csv        the HIS prescription export: mrn,drug,dose,unit,times_per_day,route,start_date,
                        end_date,code,code_system (one row per constant-dose period)
    DIR/pharmacy/       the same prescriptions as RDE^O11 (one per row of meds.csv), plus RAS^O17 for insulin
                        given on the ward during the infusion admission; one file per day (HIS_<yyyymmdd>.hl7)
    DIR/ae.csv          the CRF's adverse events:
                        subject_id,term,onset,resolved,severity,serious,related,outcome
    DIR/feed/           with --hospital-feed M: the lab's whole output, the study's ORU messages (same control
                        ids as hl7/) interleaved in time with M messages for non-enrolled patients,
                        1000 messages per file (FEED_<n>.hl7)
    DIR/bhyt/           the same medications and labs as the HIS's BHYT claim XML (QĐ 130/4750), one file per
                        month (BHYT_<yyyymm>.xml), with a few non-enrolled encounters (adapter/demo/bhyt.py)
    DIR/manifest.json   what was generated (counts, quirks, conduct), the parameters used, and every
                        deliberate fault (input, file, control id or CSV line, kind, reason, expectation)

Privacy by construction: MRNs appear only in roster.csv, meds.csv, HL7 PID-3 and BHYT XML1 `MA_BN`;
Vietnamese names only in HL7 PID-5 and BHYT XML1 `HO_TEN`. The AE export and the manifest use study
subject ids.

Modules: params (the knobs: distributions, effects, quirk shares, faults; `--params FILE.yaml`), stats
(truncated distributions), names, cohort (subjects, arms, eligibility), labs (values per visit), oru (LIS
messages and files), meds (HIS CSV, RDE/RAS), ae (CRF), feed (strangers), facts (the plain dataclasses every
writer renders; another writer, e.g. BHYT XML, renders `TrialFacts` and joins `generate.WRITERS`),
generate (orchestration and manifest).
"""

from adapter.demo.generate import draw_facts, generate

__all__ = ["draw_facts", "generate"]
