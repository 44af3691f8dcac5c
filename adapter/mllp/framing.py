"""MLLP framing on a byte stream: `0x0B message 0x1C 0x0D`, read incrementally from a socket.

`FrameReader.feed(chunk)` returns the events the new bytes complete, in order:
- `Frame(payload)`: a whole message (framing bytes removed);
- `Oversize(head, size)`: a message longer than the limit; only its first `keep` bytes are kept, the
  rest is read and discarded up to its end block, so the connection stays usable;
- `Truncated(head, size)`: a frame cut short, because a new start block arrived before its end block
  (the sender gave up and started over) or because the connection closed (`close()`).
Bytes outside frames are counted in `junk` and otherwise ignored (a stray CR after 0x1C is normal).
Memory per connection stays under `max_bytes`, whatever the peer sends.
"""

from __future__ import annotations

from dataclasses import dataclass

START = 0x0B
END = 0x1C
CR = 0x0D
START_BYTE = b"\x0b"
END_BYTES = b"\x1c\x0d"


def frame(payload: bytes) -> bytes:
    """Wrap one message in MLLP framing."""
    return START_BYTE + payload + END_BYTES


@dataclass(frozen=True)
class Frame:
    payload: bytes


@dataclass(frozen=True)
class Oversize:
    head: bytes
    size: int


@dataclass(frozen=True)
class Truncated:
    head: bytes
    size: int
    reason: str


Event = Frame | Oversize | Truncated


class FrameReader:
    """Incremental MLLP decoder with a size limit (see the module docstring)."""

    def __init__(self, max_bytes: int, keep: int = 64 * 1024) -> None:
        self.max_bytes = max_bytes
        self.keep = min(keep, max_bytes)
        self.junk = 0
        self._buf = bytearray()
        self._in_frame = False
        self._size = 0  # bytes of the current frame seen so far (kept or not)
        self._oversize = False

    @property
    def in_frame(self) -> bool:
        """A message has started and not ended (used to finish in-flight work on shutdown)."""
        return self._in_frame

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        pos = 0
        n = len(data)
        while pos < n:
            if not self._in_frame:
                start = data.find(START_BYTE, pos)
                if start < 0:
                    self.junk += _junk(data[pos:])
                    break
                self.junk += _junk(data[pos:start])
                self._begin()
                pos = start + 1
                continue
            # inside a frame: look for its end, or for a new start (the old frame was abandoned)
            end = data.find(b"\x1c", pos)
            restart = data.find(START_BYTE, pos)
            if restart >= 0 and (end < 0 or restart < end):
                self._take(data[pos:restart])
                events.append(self._truncated("a new start block came before the end block"))
                self._begin()
                pos = restart + 1
                continue
            if end < 0:
                self._take(data[pos:])
                break
            self._take(data[pos:end])
            events.append(self._finish())
            pos = end + 1
        return events

    def close(self) -> list[Event]:
        """The connection ended: a frame still open is reported as truncated."""
        if self._in_frame:
            return [self._truncated("the connection closed before the end block")]
        return []

    # -- internals --------------------------------------------------------------------------------
    def _begin(self) -> None:
        self._in_frame = True
        self._buf = bytearray()
        self._size = 0
        self._oversize = False

    def _take(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._oversize:
            room = self.keep - len(self._buf)
            if room > 0:
                self._buf += chunk[:room]
            return
        self._buf += chunk
        if self._size > self.max_bytes:
            self._oversize = True
            del self._buf[self.keep :]

    def _finish(self) -> Event:
        self._in_frame = False
        data, size = bytes(self._buf), self._size
        self._buf = bytearray()
        if self._oversize:
            return Oversize(data, size)
        return Frame(data)

    def _truncated(self, reason: str) -> Truncated:
        self._in_frame = False
        data, size = bytes(self._buf), self._size
        self._buf = bytearray()
        return Truncated(data[: self.keep], size, reason)


def _junk(outside: bytes) -> int:
    """Bytes between frames that are not line ends (a CR after the end block is part of MLLP)."""
    return len(outside) - outside.count(b"\r") - outside.count(b"\n")
