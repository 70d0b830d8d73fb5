"""Replay dead letters: re-publish dead-lettered records to their request topic, key and headers intact.

A dead-letter record is the failed event in binary mode: its key, its `ce_*` headers (id,
source, type, traceparent, ...) and the job JSON as value, plus what only the dead-letter path
adds: `ce_knativeerrordest`, `ce_knativeerrorcode`, `ce_knativeerrordata` and the position the
KafkaSource had read it at (`ce_knativekafkapartition`, `ce_knativekafkaoffset`). A replay keeps
the first and drops the second, so the function sees the same event again: same id (and so the
same job id in job_logs), same key (same partition, same order), same trace. A console-consumer
pipe drops key and headers: the event came back as a new plain record with a new id.

    price-crawler replay-dead-letters [--topic T]... [--job-id ID]... [--since TIME] [--to TOPIC] [--dry-run]

Reads each selected dead-letter topic from its start (or `--since`) up to its end at the moment
of the call, without committing any offset, and prints a JSON report of what was (or, with
`--dry-run`, would be) re-published.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from shared.config import Settings, get_settings

DEAD_LETTER_TOPICS = (
    "price-crawler.price.dead-letter",
    "price-crawler.metadata.dead-letter",
    "price-crawler.audit.dead-letter",
)
# Headers only the dead-letter path adds (docs/knative-eventing.md b.5, a.6): a replay drops them.
DEAD_LETTER_ONLY_HEADERS = frozenset(
    {
        "ce_knativeerrordest",
        "ce_knativeerrorcode",
        "ce_knativeerrordata",
        "ce_knativekafkapartition",
        "ce_knativekafkaoffset",
    }
)
_DEAD_LETTER_SUFFIX = ".dead-letter"
_REQUEST_SUFFIX = ".request"
_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class ReplaySelection:
    """Which dead letters to replay, and where to."""

    topics: tuple[str, ...] = DEAD_LETTER_TOPICS
    job_ids: frozenset[str] = frozenset()  # empty: every job
    since: datetime | None = None  # records written at or after this instant
    to: str | None = None  # the request topic; default: the dead-letter topic's own (<fn>.request)


@dataclass(frozen=True)
class ReplayedRecord:
    """One dead letter selected for replay."""

    topic: str
    partition: int
    offset: int
    job_id: str | None
    key: str | None
    error_code: str | None
    to: str


@dataclass
class ReplayReport:
    """What a replay did (or, dry, would do)."""

    dry_run: bool
    read: int = 0
    records: list[ReplayedRecord] = field(default_factory=list)

    def summary(self) -> dict:
        """The report as JSON-ready data."""
        return {
            "dry_run": self.dry_run,
            "read": self.read,
            "selected": len(self.records),
            "records": [asdict(r) for r in self.records],
        }


def request_topic_for(dead_letter_topic: str) -> str:
    """`price-crawler.price.dead-letter` → `price-crawler.price.request`."""
    if not dead_letter_topic.endswith(_DEAD_LETTER_SUFFIX):
        raise ValueError(f"{dead_letter_topic!r} is no <name>.dead-letter topic: name the request topic with --to")
    return dead_letter_topic[: -len(_DEAD_LETTER_SUFFIX)] + _REQUEST_SUFFIX


def replay_headers(headers: Sequence[tuple[str, bytes | None]] | None) -> list[tuple[str, bytes | None]]:
    """The record's headers, in order, without the dead-letter-only ones."""
    return [(name, value) for name, value in headers or () if name.lower() not in DEAD_LETTER_ONLY_HEADERS]


def job_id_of(value: bytes | None, headers: Sequence[tuple[str, bytes | None]] | None) -> str | None:
    """The job id the job runner logs: the message's `job_id`, else `<ce_source>#<ce_id>`."""
    try:
        data = json.loads(value) if value else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("job_id"), str) and data["job_id"]:
        return data["job_id"]
    found = {name: raw.decode("utf-8", "replace") for name, raw in headers or () if raw is not None}
    if "ce_source" in found and "ce_id" in found:
        return f"{found['ce_source']}#{found['ce_id']}"
    return None


def replay_dead_letters(
    bootstrap_servers: str, selection: ReplaySelection, *, dry_run: bool, timeout: float = 30.0
) -> ReplayReport:
    """Re-publish the selected dead letters (none with `dry_run`); return what was selected."""
    targets = {topic: selection.to or request_topic_for(topic) for topic in selection.topics}
    report = ReplayReport(dry_run=dry_run)
    messages = _read_to_end(bootstrap_servers, selection.topics, selection.since, timeout)
    selected = []
    for message in messages:
        report.read += 1
        headers = message.headers()
        job_id = job_id_of(message.value(), headers)
        if selection.job_ids and job_id not in selection.job_ids:
            continue
        code = next((v.decode() for n, v in headers or () if n == "ce_knativeerrorcode" and v is not None), None)
        key = message.key()
        report.records.append(
            ReplayedRecord(
                message.topic(),
                message.partition(),
                message.offset(),
                job_id,
                key.decode("utf-8", "replace") if key is not None else None,
                code,
                targets[message.topic()],
            )
        )
        selected.append(message)
    if not dry_run and selected:
        _publish(bootstrap_servers, selected, targets, timeout)
    return report


def _read_to_end(bootstrap_servers: str, topics: Sequence[str], since: datetime | None, timeout: float) -> list:
    """Every record of `topics` (from `since`) up to the end offsets of the moment; commits nothing."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"price-crawler-replay-{uuid.uuid4().hex[:8]}",  # never committed: no trace left
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    try:
        ends: dict[tuple[str, int], int] = {}
        starts: list[TopicPartition] = []
        for topic in topics:
            metadata = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
            if metadata is None or metadata.error is not None:
                raise LookupError(f"topic {topic} cannot be read: {getattr(metadata, 'error', 'unknown topic')}")
            for partition in sorted(metadata.partitions):
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)
                if high > low:
                    ends[(topic, partition)] = high
                    starts.append(TopicPartition(topic, partition, OFFSET_BEGINNING))
        if since is not None and starts:
            at_ms = int(since.timestamp() * 1000)
            starts = consumer.offsets_for_times(
                [TopicPartition(tp.topic, tp.partition, at_ms) for tp in starts], timeout=timeout
            )
            for tp in starts:
                if tp.offset < 0:  # nothing written since then
                    ends.pop((tp.topic, tp.partition), None)
            starts = [tp for tp in starts if tp.offset >= 0]
        if not starts:
            return []
        consumer.assign(starts)
        messages = []
        pending = dict(ends)
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"not read to their end in {timeout:.0f} s: {sorted(pending)}")
            message = consumer.poll(_POLL_SECONDS)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                raise RuntimeError(f"reading {message.topic()}: {error}")
            where = (message.topic(), message.partition())
            offset = message.offset()
            if where not in pending or offset is None:
                continue
            if offset < pending[where]:
                messages.append(message)
            if offset >= pending[where] - 1:
                del pending[where]
        return sorted(messages, key=lambda m: (m.topic(), m.partition(), m.offset()))
    finally:
        consumer.close()


def _publish(bootstrap_servers: str, messages: Sequence, targets: dict[str, str], timeout: float) -> None:
    """Write each record to its request topic in order and wait for every confirmation."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap_servers,
            "acks": "all",
            "enable.idempotence": True,
            "client.id": "price-crawler-replay",
        }
    )
    errors: list[str] = []

    def on_delivery(err, _msg) -> None:
        if err is not None:
            errors.append(str(err))

    for message in messages:
        producer.produce(
            targets[message.topic()],
            value=message.value(),
            key=message.key(),
            headers=list[tuple[str, str | bytes | None]](replay_headers(message.headers())),
            on_delivery=on_delivery,
        )
    if producer.flush(timeout) != 0:
        raise TimeoutError(f"Kafka did not confirm every replayed record within {timeout:.0f} s")
    if errors:
        raise RuntimeError(f"Kafka refused {len(errors)} replayed records: {errors[0]}")


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset (e.g. 2025-06-25T21:00:00Z)")
    return value.astimezone(timezone.utc)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command line of a replay (shared with the `price-crawler` command)."""
    parser.add_argument(
        "--topic",
        action="append",
        dest="topics",
        metavar="TOPIC",
        help=f"a dead-letter topic to replay (repeatable; default: {', '.join(DEAD_LETTER_TOPICS)})",
    )
    parser.add_argument(
        "--job-id",
        action="append",
        dest="job_ids",
        default=[],
        metavar="ID",
        help="replay only this job (repeatable): its job_id, or <ce_source>#<ce_id>",
    )
    parser.add_argument("--since", type=_instant, help="replay only records written at or after this instant")
    parser.add_argument(
        "--to",
        metavar="TOPIC",
        help="the request topic to write to (default: <name>.request of each <name>.dead-letter)",
    )
    parser.add_argument("--dry-run", action="store_true", help="list what would be replayed, write nothing")


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Reject what the parser alone cannot: `--to` without exactly one `--topic`."""
    if args.to and len(args.topics or ()) != 1:
        parser.error("--to names one request topic: give exactly one --topic with it")
    for topic in args.topics or ():
        if not args.to and not topic.endswith(_DEAD_LETTER_SUFFIX):
            parser.error(f"{topic} is no <name>.dead-letter topic: name its request topic with --to")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run a checked replay command line; print the JSON report."""
    selection = ReplaySelection(
        topics=tuple(args.topics or DEAD_LETTER_TOPICS), job_ids=frozenset(args.job_ids), since=args.since, to=args.to
    )
    report = replay_dead_letters(settings.kafka_bootstrap_servers, selection, dry_run=args.dry_run)
    json.dump(report.summary(), sys.stdout, indent=2)
    print()
    return 0


def main(argv: list[str] | None = None, settings: Settings | None = None) -> int:
    """`python -m shared.dead_letter_replay ...` (settings: from the environment unless given)."""
    parser = argparse.ArgumentParser(prog="python -m shared.dead_letter_replay", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    return run(args, settings or get_settings())


if __name__ == "__main__":
    sys.exit(main())
