"""The local eventing plane: does on one machine what Knative's KafkaSource and PingSource do.

It reads the same `infra/knative/` manifests the cluster uses (`manifests`), resolves sinks to
local functions or KafkaSinks (`destinations`), and runs each source faithfully to
`docs/knative-eventing.md`: record → CloudEvent mapping (`records`), binary HTTP
delivery (`senders`), retries/backoff/dead letters (`retry_policy`, `delivery`), ordered or
unordered dispatch with contiguous offset commits (`kafka_source`, `offsets`), cron ticks
(`cron`, `ping_source`). Run it with `python -m local.eventing`.
"""

from local.eventing.config import EventingSettings
from local.eventing.destinations import (
    EventingTopology,
    SinkResolutionError,
    resolve_topology,
)
from local.eventing.manifests import EventingManifests, ManifestError, load_manifests
from local.eventing.plane import EventingPlane
from local.eventing.telemetry import EventingMetrics

__all__ = [
    "EventingManifests",
    "EventingMetrics",
    "EventingPlane",
    "EventingSettings",
    "EventingTopology",
    "ManifestError",
    "SinkResolutionError",
    "load_manifests",
    "resolve_topology",
]
