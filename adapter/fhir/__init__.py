"""Talking to FHIR servers: the one place HTTP happens."""
