"""What the server says it can do (its CapabilityStatement at `/metadata`), checked before a command starts.

A command names the features it needs; a server that lacks one fails the command at once with a message
naming what is missing, instead of half-way through a push or a pull.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from adapter.errors import ConfigError

# feature -> what a user is told when it is missing
FEATURES = {
    "r4": "FHIR R4 (fhirVersion 4.0.x)",
    "transaction": "transaction bundles (rest.interaction 'transaction')",
    "export": "the Bulk Data operation $export (an operation named 'export')",
}


class CapabilityError(ConfigError):
    """The configured server cannot do what the command needs (exit 2: point the adapter elsewhere)."""


@dataclass(frozen=True)
class Capabilities:
    """The parts of a CapabilityStatement the adapter relies on."""

    fhir_version: str
    software: str
    system_interactions: frozenset[str]
    system_operations: frozenset[str]
    resource_operations: frozenset[tuple[str, str]]  # (resource type, operation name)
    resource_types: frozenset[str]

    @classmethod
    def from_statement(cls, statement: dict[str, Any]) -> Capabilities:
        interactions: set[str] = set()
        system_ops: set[str] = set()
        resource_ops: set[tuple[str, str]] = set()
        types: set[str] = set()
        for rest in statement.get("rest") or []:
            if rest.get("mode", "server") != "server":
                continue
            interactions.update(i.get("code", "") for i in rest.get("interaction") or [])
            system_ops.update(_op_name(op) for op in rest.get("operation") or [])
            for resource in rest.get("resource") or []:
                rtype = resource.get("type", "")
                types.add(rtype)
                resource_ops.update((rtype, _op_name(op)) for op in resource.get("operation") or [])
        software = statement.get("software") or {}
        return cls(
            fhir_version=str(statement.get("fhirVersion", "")),
            software=" ".join(str(software.get(k)) for k in ("name", "version") if software.get(k)),
            system_interactions=frozenset(interactions),
            system_operations=frozenset(system_ops),
            resource_operations=frozenset(resource_ops),
            resource_types=frozenset(types),
        )

    def has(self, feature: str) -> bool:
        if feature == "r4":
            return self.fhir_version.startswith("4.0.")
        if feature == "transaction":
            return "transaction" in self.system_interactions
        if feature == "export":
            return "export" in self.system_operations or any(
                op == "export" for _, op in self.resource_operations
            )
        raise ValueError(f"unknown capability {feature!r}; known: {', '.join(FEATURES)}")

    def missing(self, features: Iterable[str]) -> list[str]:
        return [f for f in features if not self.has(f)]


def _op_name(operation: dict[str, Any]) -> str:
    """Operation name without a leading `$`; HAPI and others differ on that."""
    return str(operation.get("name", "")).lstrip("$")


def check(statement: Any, features: Iterable[str], base_url: str) -> Capabilities:
    """Parse the statement and raise CapabilityError naming every missing feature."""
    if not isinstance(statement, dict) or statement.get("resourceType") != "CapabilityStatement":
        raise CapabilityError(
            f"{base_url}/metadata did not return a CapabilityStatement: is this a FHIR server?"
        )
    caps = Capabilities.from_statement(statement)
    missing = caps.missing(["r4", *features])
    if missing:
        what = "; ".join(FEATURES[m] for m in missing)
        found = f" (it reports fhirVersion {caps.fhir_version or 'none'})" if "r4" in missing else ""
        server = f" [{caps.software}]" if caps.software else ""
        raise CapabilityError(f"FHIR server {base_url}{server} lacks {what}{found}")
    return caps


def minimal_statement(features: Iterable[str] = ("transaction", "export")) -> dict[str, Any]:
    """The smallest R4 CapabilityStatement that has `features`: for mocked servers in tests and demos."""
    wanted = set(features)
    rest: dict[str, Any] = {"mode": "server"}
    if "transaction" in wanted:
        rest["interaction"] = [{"code": "transaction"}]
    if "export" in wanted:
        rest["operation"] = [
            {"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"}
        ]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2024-01-01",
        "kind": "instance",
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [rest],
    }
