"""HL7 v2 front door: framing, a schema-free tokenizer, charsets and escapes, and ORU^R01 -> FHIR R4.

Parsing API (general, not lab-specific; used by the MLLP listener, sync and the meds converter)
-------------------------------------------------------------------------------------------------
    split_messages(data: bytes) -> list[bytes]
        Every message in a file or MLLP frame, in wire form (segments end in "\\r"; no MLLP bytes, BOM,
        NULs, blank lines or FHS/BHS/BTS/FTS envelope). Text before the first MSH comes back as its
        own chunk so it can be rejected with a reason.
    parse_header(raw: bytes) -> Header          (raises MalformedMessage)
        MSH only, a few microseconds: `encoding` (delimiters + codec), `fields[n]` = MSH-n as sent (for
        echoing in ACKs), sending/receiving application and facility (MSH-3..6, HD namespace id or
        universal id), `timestamp` (MSH-7), `message_code`/`trigger_event`/`message_structure`
        (MSH-9), `message_type` ("ORU^R01"), `control_id` (MSH-10), `processing_id` (MSH-11),
        `version` (MSH-12 as sent) and `supported_version` (mapped to 2.3..2.8), `accept_ack_type`
        and `application_ack_type` (MSH-15/16; `enhanced_ack_mode`), `charset` (MSH-18).
    parse_message(raw: bytes) -> Message        (raises MalformedMessage)
        `Message.header`, `.segments` (list[Segment] in order), `.raw` (wire form, what Provenance
        hashes), `.codec` (how the bytes were decoded), `.notes` (charset fallback, version mapping),
        `.first(name)`, `.all(name)`.
    Segment: `.name`, `.position` (1-based), `.fields` (fields[n] = field n as sent; MSH numbered
        as the standard: raw(1) = "|", raw(2) = "^~\\&"), `.raw(n)`, `.repetitions(n)`,
        `.components(n, repetition=1)`, `.value(n, component=1, repetition=1, subcomponent=1)`
        (unescaped, HL7 null '""' -> ''), `.text(n, repetition=1)` (whole repetition as text),
        `.is_null(n)`, `.safe_name` (name, or a placeholder if malformed: safe to log).
    decode(data, declared) -> Decoded(text, codec, note)   MSH-18 charsets with a reported fallback
    unescape(text, encoding) / escape(text, encoding)
        \\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\P\\ \\.br\\ \\Xhh..\\ (hex bytes in the message charset) and more
    patient_ids(raw, header) / match_subject(ids, roster) / enrolled_subjects(raw, header, roster)
        PID-3 routing without a full parse (see route.py).
    peek(raw) -> Peek | None
        MSH-9, MSH-10 and PID-3 of a standard-delimiter message in a few microseconds (None: use
        the general path, which gives the same answers).
    dtm.to_datetime / to_instant / version_stamp    HL7 DTM -> FHIR in the site timezone; NDJSON ordering

Conversion API (adapter/converters.py kind "hl7")
-------------------------------------------------
    convert_files(paths, ctx) -> Conversion
    convert_message(raw, ctx, source, index) -> Conversion     one message as received (MLLP payload)
See convert.py for the routing order and oru.py for the mapping and identity rules.
"""

from adapter.hl7.charset import Decoded, decode
from adapter.hl7.encoding import Encoding, escape, unescape
from adapter.hl7.framing import normalise, split_messages
from adapter.hl7.header import Header, MalformedMessage, parse_header, supported_version
from adapter.hl7.message import Message, Segment, parse_message
from adapter.hl7.route import Peek, enrolled_subjects, match_subject, patient_ids, peek

__all__ = [
    "Decoded",
    "Encoding",
    "Header",
    "MalformedMessage",
    "Message",
    "Peek",
    "Segment",
    "decode",
    "enrolled_subjects",
    "escape",
    "match_subject",
    "normalise",
    "parse_header",
    "parse_message",
    "patient_ids",
    "peek",
    "split_messages",
    "supported_version",
    "unescape",
]
