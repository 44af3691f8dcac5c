"""Medications from the HIS -> FHIR R4 MedicationStatement (and MedicationAdministration for HL7 RAS).

Public API
----------
    convert.convert_files(paths, ctx) -> Conversion          HIS CSV export (converter kind "meds")
    hl7.convert_pharmacy_message(msg, ctx, source, index)    HL7 RDE^O11 / RAS^O17 (called by adapter.hl7)
    drugs.load_drug_map(mappings_dir) -> DrugMap              mappings/drugs.yaml, validated and cached
        DrugMap.resolve(name, code="", system="", strength="") -> DrugMatch   (DrugNotFound: not guessed)
        DrugMap.by_code(code, system)   system: ATC | RxNorm | local | VN (MA_THUOC, e.g. "40.807")
        DrugMap.by_name(name, strength="")   names, then regex patterns on name + strength (BHYT insulins)
        DrugMap.is_insulin(match), DrugMap.atc_codes(match), DrugMap.route(text_or_DUONG_DUNG_code)
    dose.parse_dose(amount, unit, insulin=...) -> Dose        UCUM; U/IU/units/UI/"đơn vị" -> [IU]
    dose.parse_amount / parse_unit / parse_times_per_day
    statement.MedicationFacts + statement.medication_statement(facts, study, drugs) -> Resource
        The one builder every source uses (the BHYT XML2 importer too): give it the subject id, the
        DrugMatch, the original name, the identity parts (source record keys, never an MRN), dose, times
        per day, route text, start/end (FHIR date/dateTime strings), dosage text and `source_kind`.
    rows.read_rows / rows.parse_date                          tolerant CSV reading shared with adapter.ae
"""
