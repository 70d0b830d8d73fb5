#!/usr/bin/env bash
# Bootstrap a local Kubernetes cluster for price-crawler with k3d (k3s in Docker):
# Knative Serving (+ Kourier), Knative Eventing, the Kafka extension (KafkaSource,
# KafkaSink) with its KEDA autoscaler enabled, Strimzi and a one-node Kafka (with its Kafka
# Exporter), KEDA, and kube-prometheus-stack (Prometheus Operator, Prometheus, Grafana) with
# our PodMonitors, alert rules and dashboard (infra/observability).
# Every version is pinned below; they match the CRD schemas the manifests are validated
# against in tests/deploy (tests/fixtures/k8s-schemas/README.md), and the Kubernetes of
# K3S_IMAGE is inside every component's supported range (infra/cluster/versions.yaml).
#
#   scripts/cluster.sh up        create registry + cluster and install everything (default)
#   scripts/cluster.sh down      delete the cluster and its registry
#   scripts/cluster.sh status    what runs, and whether it is ready
#
# KAFKA_CLUSTER picks the Strimzi cluster applied: `kafka` (default: one node, for a laptop) or
# `kafka-production` (three KRaft nodes, RF 3, min.insync.replicas 2: the topology the
# resilience tests prove; give Docker 2 more CPUs and 3 GiB more for it).
#
# Needs docker, k3d (>= 5.6), kubectl, helm (>= 3.8) and curl. Give Docker at least 4 CPUs and 8 GiB:
# Knative, Kafka and Strimzi together use about 5 GiB at rest; Prometheus, Grafana and
# Alertmanager add their own (requests in infra/cluster/monitoring-values.yaml; not measured here).
# Images are pushed to localhost:$REGISTRY_PORT from the host; the cluster pulls the same
# names through a registry mirror, so `func deploy --registry localhost:5001/price-crawler`
# works unchanged (scripts/deploy.sh). Then: `make deploy`. Runbook: docs/operations.md.
set -euo pipefail

CLUSTER_NAME="${CLUSTER_NAME:-price-crawler}"
REGISTRY_NAME="${REGISTRY_NAME:-price-crawler-registry}" # k3d names the container k3d-$REGISTRY_NAME
REGISTRY_PORT="${REGISTRY_PORT:-5001}"
# Kubernetes 1.35: within every component's supported range (infra/cluster/versions.yaml).
K3S_IMAGE="${K3S_IMAGE:-rancher/k3s:v1.35.5-k3s1}"
KAFKA_CLUSTER="${KAFKA_CLUSTER:-kafka}" # infra/cluster/<this>

KNATIVE_SERVING_VERSION="knative-v1.23.0"
KNATIVE_EVENTING_VERSION="knative-v1.23.0"
KNATIVE_KAFKA_VERSION="knative-v1.23.0" # eventing-kafka-broker: KafkaSource, KafkaSink
KOURIER_VERSION="knative-v1.23.0"
STRIMZI_VERSION="1.2.0"
KEDA_VERSION="2.20.2"
KUBE_PROMETHEUS_STACK_VERSION="88.3.0" # Helm chart: Prometheus Operator v0.93.0, Prometheus, Grafana

SERVING_URL="https://github.com/knative/serving/releases/download/${KNATIVE_SERVING_VERSION}"
EVENTING_URL="https://github.com/knative/eventing/releases/download/${KNATIVE_EVENTING_VERSION}"
KAFKA_EXT_URL="https://github.com/knative-extensions/eventing-kafka-broker/releases/download/${KNATIVE_KAFKA_VERSION}"
KOURIER_URL="https://github.com/knative-extensions/net-kourier/releases/download/${KOURIER_VERSION}/kourier.yaml"
STRIMZI_URL="https://github.com/strimzi/strimzi-kafka-operator/releases/download/${STRIMZI_VERSION}/strimzi-cluster-operator-${STRIMZI_VERSION}.yaml"
KEDA_URL="https://github.com/kedacore/keda/releases/download/v${KEDA_VERSION}/keda-${KEDA_VERSION}.yaml"
PROMETHEUS_CHARTS_URL="https://prometheus-community.github.io/helm-charts"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WAIT="${WAIT:-600s}"

log() { printf '\n==> %s\n' "$*"; }
die() { printf 'cluster.sh: %s\n' "$*" >&2; exit 1; }

need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required (see docs/operations.md, 'Prerequisites')"
  done
}

# Wait until every Deployment in a namespace is Available.
wait_deployments() {
  kubectl wait deployment --all --namespace "$1" --for=condition=Available --timeout="$WAIT"
}

create_registry() {
  if k3d registry list --no-headers 2>/dev/null | grep -q "^k3d-${REGISTRY_NAME}\b"; then
    log "registry k3d-${REGISTRY_NAME} exists"
  else
    log "creating registry k3d-${REGISTRY_NAME} on localhost:${REGISTRY_PORT}"
    k3d registry create "$REGISTRY_NAME" --port "0.0.0.0:${REGISTRY_PORT}"
  fi
}

create_cluster() {
  if k3d cluster list --no-headers 2>/dev/null | grep -q "^${CLUSTER_NAME}\b"; then
    log "cluster ${CLUSTER_NAME} exists"
    return
  fi
  local mirrors
  mirrors="$(mktemp)"
  # Pods pull localhost:PORT/... (what func pushes to) from the registry container.
  cat >"$mirrors" <<EOF
mirrors:
  "localhost:${REGISTRY_PORT}":
    endpoint:
      - http://k3d-${REGISTRY_NAME}:5000
EOF
  log "creating k3d cluster ${CLUSTER_NAME} (${K3S_IMAGE})"
  # Traefik off: Knative brings its own ingress (Kourier).
  k3d cluster create "$CLUSTER_NAME" \
    --image "$K3S_IMAGE" \
    --registry-use "k3d-${REGISTRY_NAME}:${REGISTRY_PORT}" \
    --registry-config "$mirrors" \
    --k3s-arg "--disable=traefik@server:0" \
    --wait
  rm -f "$mirrors"
}

install_serving() {
  log "Knative Serving ${KNATIVE_SERVING_VERSION} + Kourier"
  kubectl apply -f "${SERVING_URL}/serving-crds.yaml"
  kubectl wait crd services.serving.knative.dev --for=condition=Established --timeout="$WAIT"
  kubectl apply -f "${SERVING_URL}/serving-core.yaml"
  kubectl apply -f "$KOURIER_URL"
  kubectl patch configmap/config-network --namespace knative-serving --type merge \
    --patch '{"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}'
  # Plain Services (deploy.sh --without-func) use tags on the local registry, which the
  # controller cannot reach to resolve digests; kn func always deploys by digest.
  kubectl patch configmap/config-deployment --namespace knative-serving --type merge \
    --patch "{\"data\":{\"registries-skipping-tag-resolving\":\"kind.local,ko.local,dev.local,localhost:${REGISTRY_PORT}\"}}"
  wait_deployments knative-serving
  wait_deployments kourier-system
}

install_eventing() {
  log "Knative Eventing ${KNATIVE_EVENTING_VERSION} (PingSource included)"
  kubectl apply -f "${EVENTING_URL}/eventing-crds.yaml"
  kubectl wait crd pingsources.sources.knative.dev --for=condition=Established --timeout="$WAIT"
  kubectl apply -f "${EVENTING_URL}/eventing-core.yaml"
  wait_deployments knative-eventing
}

install_keda() {
  log "KEDA ${KEDA_VERSION}"
  # Server-side: the CRDs are too large for client-side apply's last-applied annotation.
  kubectl apply --server-side --force-conflicts -f "$KEDA_URL"
  wait_deployments keda
}

install_kafka_extension() {
  log "Knative Kafka extension ${KNATIVE_KAFKA_VERSION}: KafkaSource, KafkaSink, KEDA autoscaler"
  kubectl apply -f "${KAFKA_EXT_URL}/eventing-kafka-controller.yaml"
  kubectl apply -f "${KAFKA_EXT_URL}/eventing-kafka-source.yaml"
  kubectl apply -f "${KAFKA_EXT_URL}/eventing-kafka-sink.yaml"
  # Lag-based scaling of KafkaSource consumers (annotations in infra/knative/base/kafkasources.yaml).
  kubectl patch configmap/config-kafka-features --namespace knative-eventing --type merge \
    --patch '{"data":{"controller-autoscaler-keda":"enabled"}}'
  kubectl rollout restart deployment/kafka-controller --namespace knative-eventing
  wait_deployments knative-eventing
}

install_strimzi() {
  log "Strimzi ${STRIMZI_VERSION} and the Kafka cluster of infra/cluster/${KAFKA_CLUSTER}"
  kubectl create namespace kafka --dry-run=client --output yaml | kubectl apply -f -
  # The release manifest targets namespace "myproject"; install it into "kafka".
  curl --fail --silent --show-error --location "$STRIMZI_URL" \
    | sed 's/namespace: .*/namespace: kafka/' \
    | kubectl apply --namespace kafka -f -
  wait_deployments kafka
  kubectl apply -k "${ROOT}/infra/cluster/${KAFKA_CLUSTER}"
  kubectl wait kafka/price-crawler --namespace kafka --for=condition=Ready --timeout="$WAIT"
}

install_monitoring() {
  log "kube-prometheus-stack ${KUBE_PROMETHEUS_STACK_VERSION} and the monitoring of infra/observability"
  # Prometheus selects every PodMonitor/PrometheusRule; Grafana's sidecar loads every
  # ConfigMap labelled grafana_dashboard=1 (infra/cluster/monitoring-values.yaml).
  helm upgrade --install monitoring kube-prometheus-stack \
    --repo "$PROMETHEUS_CHARTS_URL" --version "$KUBE_PROMETHEUS_STACK_VERSION" \
    --namespace monitoring --create-namespace \
    --values "${ROOT}/infra/cluster/monitoring-values.yaml" \
    --wait --timeout "$WAIT"
  kubectl apply -k "${ROOT}/infra/observability"
  wait_deployments monitoring
  log "Grafana: kubectl --namespace monitoring port-forward svc/monitoring-grafana 3000:80 (user admin, password: kubectl --namespace monitoring get secret monitoring-grafana -o jsonpath='{.data.admin-password}' | base64 -d)"
}

up() {
  need docker k3d kubectl helm curl
  case "$KAFKA_CLUSTER" in
    kafka | kafka-production) ;;
    *) die "KAFKA_CLUSTER=${KAFKA_CLUSTER}: expected kafka (one node) or kafka-production (three nodes)" ;;
  esac
  create_registry
  create_cluster
  install_serving
  install_eventing
  install_keda
  install_kafka_extension
  install_strimzi
  install_monitoring
  log "cluster ${CLUSTER_NAME} is ready; next: make deploy"
}

down() {
  need k3d
  k3d cluster delete "$CLUSTER_NAME" || true
  k3d registry delete "k3d-${REGISTRY_NAME}" || true
}

status() {
  need kubectl
  local ns
  for ns in knative-serving kourier-system knative-eventing keda kafka monitoring; do
    printf '\n-- %s\n' "$ns"
    kubectl get deployments --namespace "$ns" 2>/dev/null || echo "(not installed)"
  done
  printf '\n-- Kafka\n'
  kubectl get kafka,kafkanodepool,kafkatopic --namespace kafka 2>/dev/null || echo "(not installed)"
  printf '\n-- Monitoring\n'
  kubectl get podmonitors,prometheusrules,configmap/price-crawler-dashboard --namespace monitoring 2>/dev/null || echo "(not installed)"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  status) status ;;
  -h | --help | help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { print }' "$0" ;;
  *) die "unknown command '$1' (up | down | status)" ;;
esac
