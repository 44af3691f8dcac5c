"""The adapter's exception tree: every failure a user can meet, each mapped to an exit code.

    AdapterError                 base; `exit_code` says how the CLI ends
    ├── ConfigError              bad config or mapping file, bad usage         -> exit 2
    ├── InputError               one input (message, row, file) cannot be used -> reported, exit 1
    ├── ServerError              the FHIR server (or our local one) failed
    │   ├── ServerUnreachable    connection refused / timeout: retry later
    │   └── ServerRejected       a 4xx with an OperationOutcome: retrying cannot fix it
    └── LockedError              another `adapter sync` holds the lock        -> exit 2

Third-party errors (requests, yaml, pydantic, hl7apy) are translated where we call them, never leaked.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2


class AdapterError(Exception):
    exit_code = EXIT_USAGE


class ConfigError(AdapterError):
    """A configuration or mapping file is wrong; the message names the file, line and field."""


class InputError(AdapterError):
    """One input cannot be converted; `source` names it (file:line or message id), never its content."""

    exit_code = EXIT_REJECTED

    def __init__(self, message: str, source: str | None = None) -> None:
        super().__init__(f"{source}: {message}" if source else message)
        self.source = source
        self.reason = message


class ServerError(AdapterError):
    """The FHIR server failed in a way the command cannot recover from."""


class ServerUnreachable(ServerError):
    """Connection refused, DNS failure, timeout, or a 429/5xx that outlived its retries."""


class ServerRejected(ServerError):
    """The server refused a request with a 4xx; `outcome` holds its OperationOutcome text."""

    def __init__(self, message: str, status: int | None = None, outcome: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.outcome = outcome


class LockedError(AdapterError):
    """Another process holds the state directory's lock."""
