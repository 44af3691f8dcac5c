"""Deterministic FHIR ids from business identities, so re-sending anything never duplicates it.

Ids are `<prefix>-<32 hex of SHA-256>`: stable across runs and machines, valid FHIR ids (<= 64 chars,
never purely numeric, which HAPI would refuse as a client id), and they reveal nothing about MRNs.
"""

from __future__ import annotations

import hashlib

_SEP = "\x1f"


def stable_id(prefix: str, *parts: object) -> str:
    """An id for the resource whose business identity is `parts` (order matters)."""
    digest = hashlib.sha256(_SEP.join(str(p) for p in parts).encode("utf-8")).hexdigest()
    return f"{prefix}-{digest[:32]}"


def patient_id(study_key: str, subject_id: str) -> str:
    return stable_id("pt", study_key, subject_id)


def research_subject_id(study_key: str, subject_id: str) -> str:
    return stable_id("rs", study_key, subject_id)


def reference(resource_type: str, resource_id: str) -> dict[str, str]:
    return {"reference": f"{resource_type}/{resource_id}"}


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
