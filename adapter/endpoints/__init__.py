"""Endpoint extraction: FHIR resources (NDJSON folder or server) -> analysis dataset, statistics, SDTM.

Public API: `run_endpoints(source, out, study, config, factors)`, `open_source(text, settings)`,
`load_endpoints_config(mappings_dir, study)`; the CLI is `adapter/cli_endpoints.py`.
"""

from adapter.endpoints.config import EndpointsConfig, load_endpoints_config
from adapter.endpoints.pipeline import EndpointsResult, run_endpoints
from adapter.endpoints.source import FolderSource, ServerSource, open_source

__all__ = [
    "EndpointsConfig",
    "EndpointsResult",
    "FolderSource",
    "ServerSource",
    "load_endpoints_config",
    "open_source",
    "run_endpoints",
]
