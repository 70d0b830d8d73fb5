"""Settings of the local eventing plane, read from environment variables.

| Variable | Default | Meaning |
|---|---|---|
| `EVENTING_MANIFESTS_DIR` | `infra/knative/base` of this repository | directory of the manifests |
| `EVENTING_NAMESPACE` | `default` | namespace of resources without `metadata.namespace` |
| `KAFKA_BOOTSTRAP_SERVERS` | as `shared.config.Settings` (`localhost:9092`) | replaces every `spec.bootstrapServers` |
| `EVENTING_HOST` / `EVENTING_PORT` | `127.0.0.1` / `8089` | GET /health and /metrics (0 = any free port) |
| `EVENTING_COMMIT_INTERVAL_SECONDS` | `5` | periodic offset commits (Knative: 5000 ms) |
| `EVENTING_SESSION_TIMEOUT_MS` | `10000` | consumer group session timeout |
| `EVENTING_SHUTDOWN_GRACE_SECONDS` | `10` | how long in-flight events may finish on stop |
| `EVENTING_PING_JITTER_MS` | `500` | each tick sleeps random [0, this) ms first (Knative: 0–499); 0 disables |
| `EVENTING_PING_MAX_IN_FLIGHT` | `2` | sends per PingSource still running before further ticks are skipped |
| `EVENTING_PING_TIMEOUT_SECONDS` | `30` | per-attempt timeout of a PingSource send |
| `<SERVICE>_FUNCTION_URL` | see `shared.config.Settings` | URL of the local function behind a Service sink |
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.config import Settings

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MANIFESTS_DIR = REPOSITORY_ROOT / "infra" / "knative" / "base"


class EventingSettings(BaseSettings):
    """Process settings of the plane; tests construct it with explicit values."""

    model_config = SettingsConfigDict(env_prefix="EVENTING_", extra="ignore", frozen=True, populate_by_name=True)

    manifests_dir: Path = DEFAULT_MANIFESTS_DIR
    namespace: str = "default"
    kafka_bootstrap_servers: str = Field(
        default_factory=lambda: str(Settings.model_fields["kafka_bootstrap_servers"].default),
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "kafka_bootstrap_servers"),
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8089, ge=0, le=65535)
    commit_interval_seconds: float = Field(default=5.0, gt=0)
    session_timeout_ms: int = Field(default=10_000, ge=1000)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    ping_jitter_ms: int = Field(default=500, ge=0)
    ping_max_in_flight: int = Field(default=2, ge=1)
    ping_timeout_seconds: float = Field(default=30.0, gt=0)
