#!/usr/bin/env bash
# Deploy price-crawler to the current kubectl context (made by scripts/cluster.sh, or any
# cluster with the same operators):
#
#   1. prerequisites from the overlay: namespace, config, secret, KafkaTopics (and the dev
#      PostgreSQL of the k3d overlay), and wait for them;
#   2. database migrations, as a Job running the tools image (infra/docker/Dockerfile);
#   3. the five functions: `func deploy` of each directory made by
#      scripts/prepare_function.py (or, with --without-func, Docker images and the plain
#      Services of infra/knative/services); the ASGI functions (trade_feed, WebSockets) always
#      as Docker images (target function-asgi) and plain Services;
#   4. the eventing manifests (KafkaSinks, KafkaSources, PingSources), and wait until ready.
#
# Usage: scripts/deploy.sh [--env k3d|production] [--registry REGISTRY] [--tag TAG]
#                          [--without-func] [--skip-migrate] [--only NAME]...
#   --registry  image registry/namespace (default localhost:5001/price-crawler, the k3d registry)
#   --tag       tag of the Docker-built images (default: git commit, else "dev")
#   --only      deploy only these functions (repeatable); eventing is applied regardless
# Environment: FUNC (the func CLI, default "func" or "kn func"), PYTHON (default python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NAMESPACE="price-crawler"
FUNCTIONS=(price metadata audit deadletter scheduler stats stocks quotes trades trade_normalizer trade_enricher trade_analyser trade_sync)
# ASGI functions (WebSockets) run under uvicorn: func-python answers only HTTP scopes, so these are
# always a Docker image (Dockerfile target function-asgi) and a plain Knative Service.
ASGI_FUNCTIONS=(trade_feed)
ENVIRONMENT="k3d"
REGISTRY="localhost:5001/price-crawler"
TAG=""
WITH_FUNC=1
MIGRATE=1
ONLY=()
PYTHON="${PYTHON:-python3}"
WAIT="${WAIT:-600s}"
BUILD_DIR="${ROOT}/build"

log() { printf '\n==> %s\n' "$*"; }
die() { printf 'deploy.sh: %s\n' "$*" >&2; exit 1; }

usage() { sed -n '2,23p' "$0"; }

while (($#)); do
  case "$1" in
    --env) ENVIRONMENT="${2:?--env needs a value}"; shift 2 ;;
    --registry) REGISTRY="${2:?--registry needs a value}"; shift 2 ;;
    --tag) TAG="${2:?--tag needs a value}"; shift 2 ;;
    --without-func) WITH_FUNC=0; shift ;;
    --skip-migrate) MIGRATE=0; shift ;;
    --only) ONLY+=("${2:?--only needs a function name}"); shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option '$1' (--help lists them)" ;;
  esac
done

OVERLAY="${ROOT}/infra/knative/overlays/${ENVIRONMENT}"
[[ -f "${OVERLAY}/kustomization.yaml" ]] || die "no overlay '${ENVIRONMENT}' in infra/knative/overlays"
if ((${#ONLY[@]})); then
  only_func=() only_asgi=()
  for name in "${ONLY[@]}"; do
    if [[ " ${ASGI_FUNCTIONS[*]} " == *" ${name} "* ]]; then
      only_asgi+=("$name")
    else
      [[ -f "${ROOT}/functions/${name}/func.yaml" ]] || die "no function '${name}'"
      only_func+=("$name")
    fi
  done
  FUNCTIONS=("${only_func[@]}")
  ASGI_FUNCTIONS=("${only_asgi[@]}")
fi
if [[ -z "$TAG" ]]; then
  TAG="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo dev)"
fi

func_cli() {
  if [[ -n "${FUNC:-}" ]]; then
    # shellcheck disable=SC2086 # FUNC may be "kn func"
    $FUNC "$@"
  elif command -v func >/dev/null 2>&1; then
    func "$@"
  else
    kn func "$@"
  fi
}

# Render a kustomization with images pointed at $REGISTRY:$TAG, from a throw-away
# kustomization under build/ (kustomize resolves only relative paths).
render_with_images() {
  local source="$1" scratch
  shift
  scratch="$(mktemp -d "${BUILD_DIR}/kustomize.XXXXXX")"
  {
    echo "resources:"
    echo "  - ../../${source}"
    echo "images:"
    local image
    for image in "$@"; do
      printf '  - name: price-crawler/%s\n    newName: %s/%s\n    newTag: "%s"\n' "$image" "$REGISTRY" "$image" "$TAG"
    done
  } >"${scratch}/kustomization.yaml"
  kubectl kustomize "$scratch"
  rm -rf "$scratch"
}

docker_image() {
  local target="$1" name="$2"
  shift 2
  docker build --file "${ROOT}/infra/docker/Dockerfile" --target "$target" "$@" \
    --tag "${REGISTRY}/${name}:${TAG}" "$ROOT"
  docker push "${REGISTRY}/${name}:${TAG}"
}

apply_prerequisites() {
  log "prerequisites of overlay ${ENVIRONMENT}: namespace, config, topics$([[ $ENVIRONMENT == k3d ]] && echo ', PostgreSQL')"
  kubectl apply -k "$OVERLAY" --selector 'app.kubernetes.io/component!=eventing'
  kubectl wait kafkatopic --namespace kafka --selector strimzi.io/cluster=price-crawler \
    --for=condition=Ready --timeout="$WAIT"
  if kubectl get deployment/postgres --namespace "$NAMESPACE" >/dev/null 2>&1; then
    kubectl rollout status deployment/postgres --namespace "$NAMESPACE" --timeout="$WAIT"
  fi
  kubectl get secret/price-crawler-postgres --namespace "$NAMESPACE" >/dev/null 2>&1 \
    || die "secret ${NAMESPACE}/price-crawler-postgres is missing (docs/operations.md, 'Database secret')"
  kubectl get secret/trades-auth --namespace "$NAMESPACE" >/dev/null 2>&1 \
    || die "secret ${NAMESPACE}/trades-auth is missing (docs/trades.md, 'Bearer tokens')"
  kubectl get secret/finnhub --namespace "$NAMESPACE" >/dev/null 2>&1 \
    || die "secret ${NAMESPACE}/finnhub is missing (docs/stocks.md, 'Configuration')"
}

migrate() {
  log "database migrations"
  docker_image tools tools
  kubectl delete job/price-crawler-migrate --namespace "$NAMESPACE" --ignore-not-found
  render_with_images infra/knative/jobs tools | kubectl apply -f -
  if ! kubectl wait job/price-crawler-migrate --namespace "$NAMESPACE" --for=condition=Complete --timeout="$WAIT"; then
    kubectl logs job/price-crawler-migrate --namespace "$NAMESPACE" --tail=50 || true
    die "migrations failed"
  fi
  kubectl logs job/price-crawler-migrate --namespace "$NAMESPACE" --tail=5
}

deploy_functions_with_func() {
  local name
  for name in "${FUNCTIONS[@]}"; do
    log "function ${name}: kn func deploy"
    "$PYTHON" "${ROOT}/scripts/prepare_function.py" "$name" --out "${BUILD_DIR}/kn-func/${name}"
    func_cli deploy --path "${BUILD_DIR}/kn-func/${name}" --registry "$REGISTRY" --namespace "$NAMESPACE"
  done
}

deploy_functions_without_func() {
  local name selected=()
  for name in "${FUNCTIONS[@]}"; do
    log "function ${name}: docker build"
    docker_image function "$name" --build-arg "FUNCTION=${name}"
    selected+=("$name")
  done
  log "functions: plain Knative Services (infra/knative/services)"
  # Apply only the selected Services; the others keep their current revision.
  local IFS=,
  render_with_images infra/knative/services "${selected[@]}" \
    | kubectl apply -f - --selector "app.kubernetes.io/name in (${selected[*]})"
}

deploy_asgi_functions() {
  local name
  ((${#ASGI_FUNCTIONS[@]})) || return 0
  for name in "${ASGI_FUNCTIONS[@]}"; do
    log "function ${name}: docker build (ASGI, uvicorn)"
    docker_image function-asgi "$name" --build-arg "FUNCTION=${name}"
  done
  local IFS=,
  render_with_images infra/knative/services "${ASGI_FUNCTIONS[@]}" \
    | kubectl apply -f - --selector "app.kubernetes.io/name in (${ASGI_FUNCTIONS[*]})"
}

apply_eventing() {
  log "eventing: KafkaSinks, KafkaSources, PingSources"
  kubectl apply -k "$OVERLAY"
}

wait_ready() {
  log "waiting until Services and sources are Ready"
  kubectl wait ksvc --all --namespace "$NAMESPACE" --for=condition=Ready --timeout="$WAIT"
  kubectl wait kafkasink,kafkasource,pingsource --all --namespace "$NAMESPACE" --for=condition=Ready --timeout="$WAIT"
  kubectl get ksvc,kafkasource,pingsource,kafkasink --namespace "$NAMESPACE"
}

command -v kubectl >/dev/null 2>&1 || die "kubectl is required"
command -v docker >/dev/null 2>&1 || die "docker is required (image builds)"
mkdir -p "$BUILD_DIR"
kubectl get crd kafkasources.sources.knative.dev >/dev/null 2>&1 \
  || die "the current cluster has no Knative Kafka extension; run 'make cluster' first (or check 'kubectl config current-context')"

apply_prerequisites
((MIGRATE)) && migrate
if ((${#FUNCTIONS[@]})); then
  if ((WITH_FUNC)); then deploy_functions_with_func; else deploy_functions_without_func; fi
fi
deploy_asgi_functions
apply_eventing
wait_ready
log "deployed to $(kubectl config current-context), namespace ${NAMESPACE}; runbook: docs/operations.md"
