"""Adverse events from the CRF export -> AdverseEvent (R4)."""
