"""Vietnamese BHYT claim XML (QĐ 4210 / 130 / 4750 / 3176): the GIAMDINHHS envelope -> FHIR R4.

Stages, one module each:
    container   stream the envelope, decode each table's base64 incrementally, find records by name
    times       yyyyMMdd[HHmm] in the site's timezone -> FHIR date / dateTime
    dosage      LIEU_DUNG text -> dose per administration, times per day, days, daily total
    config      mappings/bhyt.yaml (route codes, dose units, encounter types)
    meds        XML2 rows of one encounter -> MedicationStatements (via adapter.meds.statement)
    labs        XML4 rows -> Observations for study parameters
    convert     `convert_files(paths, ctx)`: accounts, identity, Provenance per file
    writer      GIAMDINHHS files from records (fixtures, the demo trial, the 100 MB benchmark)

Reference: ../shared/reference/vn-bhyt-xml.md. Nothing identifying (HO_TEN, SO_CCCD, MA_THE_BHYT, DIA_CHI,
DIEN_THOAI, MA_BN) and no money field is ever copied into a resource, an account or a log line.
"""
