"""Read the cluster's eventing manifests (KafkaSource, PingSource, KafkaSink) from a directory.

Every `*.yaml`/`*.yml` file of the directory is read as multi-document YAML (a kustomize base
is plain YAML). Kinds other than the three are ignored, except that a `Kustomization`'s
`namespace:` is applied to every resource, as `kubectl apply -k` would. Each resource is validated the way
Knative's webhook would and turned into a typed, immutable description; all problems of all
files are reported together in one `ManifestError`.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeGuard, TypeVar

import yaml

from local.eventing.cloudevent import CONTEXT_ATTRIBUTES, is_valid_extension_name
from local.eventing.cron import CronError, CronSchedule, parse_schedule
from local.eventing.records import KEY_TYPES, KafkaKeyType
from local.eventing.retry_policy import (
    DeliverySpecError,
    RetryPolicy,
    policy_from_delivery_spec,
)

SOURCES_GROUP = "sources.knative.dev"
KAFKA_SOURCE_VERSIONS = ("v1beta1", "v1")
PING_SOURCE_VERSIONS = ("v1", "v1beta2")  # v1beta2 is still served (deprecated)
KAFKA_SINK_API_VERSION = "eventing.knative.dev/v1alpha1"
KEY_TYPE_LABEL = "kafkasources.sources.knative.dev/key-type"

InitialOffset = Literal["latest", "earliest"]
INITIAL_OFFSETS: tuple[InitialOffset, ...] = ("latest", "earliest")
Ordering = Literal["ordered", "unordered"]
ORDERINGS: tuple[Ordering, ...] = ("ordered", "unordered")
ContentMode = Literal["binary", "structured"]
CONTENT_MODES: tuple[ContentMode, ...] = ("binary", "structured")


class ManifestError(ValueError):
    """One or more manifests are invalid; `problems` lists each as 'file: Kind ns/name: reason'."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("invalid eventing manifests:\n  - " + "\n  - ".join(self.problems))


@dataclass(frozen=True)
class ObjectReference:
    """`ref` of a Destination (duckv1.KReference)."""

    api_version: str
    kind: str
    name: str
    namespace: str


@dataclass(frozen=True)
class Destination:
    """A sink: a reference to an addressable, a URI, or a reference plus a relative URI."""

    ref: ObjectReference | None = None
    uri: str | None = None


@dataclass(frozen=True)
class KafkaSourceManifest:
    """A KafkaSource, validated, with Knative's defaults applied."""

    namespace: str
    name: str
    topics: tuple[str, ...]
    consumer_group: str
    initial_offset: InitialOffset
    ordering: Ordering
    consumers: int
    key_type: KafkaKeyType
    sink: Destination
    retry_policy: RetryPolicy
    dead_letter_sink: Destination | None
    ce_overrides: Mapping[str, str] = field(default_factory=dict)
    origin: str = ""

    @property
    def cloudevent_source_prefix(self) -> str:
        """`/apis/v1/namespaces/NS/kafkasources/NAME` (the synthesised `source` is this + '#topic')."""
        return f"/apis/v1/namespaces/{self.namespace}/kafkasources/{self.name}"


@dataclass(frozen=True)
class PingSourceManifest:
    """A PingSource, validated."""

    namespace: str
    name: str
    schedule: CronSchedule
    data: bytes | None
    content_type: str | None
    sink: Destination
    ce_overrides: Mapping[str, str] = field(default_factory=dict)
    origin: str = ""

    @property
    def cloudevent_source(self) -> str:
        """`/apis/v1/namespaces/NS/pingsources/NAME`."""
        return f"/apis/v1/namespaces/{self.namespace}/pingsources/{self.name}"


@dataclass(frozen=True)
class KafkaSinkManifest:
    """A KafkaSink: where HTTP CloudEvents addressed to it are produced."""

    namespace: str
    name: str
    topic: str
    content_mode: ContentMode
    origin: str = ""

    @property
    def address(self) -> str:
        """The cluster address Knative publishes for it (used as `knativeerrordest`)."""
        return f"http://kafka-sink-ingress.knative-eventing.svc.cluster.local/{self.namespace}/{self.name}"


@dataclass(frozen=True)
class EventingManifests:
    """Everything the local plane runs, as read from one manifests directory."""

    kafka_sources: tuple[KafkaSourceManifest, ...] = ()
    ping_sources: tuple[PingSourceManifest, ...] = ()
    kafka_sinks: tuple[KafkaSinkManifest, ...] = ()

    def kafka_sink(self, namespace: str, name: str) -> KafkaSinkManifest | None:
        """The KafkaSink `namespace/name`, if declared."""
        for sink in self.kafka_sinks:
            if sink.namespace == namespace and sink.name == name:
                return sink
        return None


_Manifest = KafkaSourceManifest | PingSourceManifest | KafkaSinkManifest
# (namespace, name, metadata, spec, errors, origin) → the manifest, or None with `errors` said why
_Parser = Callable[[str, str, dict, dict, list[str], str], _Manifest | None]


def default_consumer_group(namespace: str, name: str) -> str:
    """`knative-kafka-source-<uuid>`; the cluster uses the object's UID, we use a stable UUIDv5."""
    stable = uuid.uuid5(uuid.NAMESPACE_URL, f"kafkasources.{SOURCES_GROUP}/{namespace}/{name}")
    return f"knative-kafka-source-{stable}"


def load_manifests(directory: str | Path, *, default_namespace: str = "default") -> EventingManifests:
    """Load and validate every KafkaSource, PingSource and KafkaSink under `directory`.

    Raises `ManifestError` listing every problem (unreadable YAML, invalid specs, duplicates).
    """
    root = Path(directory)
    if not root.is_dir():
        raise ManifestError([f"{root}: manifests directory does not exist"])
    problems: list[str] = []
    documents: list[tuple[str, dict[str, Any]]] = []
    for path in sorted([*root.glob("*.yaml"), *root.glob("*.yml")]):
        try:
            loaded = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except (yaml.YAMLError, OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path.name}: cannot read YAML: {exc}")
            continue
        for index, document in enumerate(loaded, start=1):
            origin = f"{path.name}#{index}"
            for item in _expand_lists(document):
                if not isinstance(item, dict):
                    problems.append(f"{origin}: document is not a mapping")
                    continue
                documents.append((origin, item))
    forced_namespace = None
    for _origin, document in documents:
        if document.get("kind") == "Kustomization" and isinstance(document.get("namespace"), str):
            forced_namespace = document["namespace"]
    return parse_documents(
        documents, default_namespace=default_namespace, forced_namespace=forced_namespace, problems=problems
    )


def parse_documents(
    documents: list[tuple[str, dict[str, Any]]],
    *,
    default_namespace: str = "default",
    forced_namespace: str | None = None,
    problems: list[str] | None = None,
) -> EventingManifests:
    """Validate already-parsed manifest documents (origin label, document) into `EventingManifests`.

    `forced_namespace` (a Kustomization's `namespace:`) replaces every resource's namespace;
    otherwise `metadata.namespace` or `default_namespace` applies.
    """
    problems = [] if problems is None else problems
    kafka_sources: list[KafkaSourceManifest] = []
    ping_sources: list[PingSourceManifest] = []
    kafka_sinks: list[KafkaSinkManifest] = []
    seen: dict[tuple[str, str, str], str] = {}
    for origin, document in documents:
        api_version = str(document.get("apiVersion") or "")
        kind = str(document.get("kind") or "")
        group, _, version = api_version.rpartition("/")
        parser: _Parser
        if group == SOURCES_GROUP and kind == "KafkaSource":
            if version not in KAFKA_SOURCE_VERSIONS:
                problems.append(
                    f"{origin}: KafkaSource apiVersion {api_version} is not served (use {SOURCES_GROUP}/v1beta1 or v1)"
                )
                continue
            parser = _parse_kafka_source
        elif group == SOURCES_GROUP and kind == "PingSource":
            if version not in PING_SOURCE_VERSIONS:
                problems.append(f"{origin}: PingSource apiVersion {api_version} is not served (use {SOURCES_GROUP}/v1)")
                continue
            parser = _parse_ping_source
        elif kind == "KafkaSink" and group == "eventing.knative.dev":
            if api_version != KAFKA_SINK_API_VERSION:
                problems.append(
                    f"{origin}: KafkaSink apiVersion {api_version} is not served (use {KAFKA_SINK_API_VERSION})"
                )
                continue
            parser = _parse_kafka_sink
        else:
            continue  # other kinds (Services, KafkaTopics, Kustomization, …) are not the plane's business

        metadata = document.get("metadata")
        if not isinstance(metadata, dict):
            metadata = {}  # so no metadata.name, reported just below
        name = metadata.get("name")
        if not isinstance(name, str) or not name:
            problems.append(f"{origin}: {kind} has no metadata.name")
            continue
        namespace = forced_namespace or metadata.get("namespace") or default_namespace
        label = f"{origin}: {kind} {namespace}/{name}"
        identity = (kind, namespace, name)
        if identity in seen:
            problems.append(f"{label}: duplicate of {seen[identity]}")
            continue
        seen[identity] = origin
        spec = document.get("spec")
        if not isinstance(spec, dict):
            problems.append(f"{label}: spec is missing or not a mapping")
            continue
        errors: list[str] = []
        parsed = parser(namespace, name, metadata, spec, errors, origin)
        if errors:
            problems.extend(f"{label}: {error}" for error in errors)
        elif isinstance(parsed, KafkaSourceManifest):
            kafka_sources.append(parsed)
        elif isinstance(parsed, PingSourceManifest):
            ping_sources.append(parsed)
        elif isinstance(parsed, KafkaSinkManifest):
            kafka_sinks.append(parsed)
    if problems:
        raise ManifestError(problems)
    return EventingManifests(tuple(kafka_sources), tuple(ping_sources), tuple(kafka_sinks))


def _expand_lists(document: Any) -> Iterator[Any]:
    if document is None:
        return
    if isinstance(document, dict) and document.get("kind") == "List" and isinstance(document.get("items"), list):
        yield from document["items"]
    else:
        yield document


# --- per kind ---------------------------------------------------------------------------------


def _parse_kafka_source(
    namespace: str, name: str, metadata: dict, spec: dict, errors: list[str], origin: str
) -> KafkaSourceManifest | None:
    bootstrap = spec.get("bootstrapServers")
    if not _is_string_list(bootstrap):
        errors.append("spec.bootstrapServers is required (a non-empty list of host:port)")
    topics = spec.get("topics")
    if not _is_string_list(topics):
        errors.append("spec.topics is required (a non-empty list of topic names)")
        topics = []
    consumer_group = spec.get("consumerGroup") or default_consumer_group(namespace, name)
    if not isinstance(consumer_group, str):
        errors.append("spec.consumerGroup must be a string")
    requested_offset = spec.get("initialOffset") or "latest"
    initial_offset = _one_of(requested_offset, INITIAL_OFFSETS)
    if initial_offset is None:
        errors.append(f"spec.initialOffset must be latest or earliest, got {requested_offset!r}")
    requested_ordering = spec.get("ordering") or "ordered"
    ordering = _one_of(requested_ordering, ORDERINGS)
    if ordering is None:
        errors.append(f"spec.ordering must be ordered or unordered, got {requested_ordering!r}")
    consumers = spec.get("consumers", 1)
    if consumers is None:
        consumers = 1
    if isinstance(consumers, bool) or not isinstance(consumers, int) or consumers < 1:
        errors.append(f"spec.consumers must be an integer >= 1, got {consumers!r}")
    labels = metadata.get("labels") or {}
    requested_key_type = labels.get(KEY_TYPE_LABEL, "string") if isinstance(labels, dict) else "string"
    key_type = _one_of(requested_key_type, KEY_TYPES)
    if key_type is None:
        errors.append(f"label {KEY_TYPE_LABEL} must be one of {', '.join(KEY_TYPES)}, got {requested_key_type!r}")
    sink = _destination(spec.get("sink"), "spec.sink", namespace, errors, required=True)
    delivery = spec.get("delivery")
    policy = None
    dead_letter = None
    try:
        policy = policy_from_delivery_spec(delivery)
    except DeliverySpecError as exc:
        errors.append(str(exc))
    if isinstance(delivery, dict) and delivery.get("deadLetterSink") is not None:
        dead_letter = _destination(
            delivery["deadLetterSink"], "spec.delivery.deadLetterSink", namespace, errors, required=True
        )
    overrides = _ce_overrides(spec.get("ceOverrides"), errors)
    if errors or sink is None or policy is None or initial_offset is None or ordering is None or key_type is None:
        return None
    return KafkaSourceManifest(
        namespace=namespace,
        name=name,
        topics=tuple(topics),
        consumer_group=consumer_group,
        initial_offset=initial_offset,
        ordering=ordering,
        consumers=consumers,
        key_type=key_type,
        sink=sink,
        retry_policy=policy,
        dead_letter_sink=dead_letter,
        ce_overrides=overrides,
        origin=origin,
    )


def _parse_ping_source(
    namespace: str, name: str, metadata: dict, spec: dict, errors: list[str], origin: str
) -> PingSourceManifest | None:
    schedule = None
    try:
        schedule = parse_schedule(spec.get("schedule"), spec.get("timezone"))
    except CronError as exc:
        errors.append(f"spec.schedule: {exc}")
    content_type = spec.get("contentType")
    if content_type is not None and not isinstance(content_type, str):
        errors.append("spec.contentType must be a string")
    data: bytes | None = None
    if spec.get("data") is not None and spec.get("dataBase64") is not None:
        errors.append("spec.data and spec.dataBase64 are mutually exclusive")
    elif spec.get("data") is not None:
        text = spec["data"]
        if not isinstance(text, str):
            errors.append("spec.data must be a string (quote JSON in the manifest)")
        else:
            data = text.encode("utf-8")
            if content_type == "application/json" and not _is_json_object(text):
                errors.append("spec.data must be a JSON object when spec.contentType is application/json")
    elif spec.get("dataBase64") is not None:
        try:
            data = base64.b64decode(str(spec["dataBase64"]), validate=True)
        except (binascii.Error, ValueError):
            errors.append("spec.dataBase64 is not valid base64")
    sink = _destination(spec.get("sink"), "spec.sink", namespace, errors, required=True)
    overrides = _ce_overrides(spec.get("ceOverrides"), errors)
    if errors or sink is None or schedule is None:
        return None
    return PingSourceManifest(
        namespace=namespace,
        name=name,
        schedule=schedule,
        data=data,
        content_type=content_type,
        sink=sink,
        ce_overrides=overrides,
        origin=origin,
    )


def _parse_kafka_sink(
    namespace: str, name: str, metadata: dict, spec: dict, errors: list[str], origin: str
) -> KafkaSinkManifest | None:
    topic = spec.get("topic")
    if not isinstance(topic, str) or not topic:
        errors.append("spec.topic is required")
    if not _is_string_list(spec.get("bootstrapServers")):
        errors.append("spec.bootstrapServers is required (a non-empty list of host:port)")
    requested_mode = spec.get("contentMode") or "binary"
    content_mode = _one_of(requested_mode, CONTENT_MODES)
    if content_mode is None:
        errors.append(f"spec.contentMode must be binary or structured, got {requested_mode!r}")
    if errors or not isinstance(topic, str) or content_mode is None:
        return None
    return KafkaSinkManifest(namespace=namespace, name=name, topic=topic, content_mode=content_mode, origin=origin)


# --- shared pieces ------------------------------------------------------------------------------


def _destination(value: Any, where: str, namespace: str, errors: list[str], *, required: bool) -> Destination | None:
    if value is None:
        if required:
            errors.append(f"{where} is required (ref or uri)")
        return None
    if not isinstance(value, dict):
        errors.append(f"{where} must be a mapping with ref and/or uri")
        return None
    ref_value, uri = value.get("ref"), value.get("uri")
    if uri is not None and (not isinstance(uri, str) or not uri):
        errors.append(f"{where}.uri must be a non-empty string")
        return None
    ref = None
    if ref_value is not None:
        if not isinstance(ref_value, dict):
            errors.append(f"{where}.ref must be a mapping")
            return None
        missing = [key for key in ("apiVersion", "kind", "name") if not ref_value.get(key)]
        if missing:
            errors.append(f"{where}.ref is missing {', '.join(missing)}")
            return None
        ref = ObjectReference(
            api_version=str(ref_value["apiVersion"]),
            kind=str(ref_value["kind"]),
            name=str(ref_value["name"]),
            namespace=str(ref_value.get("namespace") or namespace),
        )
    if ref is None:
        if uri is None:
            errors.append(f"{where} needs ref or uri")
            return None
        if "://" not in uri:
            errors.append(f"{where}.uri {uri!r} must be absolute when there is no ref")
            return None
    return Destination(ref=ref, uri=uri)


def _ce_overrides(value: Any, errors: list[str]) -> dict[str, str]:
    if value is None:
        return {}
    extensions = value.get("extensions") if isinstance(value, dict) else None
    if not isinstance(value, dict) or (extensions is not None and not isinstance(extensions, dict)):
        errors.append("spec.ceOverrides.extensions must be a mapping of name: value")
        return {}
    result: dict[str, str] = {}
    for name, extension_value in (extensions or {}).items():
        if not isinstance(name, str) or not is_valid_extension_name(name):
            errors.append(f"spec.ceOverrides.extensions: {name!r} is not a valid CloudEvents attribute name ([a-z0-9])")
        elif name in CONTEXT_ATTRIBUTES or name == "data":
            errors.append(f"spec.ceOverrides.extensions: {name!r} is a reserved CloudEvents attribute")
        elif not isinstance(extension_value, str):
            errors.append(f"spec.ceOverrides.extensions.{name} must be a string (quote it in YAML)")
        else:
            result[name] = extension_value
    return result


_Option = TypeVar("_Option", bound=str)


def _one_of(value: Any, options: tuple[_Option, ...]) -> _Option | None:
    """`value` as the one of `options` it equals (typed as their Literal), or None."""
    return next((option for option in options if option == value), None)


def _is_string_list(value: Any) -> TypeGuard[list[str]]:
    return isinstance(value, list) and bool(value) and all(isinstance(item, str) and item for item in value)


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False
