"""Runtime settings: where the state lives, which FHIR server, which mappings.

Precedence, highest first: command-line option, environment variable, `adapter.toml`, default.
The file is validated by pydantic; secrets are never read from it in clear (they name an env var or file).
"""

from __future__ import annotations

import os
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapter.errors import ConfigError
from adapter.study import StudyConfig, default_mappings_dir, load_study

DEFAULT_FHIR_URL = "http://127.0.0.1:8080/fhir"
DEFAULT_STATE_DIR = ".adapter"
DEFAULT_CONFIG = "adapter.toml"


class AuthSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["none", "basic", "bearer", "smart-backend"] = "none"
    username: str | None = None
    password_env: str | None = Field(default=None, description="env var holding the password")
    password_file: Path | None = None
    token_env: str | None = None
    token_file: Path | None = None
    client_id: str | None = None
    token_url: str | None = None
    private_key_file: Path | None = None
    private_key_env: str | None = Field(default=None, description="env var holding the PEM private key")
    key_id: str | None = None
    algorithm: Literal["RS384", "ES384"] = "RS384"
    scope: str = "system/*.read system/*.write"


class TlsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    verify: bool = True
    ca_bundle: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None


class SyncSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bundle_size: int = Field(default=200, ge=1, le=5000)
    watch_dir: Path | None = None
    retry_budget_seconds: float = Field(default=120.0, ge=0)
    max_message_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    idle_timeout_seconds: float = Field(default=300.0, gt=0)
    # MLLP listener and watched folder (adapter/mllp, adapter/watch.py)
    max_connections: int = Field(default=100, ge=1, le=10000)
    accept_message_types: list[str] | None = Field(
        default=["ORU^R01", "ORU^R30", "ORU^R31", "ORU^R32", "RDE^O11", "RAS^O17"],
        description="MSH-9 CODE^EVENT accepted by the listener (others get AR); null accepts any",
    )
    accept_processing_ids: list[str] = Field(default=["P", "T", "D"], description="MSH-11 accepted")
    watch_settle_seconds: float = Field(
        default=2.0, ge=0, description="a dropped file must keep its size and mtime this long"
    )


class Settings(BaseModel):
    """Everything a command needs to know about its environment."""

    model_config = ConfigDict(extra="forbid", ignored_types=(cached_property,))

    fhir_url: str = DEFAULT_FHIR_URL
    state_dir: Path = Path(DEFAULT_STATE_DIR)
    mappings_dir: Path = Field(default_factory=default_mappings_dir)
    identified: bool = Field(default=False, description="identified mode: Patient keeps name and MRN")
    page_size: int = Field(default=200, ge=1, le=1000)
    timeout_seconds: float = Field(default=60.0, gt=0)
    insulin_pmol_per_uiu: float = Field(default=6.0, gt=0, description="insulin uIU/mL -> pmol/L factor")
    log_json: bool = False
    auth: AuthSettings = AuthSettings()
    tls: TlsSettings = TlsSettings()
    sync: SyncSettings = SyncSettings()

    @cached_property
    def study(self) -> StudyConfig:
        return load_study(self.mappings_dir / "study.yaml")

    @property
    def roster_path(self) -> Path:
        """Where `adapter enroll` keeps the roster (the MRN link key never leaves the hospital)."""
        return self.state_dir / "roster.csv"


def load_settings(
    config: Path | None = None,
    fhir_url: str | None = None,
    state_dir: Path | None = None,
) -> Settings:
    """Build Settings from options, environment and the config file (in that order of precedence)."""
    env = os.environ
    config_path = config or (Path(env["ADAPTER_CONFIG"]) if env.get("ADAPTER_CONFIG") else None)
    data: dict = {}
    if config_path is None and Path(DEFAULT_CONFIG).is_file():
        config_path = Path(DEFAULT_CONFIG)
    if config_path is not None:
        try:
            data = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{config_path}: cannot read config: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_path}: not valid TOML: {exc}") from exc
        base = config_path.resolve().parent
        for key in ("state_dir", "mappings_dir"):
            if key in data and not Path(data[key]).is_absolute():
                data[key] = str(base / data[key])
        watch = (data.get("sync") or {}).get("watch_dir")
        if watch and not Path(watch).is_absolute():
            data["sync"]["watch_dir"] = str(base / watch)
    if fhir_url or env.get("ADAPTER_FHIR_URL"):
        data["fhir_url"] = fhir_url or env["ADAPTER_FHIR_URL"]
    if state_dir or env.get("ADAPTER_STATE_DIR"):
        data["state_dir"] = str(state_dir or env["ADAPTER_STATE_DIR"])
    if env.get("ADAPTER_MAPPINGS_DIR"):
        data["mappings_dir"] = env["ADAPTER_MAPPINGS_DIR"]
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        where = config_path or "settings"
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{where}: {details}") from exc
    settings.fhir_url = settings.fhir_url.rstrip("/")
    return settings
