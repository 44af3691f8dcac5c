"""Property tests: random corruption of valid messages never crashes the converter, never yields an
invalid resource, and never costs the other messages of the same file."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapter.converters import ConvertContext
from adapter.hl7 import MalformedMessage, parse_header, patient_ids, split_messages
from adapter.hl7.convert import HL7Converter, convert_message
from adapter.hl7.route import peek
from tests.hl7.conftest import CORPUS, validate

VICTIMS = [
    raw
    for name in ("panel-full", "values-sn", "values-other-types", "timezones", "escapes", "order-numbers")
    for raw in split_messages((CORPUS / f"{name}.hl7").read_bytes())
]
_MULTI = split_messages((CORPUS / "multi-message.hl7").read_bytes())
GOOD = [_MULTI[1], _MULTI[4]]  # VH0301 (S001), VH0304 (S003)
NOISE = b'\r\n|^~\\&\x0b\x1c\x00\xff\xc3\xa1 A1.<>-:+"#'
OUTCOMES = {"converted", "rejected", "not-enrolled", "ignored"}
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@st.composite
def corrupted(draw: st.DrawFn, keep: int = 0) -> bytes:
    """A valid message with 1-4 random corruptions; the first `keep` bytes are left alone."""
    data = bytearray(draw(st.sampled_from(VICTIMS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "delete", "insert", "truncate", "dup-segment", "drop-segment"]))
        if len(data) <= keep + 1:
            break
        at = draw(st.integers(keep, len(data) - 1))
        if kind == "flip":
            data[at] = draw(st.integers(0, 255))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 40))]
        elif kind == "insert":
            data[at:at] = draw(
                st.binary(min_size=1, max_size=12).map(lambda b: bytes(NOISE[x % len(NOISE)] for x in b))
            )
        elif kind == "truncate":
            del data[at:]
        else:
            segments = bytes(data).split(b"\r")
            i = draw(st.integers(1 if keep else 0, len(segments) - 1)) if len(segments) > 1 else 0
            segments[i : i + 1] = [segments[i], segments[i]] if kind == "dup-segment" else []
            data = bytearray(b"\r".join(segments))
    return bytes(data)


def _check(out_accounts: list, resources: list) -> None:
    for account in out_accounts:
        assert account.outcome in OUTCOMES
        if account.outcome == "rejected":
            assert account.reason
        text = json.dumps(account.as_json(), ensure_ascii=False)
        assert "BN2019" not in text and "NGUYỄN" not in text
    for resource in resources:
        validate(resource)


@SETTINGS
@given(raw=corrupted())
def test_a_corrupted_message_never_crashes_and_never_yields_an_invalid_resource(
    raw: bytes, hl7_ctx: ConvertContext
) -> None:
    out = convert_message(raw, hl7_ctx, "fuzz", 1)
    assert len(out.accounts) == 1
    _check(out.accounts, out.resources)


@SETTINGS
@given(raw=corrupted(keep=len(b"MSH|^~\\&|")))
def test_a_corrupted_message_costs_nothing_to_its_neighbours(raw: bytes, hl7_ctx: ConvertContext) -> None:
    """Its MSH start is kept: a message whose MSH is destroyed is, in a file, just more segments of the
    message before it (only MLLP framing would tell them apart)."""
    converter = HL7Converter(hl7_ctx)
    alone = [converter.message(good, "f", 1).resources for good in GOOD]
    out = converter.data(GOOD[0] + raw + b"\r" + GOOD[1], "f")
    _check(out.accounts, out.resources)
    by_control = {a.control_id: a for a in out.accounts if a.outcome == "converted"}
    assert {"VH0301", "VH0304"} <= set(by_control)
    produced = [json.dumps(r, sort_keys=True) for r in out.resources]
    for resources in alone:
        for resource in resources:
            assert json.dumps(resource, sort_keys=True) in produced


def _general(raw: bytes) -> tuple[str, str, str, list[list[str]]] | None:
    try:
        header = parse_header(raw)
    except MalformedMessage:
        return None
    return header.message_code, header.trigger_event, header.control_id, patient_ids(raw, header)


@settings(max_examples=300, deadline=None)
@given(raw=corrupted())
def test_the_fast_router_agrees_with_the_general_path(raw: bytes) -> None:
    for message in split_messages(raw) or [raw]:
        fast = peek(message)
        if fast is not None:
            assert tuple(fast) == _general(message)


def test_the_fast_router_covers_the_corpus_as_the_general_path_does() -> None:
    covered = 0
    for path in CORPUS.glob("*.hl7"):
        for message in split_messages(path.read_bytes()):
            fast = peek(message)
            if fast is not None:
                covered += 1
                assert tuple(fast) == _general(message), path.name
    assert covered >= 40
