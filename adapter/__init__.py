"""adapter: carries one clinical trial's hospital data into FHIR R4 and back out as trial endpoints."""

__version__ = "0.1.0"
