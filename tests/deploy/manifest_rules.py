"""Offline validation of the deployment manifests: CRD schemas plus the admission-webhook rules.

A cluster validates a resource twice: the API server against the CRD's openAPIV3Schema
(strict field validation rejects unknown fields), and the component's admission webhook
against rules the schema cannot express. Both are reproduced here from
`tests/fixtures/k8s-schemas/` and `docs/knative-eventing.md` (section keys
b, d, e, f in the messages), so a manifest that fails here would fail on `kubectl apply`.

Every check returns a list of human-readable problems; empty means valid.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import zoneinfo
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from croniter import croniter

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = Path(os.environ.get("K8S_SCHEMAS_DIR", ROOT / "tests" / "fixtures" / "k8s-schemas"))
FUNC_YAML_SCHEMA = SCHEMAS / "func_yaml-schema.json"
FUNC_SPEC_VERSION = "0.36.0"

# Served CRD versions of the releases we deploy (k8s-schemas README "Served API versions"),
# mapped to their openapi extract. A version not listed here is not served.
CRD_SCHEMAS: dict[tuple[str, str], str] = {
    ("serving.knative.dev/v1", "Service"): "serving.knative.dev_service_v1.json",
    ("serving.knative.dev/v1", "Configuration"): "serving.knative.dev_configuration_v1.json",
    ("sources.knative.dev/v1", "KafkaSource"): "sources.knative.dev_kafkasource_v1.json",
    ("sources.knative.dev/v1beta1", "KafkaSource"): "sources.knative.dev_kafkasource_v1beta1.json",
    ("eventing.knative.dev/v1alpha1", "KafkaSink"): "eventing.knative.dev_kafkasink_v1alpha1.json",
    ("sources.knative.dev/v1", "PingSource"): "sources.knative.dev_pingsource_v1.json",
    ("sources.knative.dev/v1", "ContainerSource"): "sources.knative.dev_containersource_v1.json",
    ("sources.knative.dev/v1", "SinkBinding"): "sources.knative.dev_sinkbinding_v1.json",
    ("eventing.knative.dev/v1", "Broker"): "eventing.knative.dev_broker_v1.json",
    ("eventing.knative.dev/v1", "Trigger"): "eventing.knative.dev_trigger_v1.json",
    ("eventing.knative.dev/v1beta3", "EventType"): "eventing.knative.dev_eventtype_v1beta3.json",
    ("kafka.strimzi.io/v1", "KafkaTopic"): "strimzi-1.2.0_kafka.strimzi.io_kafkatopic_v1.json",
    ("kafka.strimzi.io/v1", "Kafka"): "strimzi-1.2.0_kafka.strimzi.io_kafka_v1.json",
    ("kafka.strimzi.io/v1", "KafkaNodePool"): "strimzi-1.2.0_kafka.strimzi.io_kafkanodepool_v1.json",
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh_scaledobject_v1alpha1.json",
    ("monitoring.coreos.com/v1", "PodMonitor"): "monitoring.coreos.com_podmonitor_v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com_prometheusrule_v1.json",
}
# Core kinds we use, which k8s-schemas does not carry: structure checked by hand below.
CORE_KINDS = {
    ("v1", "Namespace"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("v1", "PersistentVolumeClaim"),
    ("apps/v1", "Deployment"),
    ("batch/v1", "Job"),
}
CLUSTER_SCOPED = {"Namespace"}

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")

SERVING_AUTOSCALING = "autoscaling.knative.dev/"
# Current KEDA family, built into eventing-kafka-broker (knowledge d.1).
KEDA_CURRENT = "autoscaling.eventing.knative.dev/"
KEDA_CURRENT_KEYS = {
    "class",
    "min-scale",
    "max-scale",
    "polling-interval",
    "cooldown-period",
    "lag-threshold",
    "activation-lag-threshold",
}
# Legacy family of the separate eventing-autoscaler-keda controller.
KEDA_LEGACY = ("autoscaling.knative.dev/", "keda.autoscaling.knative.dev/")


# --------------------------------------------------------------------------- loading


def kubectl() -> str | None:
    """Path of kubectl, or None."""
    return shutil.which("kubectl")


def render(kustomization_dir: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize DIR`, parsed; raises with kustomize's message on failure."""
    result = subprocess.run(
        [kubectl() or "kubectl", "kustomize", str(kustomization_dir)], capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {kustomization_dir} failed:\n{result.stderr}")
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    """Every non-empty document of a multi-document YAML file."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def kustomization_dirs() -> list[Path]:
    """Every kustomization under infra/ that renders on its own (components excluded)."""
    dirs = []
    for path in sorted((ROOT / "infra").rglob("kustomization.yaml")):
        if yaml.safe_load(path.read_text()).get("kind") != "Component":
            dirs.append(path.parent)
    return dirs


def func_yaml_paths() -> list[Path]:
    """functions/*/func.yaml."""
    return sorted((ROOT / "functions").glob("*/func.yaml"))


def load_func_yaml(path: Path) -> dict[str, Any]:
    """func.yaml as the func CLI sees it: YAML timestamps stay RFC 3339 strings."""
    return _stringify_timestamps(yaml.safe_load(path.read_text()))


def _stringify_timestamps(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stringify_timestamps(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringify_timestamps(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def doc_id(doc: dict[str, Any]) -> str:
    """`Kind namespace/name` for messages."""
    meta = doc.get("metadata") or {}
    return f"{doc.get('kind')} {meta.get('namespace', '-')}/{meta.get('name')}"


# --------------------------------------------------------------------------- CRD schemas


@cache
def strict_validator(schema_file: str) -> jsonschema.Draft7Validator:
    """A validator for one CRD version that, like `kubectl --validate=strict`, rejects unknown fields."""
    schema = json.loads((SCHEMAS / "openapi" / schema_file).read_text())
    # Some CRDs leave the object envelope out of their schema; the API server always allows it.
    envelope = {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}}
    schema.setdefault("properties", {})
    for field, field_schema in envelope.items():
        schema["properties"].setdefault(field, field_schema)
    return jsonschema.Draft7Validator(_kubernetes_to_jsonschema(schema))


def _kubernetes_to_jsonschema(node: Any) -> Any:
    """Translate the Kubernetes structural-schema extensions a JSON Schema validator ignores."""
    if isinstance(node, list):
        return [_kubernetes_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _kubernetes_to_jsonschema(v) for k, v in node.items()}
    if node.get("x-kubernetes-int-or-string") and "anyOf" not in node:
        node.pop("type", None)
        node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and isinstance(node.get("type"), str):
        node["type"] = [node["type"], "null"]
    is_object = node.get("type") == "object" or node.get("type") == ["object", "null"]
    if (
        is_object
        and "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        node["additionalProperties"] = False
    return node


def schema_errors(doc: dict[str, Any]) -> list[str]:
    """apiVersion/kind served, and the document valid against its CRD schema (strictly)."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in CORE_KINDS:
        return _core_errors(doc)
    schema_file = CRD_SCHEMAS.get(key)  # type: ignore[arg-type]
    if schema_file is None:
        served = sorted(v for v, k in CRD_SCHEMAS if k == doc.get("kind"))
        hint = f"served versions: {', '.join(served)}" if served else "unknown kind"
        return [f"{doc_id(doc)}: apiVersion {key[0]} kind {key[1]} is not served ({hint})"]
    body = copy.deepcopy(doc)
    body.pop("status", None)
    errors = []
    for err in sorted(strict_validator(schema_file).iter_errors(body), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in err.absolute_path) or "(root)"
        errors.append(f"{doc_id(doc)}: schema: {where}: {err.message}")
    return errors


def _core_errors(doc: dict[str, Any]) -> list[str]:
    kind, spec = doc["kind"], doc.get("spec") or {}
    errors = []
    if kind == "Deployment":
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not selector or any(labels.get(k) != v for k, v in selector.items()):
            errors.append(f"{doc_id(doc)}: spec.selector.matchLabels must match the pod template labels")
    if kind in ("Deployment", "Job"):
        containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
        if not containers or any(not c.get("name") or not c.get("image") for c in containers):
            errors.append(f"{doc_id(doc)}: every container needs a name and an image")
    if kind == "Job" and (spec.get("template") or {}).get("spec", {}).get("restartPolicy") not in (
        "Never",
        "OnFailure",
    ):
        errors.append(f"{doc_id(doc)}: a Job's restartPolicy must be Never or OnFailure")
    if kind in ("ConfigMap", "Secret"):
        for section in ("data", "stringData"):
            for k, v in (doc.get(section) or {}).items():
                if not isinstance(v, str):
                    errors.append(f"{doc_id(doc)}: {section}.{k} must be a string")
    return errors


# --------------------------------------------------------------------------- metadata


def metadata_errors(doc: dict[str, Any]) -> list[str]:
    """Name syntax, namespace presence, label and annotation syntax."""
    meta = doc.get("metadata") or {}
    name, errors = meta.get("name", ""), []
    kind = doc.get("kind")
    # Knative Services (and Kubernetes Services) become DNS labels: RFC 1035, 63 chars.
    if kind == "Service":
        if not DNS1035_LABEL.match(name) or len(name) > 63:
            errors.append(f"{doc_id(doc)}: name must be an RFC 1035 label (a-z, 0-9, '-', ≤63, starts with a letter)")
    elif not DNS1123_SUBDOMAIN.match(name) or len(name) > 253:
        errors.append(
            f"{doc_id(doc)}: name must be a DNS-1123 subdomain (a Kafka topic name that is not goes in spec.topicName)"
        )
    if kind not in CLUSTER_SCOPED and not meta.get("namespace"):
        errors.append(f"{doc_id(doc)}: namespace is not set")
    errors += _label_errors(doc_id(doc), "metadata", meta)
    template_meta = ((doc.get("spec") or {}).get("template") or {}).get("metadata") or {}
    errors += _label_errors(doc_id(doc), "spec.template.metadata", template_meta)
    return errors


def _label_errors(where: str, path: str, meta: dict[str, Any]) -> list[str]:
    errors = []
    for key, value in (meta.get("labels") or {}).items():
        if not LABEL_KEY.match(key) or not isinstance(value, str) or not LABEL_VALUE.match(value):
            errors.append(f"{where}: {path}.labels {key}={value!r} is not a valid label")
    for key, value in (meta.get("annotations") or {}).items():
        if not isinstance(value, str):
            errors.append(f"{where}: {path}.annotations[{key}] must be a string, got {type(value).__name__}")
    return errors


# --------------------------------------------------------------------------- webhook rules


def webhook_errors(doc: dict[str, Any]) -> list[str]:
    """The admission-webhook rules the CRD schemas do not express, for one document."""
    kind, api = doc.get("kind"), doc.get("apiVersion", "")
    errors = _autoscaling_placement_errors(doc)
    if api.startswith("kafka.strimzi.io/") and api != "kafka.strimzi.io/v1":
        errors.append(f"{doc_id(doc)}: Strimzi >= 1.0 serves only kafka.strimzi.io/v1, not {api}")
    if kind == "KafkaSink" and api != "eventing.knative.dev/v1alpha1":
        errors.append(f"{doc_id(doc)}: KafkaSink exists only as eventing.knative.dev/v1alpha1")
    if kind == "KafkaSource":
        errors += kafka_source_errors(doc)
    if kind == "KafkaSink":
        errors += kafka_sink_errors(doc)
    if kind == "PingSource":
        errors += ping_source_errors(doc)
    if kind == "EventType":
        errors += event_type_errors(doc)
    if kind in ("Service", "Configuration") and api.startswith("serving.knative.dev/"):
        errors += knative_service_errors(doc)
    return errors


def _autoscaling_placement_errors(doc: dict[str, Any]) -> list[str]:
    """Serving autoscaling annotations belong under the revision template only (knowledge d.2)."""
    annotations = (doc.get("metadata") or {}).get("annotations") or {}
    misplaced = sorted(k for k in annotations if k.startswith(SERVING_AUTOSCALING))
    if misplaced and doc.get("kind") != "KafkaSource":  # KafkaSource: reported as a KEDA family problem
        return [
            f"{doc_id(doc)}: {', '.join(misplaced)} on metadata.annotations: autoscaling annotations "
            "must be put under spec.template.metadata.annotations"
        ]
    return []


def keda_family_errors(doc: dict[str, Any]) -> list[str]:
    """KafkaSource KEDA annotations: the current family only, never mixed with the legacy one (d.1)."""
    annotations = (doc.get("metadata") or {}).get("annotations") or {}
    current = {k[len(KEDA_CURRENT) :]: v for k, v in annotations.items() if k.startswith(KEDA_CURRENT)}
    legacy = sorted(k for k in annotations if k.startswith(KEDA_LEGACY))
    errors = []
    if legacy and current:
        errors.append(f"{doc_id(doc)}: mixed KEDA annotation families: {', '.join(legacy)} beside {KEDA_CURRENT}*")
    elif legacy:
        errors.append(
            f"{doc_id(doc)}: legacy eventing-autoscaler-keda annotations {', '.join(legacy)}; use {KEDA_CURRENT}*"
        )
    for key in sorted(set(current) - KEDA_CURRENT_KEYS):
        errors.append(f"{doc_id(doc)}: unknown annotation {KEDA_CURRENT}{key}")
    if "class" in current and current["class"] not in ("keda.autoscaling.knative.dev", "disabled"):
        errors.append(f"{doc_id(doc)}: {KEDA_CURRENT}class must be keda.autoscaling.knative.dev or disabled")
    numbers = {}
    for key in KEDA_CURRENT_KEYS - {"class"}:
        if key in current:
            value = current[key]
            if not isinstance(value, str) or not value.isdigit():
                errors.append(
                    f"{doc_id(doc)}: {KEDA_CURRENT}{key} must be a non-negative integer string, got {value!r}"
                )
            else:
                numbers[key] = int(value)
    if numbers.get("max-scale", 1) < 1:
        errors.append(f"{doc_id(doc)}: {KEDA_CURRENT}max-scale must be at least 1")
    if "min-scale" in numbers and "max-scale" in numbers and numbers["min-scale"] > numbers["max-scale"]:
        errors.append(f"{doc_id(doc)}: {KEDA_CURRENT}min-scale exceeds max-scale")
    return errors


# ISO-8601 duration as Knative parses it (rickb777/period): at least one component, and a
# "T" only when a time component follows.
_NUMBER = r"\d+(?:[.,]\d+)?"
ISO8601_DURATION = re.compile(
    rf"^P(?!$)(?:{_NUMBER}Y)?(?:{_NUMBER}M)?(?:{_NUMBER}W)?(?:{_NUMBER}D)?(?:T(?=\d)(?:{_NUMBER}H)?(?:{_NUMBER}M)?(?:{_NUMBER}S)?)?$"
)


def _duration_errors(where: str, value: Any) -> list[str]:
    if not isinstance(value, str) or not ISO8601_DURATION.match(value):
        return [f"{where} {value!r} is not an ISO-8601 duration (e.g. PT0.5S)"]
    return []


def delivery_errors(where: str, delivery: dict[str, Any]) -> list[str]:
    """eventing DeliverySpec rules (knowledge b.1)."""
    errors = []
    if "retry" in delivery and (not isinstance(delivery["retry"], int) or delivery["retry"] < 0):
        errors.append(f"{where}: delivery.retry must be an integer >= 0")
    if delivery.get("backoffPolicy", "exponential") not in ("exponential", "linear"):
        errors.append(f"{where}: delivery.backoffPolicy must be exponential or linear")
    for field in ("backoffDelay", "timeout"):
        if field in delivery:
            errors += _duration_errors(f"{where}: delivery.{field}", delivery[field])
    if "retryAfterMax" in delivery:
        errors.append(f"{where}: delivery.retryAfterMax needs the delivery-retryafter feature (off by default)")
    if delivery.get("format", "binary") not in ("binary", "json"):
        errors.append(f"{where}: delivery.format must be binary or json")
    dls = delivery.get("deadLetterSink")
    if dls is not None and not (dls.get("ref") or dls.get("uri")):
        errors.append(f"{where}: delivery.deadLetterSink needs a ref or a uri")
    return errors


def kafka_source_errors(doc: dict[str, Any]) -> list[str]:
    """KafkaSource webhook rules (knowledge b.7, b.8, d.1)."""
    spec, where = doc.get("spec") or {}, doc_id(doc)
    errors = keda_family_errors(doc)
    if not spec.get("bootstrapServers"):
        errors.append(f"{where}: spec.bootstrapServers is required")
    if not spec.get("topics"):
        errors.append(f"{where}: spec.topics is required")
    if spec.get("ordering", "ordered") not in ("ordered", "unordered"):
        errors.append(f"{where}: spec.ordering must be ordered or unordered, got {spec.get('ordering')!r}")
    if spec.get("initialOffset", "latest") not in ("earliest", "latest"):
        errors.append(f"{where}: spec.initialOffset must be earliest or latest, got {spec.get('initialOffset')!r}")
    if not spec.get("consumerGroup"):
        errors.append(f"{where}: set spec.consumerGroup (immutable; the default is a random name)")
    if not (spec.get("sink") or {}).get("ref") and not (spec.get("sink") or {}).get("uri"):
        errors.append(f"{where}: spec.sink needs a ref or a uri")
    if "delivery" in spec:
        errors += delivery_errors(where, spec["delivery"])
    return errors


def kafka_sink_errors(doc: dict[str, Any]) -> list[str]:
    """KafkaSink webhook rules (knowledge c)."""
    spec, where = doc.get("spec") or {}, doc_id(doc)
    errors = []
    if not spec.get("topic"):
        errors.append(f"{where}: spec.topic is required")
    if not spec.get("bootstrapServers"):
        errors.append(f"{where}: spec.bootstrapServers is required")
    if spec.get("contentMode", "binary") not in ("binary", "structured"):
        errors.append(f"{where}: spec.contentMode must be binary or structured")
    return errors


# knative/eventing pkg/apis/eventing/v1beta3/eventtype_validation.go (ValidateAttributes).
EVENT_TYPE_REQUIRED_ATTRIBUTES = ("type", "source", "specversion", "id")


def event_type_errors(doc: dict[str, Any]) -> list[str]:
    """EventType webhook rules: v1beta3 names type, source, specversion and id among its attributes."""
    spec, where = doc.get("spec") or {}, doc_id(doc)
    if doc.get("apiVersion") != "eventing.knative.dev/v1beta3":
        return [f"{where}: declare EventTypes as eventing.knative.dev/v1beta3 (spec.attributes)"]
    names = [a.get("name") for a in spec.get("attributes") or []]
    errors = (
        [
            f"{where}: spec.attributes: missing field(s): {', '.join(m for m in EVENT_TYPE_REQUIRED_ATTRIBUTES if m not in names)}"
        ]
        if any(m not in names for m in EVENT_TYPE_REQUIRED_ATTRIBUTES)
        else []
    )
    errors += [f"{where}: spec.attributes: {n!r} named twice" for n in sorted({n for n in names if names.count(n) > 1})]
    return errors


def cron_errors(schedule: Any) -> list[str]:
    """PingSource cron: robfig/cron with optional leading seconds and descriptors, no @every (e)."""
    if not isinstance(schedule, str) or not schedule.strip():
        return [f"schedule {schedule!r} is empty"]
    text = schedule.strip()
    if text.startswith("CRON_TZ=") or text.startswith("TZ="):
        return [f"schedule {schedule!r}: set spec.timezone instead of a TZ prefix"]
    if text.startswith("@"):
        if text.startswith("@every"):
            return [f"schedule {schedule!r}: @every is rejected by the PingSource webhook"]
        if text not in ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"):
            return [f"schedule {schedule!r}: unknown descriptor"]
        return []
    fields = text.split()
    if len(fields) not in (5, 6):
        return [f"schedule {schedule!r} has {len(fields)} fields; use 5, or 6 with leading seconds"]
    # robfig/cron accepts "?" for day-of-month/-week; croniter spells it "*".
    normalised = " ".join("*" if f == "?" else f for f in fields)
    if not croniter.is_valid(normalised, second_at_beginning=len(fields) == 6):
        return [f"schedule {schedule!r} does not parse as cron"]
    return []


def ping_source_errors(doc: dict[str, Any]) -> list[str]:
    """PingSource webhook rules (knowledge e)."""
    spec, where = doc.get("spec") or {}, doc_id(doc)
    errors = [f"{where}: {e}" for e in cron_errors(spec.get("schedule", "* * * * *"))]
    if "timezone" in spec:
        try:
            zoneinfo.ZoneInfo(spec["timezone"])
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            errors.append(f"{where}: spec.timezone {spec['timezone']!r} is not an IANA time zone")
    if "data" in spec and "dataBase64" in spec:
        errors.append(f"{where}: spec.data and spec.dataBase64 are mutually exclusive")
    if spec.get("contentType") == "application/json" and "data" in spec:
        try:
            parsed = json.loads(spec["data"])
        except (TypeError, ValueError):
            parsed = None
        if not isinstance(parsed, dict):
            errors.append(f"{where}: with contentType application/json, spec.data must be a JSON object")
    if not (spec.get("sink") or {}).get("ref") and not (spec.get("sink") or {}).get("uri"):
        errors.append(f"{where}: spec.sink needs a ref or a uri")
    return errors


def serving_annotation_errors(where: str, annotations: dict[str, Any]) -> list[str]:
    """Serving autoscaling annotation values (knowledge d.2)."""
    errors, values = [], {}
    aliases = {"minScale": "min-scale", "maxScale": "max-scale", "initialScale": "initial-scale"}
    for key, value in annotations.items():
        if not key.startswith(SERVING_AUTOSCALING):
            continue
        name = key[len(SERVING_AUTOSCALING) :]
        values[aliases.get(name, name)] = value
    if values.get("class", "kpa.autoscaling.knative.dev") not in (
        "kpa.autoscaling.knative.dev",
        "hpa.autoscaling.knative.dev",
    ):
        errors.append(f"{where}: autoscaling class {values['class']!r} is unknown")
    kpa = values.get("class", "kpa.autoscaling.knative.dev") == "kpa.autoscaling.knative.dev"
    if kpa and values.get("metric", "concurrency") not in ("concurrency", "rps"):
        errors.append(f"{where}: KPA autoscaling metric must be concurrency or rps")
    numbers: dict[str, float] = {}
    for name in ("min-scale", "max-scale", "initial-scale", "target", "target-utilization-percentage"):
        if name in values:
            try:
                numbers[name] = float(values[name])
            except (TypeError, ValueError):
                errors.append(f"{where}: {SERVING_AUTOSCALING}{name} {values[name]!r} is not a number")
    for name in ("min-scale", "max-scale", "initial-scale"):
        if name in numbers and (numbers[name] < 0 or numbers[name] != int(numbers[name])):
            errors.append(f"{where}: {SERVING_AUTOSCALING}{name} must be an integer >= 0")
    if numbers.get("max-scale", 0) and numbers.get("min-scale", 0) > numbers["max-scale"]:
        errors.append(f"{where}: {SERVING_AUTOSCALING}min-scale exceeds max-scale")
    if "target" in numbers and numbers["target"] < 0.01:
        errors.append(f"{where}: {SERVING_AUTOSCALING}target must be >= 0.01")
    if "target-utilization-percentage" in numbers and not 1 <= numbers["target-utilization-percentage"] <= 100:
        errors.append(f"{where}: {SERVING_AUTOSCALING}target-utilization-percentage must be 1-100")
    if "window" in values:
        errors += _window_errors(where, values["window"])
    return errors


def _window_errors(where: str, value: Any) -> list[str]:
    match = re.fullmatch(r"(\d+)(s|m|h)", str(value))
    seconds = int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)] if match else -1
    if not 6 <= seconds <= 3600:
        return [f"{where}: {SERVING_AUTOSCALING}window must be between 6s and 1h"]
    return []


def knative_service_errors(doc: dict[str, Any]) -> list[str]:
    """Knative Serving webhook rules for a Service/Configuration revision template."""
    where = doc_id(doc)
    template = (doc.get("spec") or {}).get("template") or {}
    errors = serving_annotation_errors(where, (template.get("metadata") or {}).get("annotations") or {})
    spec = template.get("spec") or {}
    containers = spec.get("containers") or []
    if len(containers) != 1:
        errors.append(f"{where}: exactly one serving container is expected, got {len(containers)}")
    ports = [p for c in containers for p in c.get("ports") or []]
    if len(ports) > 1:
        errors.append(f"{where}: Knative Serving allows a single container port")
    if not 0 <= spec.get("containerConcurrency", 0) <= 1000:
        errors.append(f"{where}: containerConcurrency must be 0-1000")
    if not 0 < spec.get("timeoutSeconds", 300) <= 600:
        errors.append(f"{where}: timeoutSeconds must be 1-600 (max-revision-timeout-seconds)")
    return errors


# --------------------------------------------------------------------------- cross-resource rules


def reference_errors(docs: list[dict[str, Any]], function_services: Iterable[tuple[str, str]] = ()) -> list[str]:
    """Every sink / dead-letter ref resolves, and every Kafka topic used is declared.

    `function_services` are (namespace, name) of the Knative Services kn func creates
    from func.yaml, which the rendered manifests do not contain.
    """
    defined = {
        (d.get("apiVersion"), d.get("kind"), d["metadata"].get("namespace"), d["metadata"]["name"]) for d in docs
    }
    defined |= {("serving.knative.dev/v1", "Service", ns, name) for ns, name in function_services}
    topics = {
        (d.get("spec") or {}).get("topicName", d["metadata"]["name"]) for d in docs if d.get("kind") == "KafkaTopic"
    }
    errors = []
    for doc in docs:
        namespace, spec = doc["metadata"].get("namespace"), doc.get("spec") or {}
        refs = [("spec.sink", (spec.get("sink") or {}).get("ref"))]
        refs.append(
            ("spec.delivery.deadLetterSink", ((spec.get("delivery") or {}).get("deadLetterSink") or {}).get("ref"))
        )
        if doc.get("kind") == "EventType":
            refs.append(("spec.reference", spec.get("reference")))
        for path, ref in refs:
            if not ref:
                continue
            key = (ref.get("apiVersion"), ref.get("kind"), ref.get("namespace", namespace), ref.get("name"))
            if key not in defined:
                errors.append(f"{doc_id(doc)}: {path}.ref {key[1]} {key[2]}/{key[3]} ({key[0]}) is not defined")
        if topics:  # only where the topics are part of the rendered set
            used = spec.get("topics", []) if doc.get("kind") == "KafkaSource" else []
            used += [spec["topic"]] if doc.get("kind") == "KafkaSink" and spec.get("topic") else []
            errors += [f"{doc_id(doc)}: topic {t!r} is not declared as a KafkaTopic" for t in used if t not in topics]
    return errors


def keda_partition_errors(docs: list[dict[str, Any]]) -> list[str]:
    """KEDA max-scale above a topic's partition count only adds idle consumers."""
    partitions = {
        (d.get("spec") or {}).get("topicName", d["metadata"]["name"]): (d.get("spec") or {}).get("partitions")
        for d in docs
        if d.get("kind") == "KafkaTopic"
    }
    errors = []
    for doc in docs:
        if doc.get("kind") != "KafkaSource":
            continue
        max_scale = ((doc.get("metadata") or {}).get("annotations") or {}).get(KEDA_CURRENT + "max-scale")
        for topic in (doc.get("spec") or {}).get("topics", []):
            count = partitions.get(topic)
            if max_scale and str(max_scale).isdigit() and count and int(max_scale) > count:
                errors.append(f"{doc_id(doc)}: KEDA max-scale {max_scale} exceeds the {count} partitions of {topic}")
    return errors


def validate_documents(docs: list[dict[str, Any]], function_services: Iterable[tuple[str, str]] = ()) -> list[str]:
    """All checks over one rendered set of resources."""
    errors = []
    seen = set()
    for doc in docs:
        key = (
            doc.get("apiVersion", "").split("/")[0],
            doc.get("kind"),
            (doc.get("metadata") or {}).get("namespace"),
            (doc.get("metadata") or {}).get("name"),
        )
        if key in seen:
            errors.append(f"{doc_id(doc)}: defined twice")
        seen.add(key)
        errors += schema_errors(doc) + metadata_errors(doc) + webhook_errors(doc)
    return errors + reference_errors(docs, function_services) + keda_partition_errors(docs)


# --------------------------------------------------------------------------- func.yaml


@lru_cache(maxsize=1)
def func_yaml_validator() -> jsonschema.Draft4Validator:
    """knative/func's published func.yaml schema (draft-04, strict)."""
    return jsonschema.Draft4Validator(json.loads(FUNC_YAML_SCHEMA.read_text()))


def func_yaml_errors(func: dict[str, Any], *, directory_name: str | None = None) -> list[str]:
    """func.yaml valid for `kn func deploy` 1.23 and for this project's conventions (knowledge f)."""
    name = func.get("name", "?")
    errors = [
        f"func.yaml {name}: schema: {'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
        for e in func_yaml_validator().iter_errors(func)
    ]
    if func.get("specVersion") != FUNC_SPEC_VERSION:
        errors.append(f"func.yaml {name}: specVersion must be {FUNC_SPEC_VERSION}, got {func.get('specVersion')!r}")
    created = func.get("created")
    try:
        datetime.fromisoformat(str(created).replace("Z", "+00:00"))
    except ValueError:
        errors.append(f"func.yaml {name}: created {created!r} is not an RFC 3339 date-time")
    if (func.get("build") or {}).get("builder") == "host":
        errors.append(f"func.yaml {name}: builder 'host' is not in the published schema; use pack")
    # The name is the Knative Service's (a DNS label); the directory is the functions-framework
    # target (a Python name): trade_normalizer/ is the function trade-normalizer.
    if directory_name is not None and name != directory_name.replace("_", "-"):
        errors.append(f"func.yaml {name}: name must equal its directory {directory_name!r} ('_' as '-')")
    if func.get("runtime") != "python":
        errors.append(f"func.yaml {name}: runtime must be python")
    if func.get("invoke") != "http":
        errors.append(f"func.yaml {name}: invoke must be http (our edge parses CloudEvents, not func-python)")
    deploy = func.get("deploy") or {}
    misplaced = sorted(k for k in deploy.get("annotations") or {} if k.startswith(SERVING_AUTOSCALING))
    if misplaced:
        errors.append(
            f"func.yaml {name}: {', '.join(misplaced)} in deploy.annotations would land on the Service's "
            "metadata, which the Serving webhook rejects; use deploy.options.scale"
        )
    scale = (deploy.get("options") or {}).get("scale") or {}
    if scale.get("max") and scale.get("min", 0) > scale["max"]:
        errors.append(f"func.yaml {name}: deploy.options.scale.min exceeds max")
    return errors


def func_yaml_env_refs(func: dict[str, Any]) -> dict[str, set[str]]:
    """Secrets and ConfigMaps a func.yaml's run.envs refer to: {"secret": {...}, "configMap": {...}}."""
    refs: dict[str, set[str]] = {"secret": set(), "configMap": set()}
    for env in (func.get("run") or {}).get("envs") or []:
        match = re.fullmatch(r"\{\{\s*(secret|configMap):([^:}\s]+)(?::[^}\s]+)?\s*\}\}", str(env.get("value", "")))
        if match:
            refs[match.group(1)].add(match.group(2))
    return refs


def iter_refs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, str | None, str]]:
    """(kind, namespace or None, name) of every Secret/ConfigMap a pod template or container refers to."""
    for doc in docs:
        namespace = (doc.get("metadata") or {}).get("namespace")
        template = (doc.get("spec") or {}).get("template") or {}
        for container in (template.get("spec") or {}).get("containers") or []:
            for env in container.get("env") or []:
                source = env.get("valueFrom") or {}
                if "secretKeyRef" in source:
                    yield "Secret", namespace, source["secretKeyRef"]["name"]
                if "configMapKeyRef" in source:
                    yield "ConfigMap", namespace, source["configMapKeyRef"]["name"]
            for env_from in container.get("envFrom") or []:
                if "secretRef" in env_from:
                    yield "Secret", namespace, env_from["secretRef"]["name"]
                if "configMapRef" in env_from:
                    yield "ConfigMap", namespace, env_from["configMapRef"]["name"]
