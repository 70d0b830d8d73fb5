"""`python -m local.eventing [--manifests DIR]`: run every KafkaSource and PingSource found.

Exit codes: 0 after a clean stop (SIGTERM/SIGINT), 2 for invalid settings or manifests.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from pydantic import ValidationError

from local.eventing.config import EventingSettings
from local.eventing.destinations import resolve_topology
from local.eventing.manifests import ManifestError, load_manifests
from local.eventing.plane import EventingPlane
from shared.observability.logging import configure_logging

log = logging.getLogger("local.eventing")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, load manifests, run the plane until a signal; return the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m local.eventing",
        description="Local Knative eventing: runs the KafkaSources and PingSources of a manifests directory.",
    )
    parser.add_argument("--manifests", type=Path, help="manifests directory (env EVENTING_MANIFESTS_DIR)")
    parser.add_argument("--port", type=int, help="status port for /health and /metrics (env EVENTING_PORT)")
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"))
    parser.add_argument(
        "--log-format",
        choices=("auto", "console", "json"),
        default=(os.environ.get("LOG_FORMAT") or "auto").strip().lower(),
        help="console: readable lines; json: one object per line; auto (default): console on a terminal",
    )
    args = parser.parse_args(argv)
    configure_logging("local-eventing", args.log_level, log_format=args.log_format)

    overrides = {}
    if args.manifests is not None:
        overrides["manifests_dir"] = args.manifests
    if args.port is not None:
        overrides["port"] = args.port
    try:
        settings = EventingSettings(**overrides)
    except ValidationError as exc:
        log.error("invalid eventing settings: %s", exc)
        return 2
    try:
        manifests = load_manifests(settings.manifests_dir, default_namespace=settings.namespace)
        topology = resolve_topology(manifests, os.environ)
    except ManifestError as exc:
        log.error("%s", exc, extra={"problems": exc.problems})
        return 2
    if not topology.kafka_sources and not topology.ping_sources:
        log.warning("no KafkaSource or PingSource in %s; serving status only", settings.manifests_dir)

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():
            log.error("second signal: exiting without draining")
            os._exit(1)
        log.info("signal %s received: draining and stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    plane = EventingPlane(topology, settings)
    try:
        plane.start()
    except OSError as exc:  # e.g. the status port is taken
        log.error("cannot start the eventing plane: %s", exc)
        plane.stop()
        return 2
    while not stop.wait(1.0):
        pass
    plane.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
