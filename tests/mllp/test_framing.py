"""MLLP stream framing: frames split anywhere, junk between frames, size limit, cut-off frames."""

from adapter.mllp.framing import Frame, FrameReader, Oversize, Truncated, frame


def test_frames_split_byte_by_byte_come_out_whole_and_in_order():
    reader = FrameReader(1024)
    stream = frame(b"MSH|one\r") + b"\r\n" + frame(b"MSH|two\r")
    events = [e for byte in stream for e in reader.feed(bytes([byte]))]
    assert events == [Frame(b"MSH|one\r"), Frame(b"MSH|two\r")]
    assert reader.junk == 0  # CR/LF between frames is not junk
    assert not reader.in_frame


def test_several_frames_in_one_chunk_and_junk_before_start_counted():
    reader = FrameReader(1024)
    events = reader.feed(b"xyz" + frame(b"A") + frame(b"B") + b"\x0bC")
    assert events == [Frame(b"A"), Frame(b"B")]
    assert reader.junk == 3
    assert reader.in_frame
    assert reader.feed(b"D\x1c\r") == [Frame(b"CD")]


def test_end_block_without_cr_is_accepted():
    reader = FrameReader(1024)
    assert reader.feed(b"\x0bA\x1c\x0bB\x1c") == [Frame(b"A"), Frame(b"B")]


def test_oversize_frame_keeps_its_head_and_the_stream_goes_on():
    reader = FrameReader(max_bytes=100, keep=10)
    big = b"MSH|" + b"x" * 500
    events = []
    for i in range(0, len(big), 7):  # arrives in pieces
        events += reader.feed((b"\x0b" if i == 0 else b"") + big[i : i + 7])
    events += reader.feed(b"\x1c\r" + frame(b"small"))
    assert events == [Oversize(big[:10], len(big)), Frame(b"small")]


def test_new_start_block_before_end_reports_the_abandoned_frame():
    reader = FrameReader(1024)
    events = reader.feed(b"\x0bhalf a mess" + frame(b"whole"))
    assert isinstance(events[0], Truncated) and events[0].head == b"half a mess" and events[0].size == 11
    assert events[1] == Frame(b"whole")


def test_connection_closed_mid_frame_is_truncated_and_idle_close_is_not():
    reader = FrameReader(1024)
    reader.feed(b"\x0bMSH|cut")
    (event,) = reader.close()
    assert isinstance(event, Truncated) and event.head == b"MSH|cut" and "closed" in event.reason
    assert FrameReader(1024).close() == []
