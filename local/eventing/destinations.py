"""Where each source's events go on this machine (sink resolution).

On the cluster Knative resolves a `ref` to the addressable's `status.address.url`. Locally:
- a Knative (or core) `Service` named N → env `<N upper, '-'→'_'>_FUNCTION_URL`, else the
  default of the matching `shared.config.Settings` field (`price_function_url`, …), else an
  error at startup; a comma-separated list there names the service's replicas (pods on a
  cluster), and each event goes to the replica with the fewest events in flight;
- a `KafkaSink` → the KafkaSink declared in the same manifests (events are produced to its
  topic, knative-eventing.md c);
- a `uri` is used as is; `ref` + `uri` resolves the URI against the ref's URL (Knative does).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urljoin

from local.eventing.manifests import (
    Destination,
    EventingManifests,
    KafkaSinkManifest,
    KafkaSourceManifest,
    ManifestError,
    PingSourceManifest,
)

SERVICE_API_VERSIONS = ("serving.knative.dev/v1", "v1")


@dataclass(frozen=True)
class HttpEndpoint:
    """An HTTP sink: the event is POSTed here in binary mode (to one of `replicas` if set)."""

    url: str
    replicas: tuple[str, ...] = ()  # every replica's URL, `url` first; empty for a single one

    @property
    def urls(self) -> tuple[str, ...]:
        """Where events may go: the replicas, or `url` alone."""
        return self.replicas or (self.url,)

    @property
    def address(self) -> str:
        return ",".join(self.urls)


@dataclass(frozen=True)
class KafkaSinkEndpoint:
    """A KafkaSink: the event is produced to `sink.topic` (binary or structured)."""

    sink: KafkaSinkManifest

    @property
    def address(self) -> str:
        return self.sink.address


ResolvedDestination = HttpEndpoint | KafkaSinkEndpoint


@dataclass(frozen=True)
class ResolvedKafkaSource:
    """A KafkaSource with its sink and dead-letter sink resolved."""

    manifest: KafkaSourceManifest
    sink: ResolvedDestination
    dead_letter_sink: ResolvedDestination | None


@dataclass(frozen=True)
class ResolvedPingSource:
    """A PingSource with its sink resolved."""

    manifest: PingSourceManifest
    sink: ResolvedDestination


@dataclass(frozen=True)
class EventingTopology:
    """Everything the plane runs, ready to start."""

    kafka_sources: tuple[ResolvedKafkaSource, ...]
    ping_sources: tuple[ResolvedPingSource, ...]


class SinkResolutionError(ManifestError):
    """A sink cannot be resolved locally (missing env variable, unknown KafkaSink, unsupported kind)."""


def function_url_variable(service_name: str) -> str:
    """`price` → `PRICE_FUNCTION_URL`, `top-100` → `TOP_100_FUNCTION_URL`."""
    return f"{service_name.upper().replace('-', '_')}_FUNCTION_URL"


def default_function_urls() -> dict[str, str]:
    """Defaults of `shared.config.Settings.*_function_url`, keyed by env variable name."""
    from shared.config import Settings

    return {
        name.upper(): str(info.default)
        for name, info in Settings.model_fields.items()
        if name.endswith("_function_url") and info.default
    }


def resolve_destination(
    destination: Destination,
    manifests: EventingManifests,
    environ: Mapping[str, str],
    defaults: Mapping[str, str] | None = None,
) -> ResolvedDestination:
    """Resolve one Destination; raise `SinkResolutionError` with a clear reason."""
    defaults = default_function_urls() if defaults is None else defaults
    ref = destination.ref
    if ref is None:
        return HttpEndpoint(url=str(destination.uri))
    if ref.kind == "KafkaSink" and ref.api_version.startswith("eventing.knative.dev/"):
        sink = manifests.kafka_sink(ref.namespace, ref.name)
        if sink is None:
            raise SinkResolutionError(
                [f"KafkaSink {ref.namespace}/{ref.name} is referenced but not declared in the manifests"]
            )
        if destination.uri:
            raise SinkResolutionError(
                [f"KafkaSink {ref.namespace}/{ref.name}: a uri next to a KafkaSink ref is not supported"]
            )
        return KafkaSinkEndpoint(sink=sink)
    if ref.kind == "Service" and ref.api_version in SERVICE_API_VERSIONS:
        variable = function_url_variable(ref.name)
        urls = [u.strip() for u in (environ.get(variable) or defaults.get(variable) or "").split(",") if u.strip()]
        if not urls:
            raise SinkResolutionError(
                [f"Service {ref.namespace}/{ref.name}: set {variable} to the URL of the locally running function"]
            )
        if destination.uri:
            urls = [urljoin(url.rstrip("/") + "/", destination.uri) for url in urls]
        return HttpEndpoint(url=urls[0], replicas=tuple(urls) if len(urls) > 1 else ())
    raise SinkResolutionError(
        [
            (
                f"{ref.kind} {ref.namespace}/{ref.name} ({ref.api_version}): the local plane resolves only "
                "Knative Services (via <NAME>_FUNCTION_URL), KafkaSinks and plain uri sinks"
            )
        ]
    )


def resolve_topology(
    manifests: EventingManifests,
    environ: Mapping[str, str],
    defaults: Mapping[str, str] | None = None,
) -> EventingTopology:
    """Resolve every source's sinks; all problems are reported together."""
    defaults = default_function_urls() if defaults is None else defaults
    problems: list[str] = []

    def resolve(destination: Destination | None, label: str) -> ResolvedDestination | None:
        if destination is None:
            return None
        try:
            return resolve_destination(destination, manifests, environ, defaults)
        except SinkResolutionError as exc:
            problems.extend(f"{label}: {problem}" for problem in exc.problems)
            return None

    kafka_sources = []
    for kafka_source in manifests.kafka_sources:
        label = f"{kafka_source.origin}: KafkaSource {kafka_source.namespace}/{kafka_source.name}"
        sink = resolve(kafka_source.sink, f"{label} spec.sink")
        dead_letter = resolve(kafka_source.dead_letter_sink, f"{label} spec.delivery.deadLetterSink")
        if sink is not None:
            kafka_sources.append(ResolvedKafkaSource(kafka_source, sink, dead_letter))
    ping_sources = []
    for ping_source in manifests.ping_sources:
        label = f"{ping_source.origin}: PingSource {ping_source.namespace}/{ping_source.name}"
        sink = resolve(ping_source.sink, f"{label} spec.sink")
        if sink is not None:
            ping_sources.append(ResolvedPingSource(ping_source, sink))
    if problems:
        raise SinkResolutionError(problems)
    return EventingTopology(tuple(kafka_sources), tuple(ping_sources))
