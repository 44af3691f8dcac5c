"""What every converter returns: FHIR resources (plain JSON dicts) plus an account of every input.

Resources are dicts, not fhir.resources objects: building pydantic models costs ~0.6 ms each, too much
for a hospital feed. Tests validate every produced resource with fhir.resources' R4B models instead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

Resource = dict[str, Any]
Outcome = Literal["converted", "rejected", "not-enrolled", "ignored"]


@dataclass
class SegmentAccount:
    """What happened to one segment (or record) of an input: never its content."""

    position: int
    segment: str
    status: Literal["mapped", "ignored"]
    reason: str | None = None
    resources: list[str] = field(default_factory=list)


@dataclass
class InputAccount:
    """One line of `messages.ndjson`: an input message or row and its outcome, without PHI or values."""

    kind: str  # hl7 | meds | ae | bhyt | roster
    source: str  # file name (or "mllp:<peer>")
    index: int  # 1-based message number within the file, or CSV line
    outcome: Outcome
    control_id: str | None = None
    message_type: str | None = None
    reason: str | None = None
    resources: list[str] = field(default_factory=list)
    segments: list[SegmentAccount] = field(default_factory=list)
    sha256: str | None = None

    @property
    def key(self) -> str:
        return f"{self.kind}|{self.source}|{self.index:08d}"

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        if not self.segments:
            data.pop("segments")
        return {k: v for k, v in data.items() if v is not None}


@dataclass
class Conversion:
    """The result of converting some inputs: resources to send and the account of each input."""

    resources: list[Resource] = field(default_factory=list)
    accounts: list[InputAccount] = field(default_factory=list)

    def extend(self, other: Conversion) -> None:
        self.resources.extend(other.resources)
        self.accounts.extend(other.accounts)

    @property
    def rejected(self) -> list[InputAccount]:
        return [a for a in self.accounts if a.outcome == "rejected"]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for account in self.accounts:
            out[account.outcome] = out.get(account.outcome, 0) + 1
        return out


def source_time(resource: Resource) -> str:
    """The source's own time of a version (converters put it in meta.lastUpdated; "" when unknown)."""
    return (resource.get("meta") or {}).get("lastUpdated") or ""


def supersedes(candidate: Resource, kept: Resource) -> bool:
    """Whether a version that arrived later replaces the one kept: yes unless its source time is older.

    A preliminary result re-sent after its final (an interface engine replaying its queue) must not
    overwrite the final; equal or unknown times keep the arrival order.
    """
    new, old = source_time(candidate), source_time(kept)
    if not new or not old:
        return True
    try:  # instants with different offsets compare as instants, not as text
        return datetime.fromisoformat(new) >= datetime.fromisoformat(old)
    except (ValueError, TypeError):  # not an instant, or naive vs aware: the text order
        return new >= old
