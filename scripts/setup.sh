#!/usr/bin/env bash
# `make setup`: everything a local run and the test suite need, idempotent and quick when
# nothing changed.
#   - system packages, only when missing: Java 17+, Maven, PostgreSQL server, chromium (apt-get);
#     kubectl, promtool, shellcheck and docker-compose too, but their absence only warns (the
#     tests needing them skip);
#   - .venv with the project installed editable with its dev extras (re-done only when
#     pyproject.toml changed);
#   - Apache Kafka from Maven Central into .local/kafka/libs: the newest 4.x release whose
#     dependencies all resolve (recorded in .local/kafka/VERSION).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
LOCAL="$ROOT/.local"
KAFKA_DIR="$LOCAL/kafka"
KAFKA_POM="$ROOT/scripts/kafka/pom.xml"
KAFKA_METADATA_URL="${KAFKA_METADATA_URL:-https://repo.maven.apache.org/maven2/org/apache/kafka/kafka_2.13/maven-metadata.xml}"
KAFKA_FALLBACK_VERSION="4.3.1" # known to resolve; used when the metadata cannot be read
KAFKA_MAX_ATTEMPTS=4
PYTHON="${PYTHON:-python3}"

say() { printf '==> %s\n' "$*"; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die() {
  printf 'setup failed: %s\n' "$*" >&2
  exit 1
}

# --- system packages ------------------------------------------------------------------------
SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
APT_UPDATED=0

apt_install() { # apt_install PACKAGE... (fails when apt-get is missing or cannot install)
  command -v apt-get >/dev/null 2>&1 || return 1
  if [ "$APT_UPDATED" -eq 0 ]; then
    say "apt-get update"
    $SUDO apt-get update -qq || return 1
    APT_UPDATED=1
  fi
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@"
}

postgres_bindir() { # newest server binaries, as local/services/postgres.py picks them
  local found
  found=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -t/ -k5 -n | tail -n1 || true)
  if [ -n "$found" ] && [ -x "$found/postgres" ]; then
    echo "$found"
  elif command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v pg_ctl)")"
  fi
}

java_major() {
  java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p' | cut -d. -f1
}

if ! command -v java >/dev/null 2>&1; then
  apt_install default-jre-headless || die "Java is missing and apt-get could not install it (need Java 17+)"
fi
[ "$(java_major)" -ge 17 ] 2>/dev/null || die "Kafka 4 needs Java 17 or newer; found: $(java -version 2>&1 | head -n1)"

if ! command -v mvn >/dev/null 2>&1; then
  apt_install maven || die "Maven is missing and apt-get could not install it"
fi

if [ -z "$(postgres_bindir)" ]; then
  apt_install postgresql || die "PostgreSQL server binaries are missing and apt-get could not install them"
  [ -n "$(postgres_bindir)" ] || die "PostgreSQL installed but no server binaries found in /usr/lib/postgresql/*/bin"
fi

# The trade-journal page is tested in a real headless browser (Playwright drives Debian's
# chromium: `playwright install` would download one from a CDN). Its test fails without it.
if ! command -v chromium >/dev/null 2>&1; then
  apt_install chromium || die "chromium is missing and apt-get could not install it (the journal page's test needs it)"
fi

# Needed only by some later tests; without them those tests skip and say why.
if ! command -v kubectl >/dev/null 2>&1; then
  apt_install kubernetes-client || warn "kubectl unavailable (Debian package kubernetes-client): tests that need it will skip"
fi
if ! command -v promtool >/dev/null 2>&1; then
  apt_install prometheus || warn "promtool unavailable (Debian package prometheus): tests that need it will skip"
fi
if ! command -v shellcheck >/dev/null 2>&1; then
  apt_install shellcheck || warn "shellcheck unavailable (Debian package shellcheck): the scripts' lint test will skip"
fi
# Compose v1 (Python) parses docker-compose.yml without a Docker daemon: `config --quiet`.
if ! command -v docker-compose >/dev/null 2>&1; then
  apt_install docker-compose || warn "docker-compose unavailable (Debian package docker-compose): the compose-file test will skip"
fi

# --- Python virtual environment ---------------------------------------------------------------
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ||
  die "Python 3.11 or newer is needed as '$PYTHON' (found: $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11"
VENV="$ROOT/.venv"
STAMP="$VENV/.installed-pyproject.sha256"
if ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
  say "creating .venv with $("$PYTHON" --version 2>&1)"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV" || die "'$PYTHON -m venv' failed (on Debian's own python: apt-get install python3-venv)"
fi
WANT_STAMP="$(sha256sum pyproject.toml | cut -d' ' -f1) $("$VENV/bin/python" --version 2>&1)"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT_STAMP" ]; then
  say "installing the project into .venv (pip install -e '.[dev]')"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[dev]' ||
    die "pip install -e '.[dev]' failed (see above)"
  echo "$WANT_STAMP" >"$STAMP"
else
  say ".venv up to date"
fi

# --- dbt in its own virtual environment (the stock gold layer, dbt/stocks) -------------------
# dbt-core pins pathspec below what mypy needs, so it cannot share .venv; the versions are the
# `dbt` extra of pyproject.toml. shared/stocks/gold.py runs .venv-dbt/bin/dbt.
DBT_VENV="$ROOT/.venv-dbt"
DBT_STAMP="$DBT_VENV/.installed-dbt.txt"
DBT_PINS="$("$VENV/bin/python" -c "import tomllib; print(' '.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['dbt']))")"
if [ "$(cat "$DBT_STAMP" 2>/dev/null || true)" != "$DBT_PINS" ] || ! "$DBT_VENV/bin/dbt" --version >/dev/null 2>&1; then
  say "installing dbt into .venv-dbt ($DBT_PINS)"
  rm -rf "$DBT_VENV"
  "$PYTHON" -m venv "$DBT_VENV" || die "'$PYTHON -m venv' failed for .venv-dbt"
  # shellcheck disable=SC2086  # the pins are separate words
  "$DBT_VENV/bin/python" -m pip install -q --disable-pip-version-check $DBT_PINS ||
    die "pip install $DBT_PINS into .venv-dbt failed (see above)"
  echo "$DBT_PINS" >"$DBT_STAMP"
else
  say ".venv-dbt up to date"
fi

# --- Apache Kafka from Maven Central ----------------------------------------------------------
kafka_versions() { # 4.x releases, newest first; empty when the metadata cannot be read
  "$PYTHON" - "$KAFKA_METADATA_URL" <<'EOF' 2>/dev/null || true
import re, sys, urllib.request
xml = urllib.request.urlopen(sys.argv[1], timeout=20).read().decode()
versions = set(re.findall(r"<version>(4\.\d+\.\d+)</version>", xml))
print("\n".join(sorted(versions, key=lambda v: tuple(map(int, v.split("."))), reverse=True)))
EOF
}

kafka_resolve() { # kafka_resolve VERSION: copy its runtime class path into libs.new
  rm -rf "$KAFKA_DIR/libs.new"
  mvn -q -B -f "$KAFKA_POM" -Dkafka.version="$1" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$KAFKA_DIR/libs.new" >"$KAFKA_DIR/resolve.log" 2>&1
}

POM_STAMP="$(sha256sum "$KAFKA_POM" | cut -d' ' -f1)"
INSTALLED="$(cat "$KAFKA_DIR/VERSION" 2>/dev/null || true)"
if [ -n "$INSTALLED" ] && [ -f "$KAFKA_DIR/libs/kafka_2.13-$INSTALLED.jar" ] &&
  [ "$(cat "$KAFKA_DIR/.pom.sha256" 2>/dev/null || true)" = "$POM_STAMP" ]; then
  say "Kafka $INSTALLED already installed"
else
  mkdir -p "$KAFKA_DIR"
  CANDIDATES="$(kafka_versions | head -n "$KAFKA_MAX_ATTEMPTS")"
  if [ -z "$CANDIDATES" ]; then
    warn "cannot read $KAFKA_METADATA_URL: trying the pinned Kafka $KAFKA_FALLBACK_VERSION"
  fi
  if ! grep -qx "$KAFKA_FALLBACK_VERSION" <<<"$CANDIDATES"; then
    CANDIDATES="$(printf '%s\n%s' "$CANDIDATES" "$KAFKA_FALLBACK_VERSION" | sed '/^$/d')"
  fi
  RESOLVED=""
  for version in $CANDIDATES; do
    say "resolving org.apache.kafka:kafka_2.13:$version from Maven Central"
    if kafka_resolve "$version"; then
      RESOLVED="$version"
      break
    fi
    warn "Kafka $version does not resolve: $(sed 's/\x1b\[[0-9;]*m//g' "$KAFKA_DIR/resolve.log" |
      grep -oE '[^ ]+ was not found|Could not [^:]+' | tail -n1 || true)"
  done
  if [ -z "$RESOLVED" ]; then
    tail -n 20 "$KAFKA_DIR/resolve.log" >&2
    die "no Kafka 4.x release could be resolved from Maven Central (tried: $(tr '\n' ' ' <<<"$CANDIDATES"))"
  fi
  rm -rf "$KAFKA_DIR/libs"
  mv "$KAFKA_DIR/libs.new" "$KAFKA_DIR/libs"
  echo "$RESOLVED" >"$KAFKA_DIR/VERSION"
  echo "$POM_STAMP" >"$KAFKA_DIR/.pom.sha256"
  rm -f "$KAFKA_DIR/resolve.log"
fi

# --- summary ------------------------------------------------------------------------------------
found_or() { if command -v "$1" >/dev/null 2>&1; then echo "$2"; else echo "missing (tests needing it skip)"; fi; }
cat <<EOF

Setup complete.
  Python      $("$VENV/bin/python" --version 2>&1) in .venv
  Java        $(java -version 2>&1 | head -n1)
  Maven       $(mvn -v 2>/dev/null | head -n1 | sed 's/\x1b\[[0-9;]*m//g')
  PostgreSQL  $("$(postgres_bindir)/postgres" --version 2>/dev/null) ($(postgres_bindir))
  Kafka       $(cat "$KAFKA_DIR/VERSION") (.local/kafka/libs, $(find "$KAFKA_DIR/libs" -name '*.jar' | wc -l) jars)
  kubectl     $(found_or kubectl "$(command -v kubectl)")
  promtool    $(found_or promtool "$(command -v promtool)")
  shellcheck  $(found_or shellcheck "$(command -v shellcheck)")
  compose     $(found_or docker-compose "$(command -v docker-compose)")
Next: make up (the whole system) or make test.
EOF
