"""Contiguous offset commits (knative-eventing.md b.6) — pure logic."""

from __future__ import annotations

from local.eventing.offsets import PartitionOffsets


def test_commit_position_is_one_past_the_completed_prefix():
    offsets = PartitionOffsets()
    for offset in (10, 11, 12, 13):
        assert offsets.track(offset)
    assert offsets.commit_position() is None
    offsets.complete(12)  # out of order: nothing committable yet
    assert offsets.commit_position() is None
    offsets.complete(10)
    assert offsets.commit_position() == 11
    offsets.complete(11)
    assert offsets.commit_position() == 13  # 10, 11, 12 done
    assert offsets.pending_count == 1
    offsets.complete(13)
    assert offsets.commit_position() == 14 and offsets.pending_count == 0


def test_gaps_in_offsets_do_not_block_commits():
    offsets = PartitionOffsets()  # transaction markers / compaction leave gaps
    for offset in (5, 8, 9):
        offsets.track(offset)
    offsets.complete(5)
    offsets.complete(8)
    assert offsets.commit_position() == 9


def test_refetched_records_are_not_tracked_twice():
    offsets = PartitionOffsets()
    assert offsets.track(1) and offsets.track(2)
    assert not offsets.track(2) and not offsets.track(1)
    offsets.complete(1)
    assert not offsets.track(1)  # already committed
    assert offsets.track(3)


def test_needs_commit_only_when_moved_past_the_acknowledged_commit():
    offsets = PartitionOffsets()
    offsets.track(0)
    offsets.complete(0)
    assert offsets.needs_commit() == 1
    offsets.committed = 1
    assert offsets.needs_commit() is None
