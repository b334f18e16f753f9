"""The transport on Redis: the lanes' delivery streams, read in batches, applied and
acknowledged, and RQ for the jobs they set off.

Every worker reads both streams as a consumer of one group, so each delivery goes to one
worker, and a batch costs a few round trips, not an RQ job's dozen per delivery. An entry
stays pending until its delivery is applied. While a batch runs, a heartbeat re-claims its
entries every `RENEW_SECONDS`; the entries of a worker that died go idle, and any worker's
maintenance takes them over once idle for `CLAIM_IDLE_MS` and applies them. The delivery's
claim (the entry id, see `records.claim`) lets the entry itself apply it again, never another.

A delivery whose application raises (GitHub failing while its configuration is read, say)
passes to an RQ job with retries, `jobs.process_delivery`, which applies it as deliveries
were applied before streams. Each try, here or in that job, is counted and has a
time budget (see `stoplight.transport.poison`): the third that fails, runs out of time or ends
with its worker sets the delivery aside. A batch counts a try of each entry as it claims
them, in its one round trip, so a worker that dies in a batch has also charged a try to the
entries it had not reached. Entries taken over are tried one at a time, so that happens once
to an entry: a good one is applied at its next try, and only a second poison entry of the
same batch is set aside after two tries of its own.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import ResponseError
from rq import get_current_job

from stoplight import metrics
from stoplight.core.clock import Clock
from stoplight.state import keys
from stoplight.state.replies import text
from stoplight.transport import jobs, poison, records
from stoplight.transport.applying import apply_batch
from stoplight.transport.beats import repeating
from stoplight.transport.jobs import JOB_TIMEOUT_SECONDS, Job
from stoplight.transport.lanes import WORKERS_GROUP, Lanes, delivery_stream
from stoplight.transport.protocol import Claimed, DeliveryHandler, Entry, Transport

log = logging.getLogger(__name__)

# XREADGROUP's reply as redis-py gives it: per stream, its entries' ids and fields.
StreamReplies = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes] | None]]]] | None

# Entries read from each stream at a time: enough to spread a read, its claim, its
# acknowledgement and the effects jobs the batch sets off over many deliveries (at 25 they
# cost a worker process a fifth of its time), few enough that the other lane and RQ's jobs
# wait little (a batch takes about a tenth of a second).
BATCH = 100
RENEW_SECONDS = 2
CLAIM_IDLE_MS = 6000
# A consumer with nothing pending and silent this long is a stopped worker's name.
FORGET_IDLE_MS = 3_600_000

# Claim each entry's delivery (intake's rule, with the entry id as owner), count the try, and
# take it off its installation's waiting count, for a whole batch in one round trip. KEYS:
# delivery hash, waiting set per entry; ARGV: entry id, delivery id per entry. Returns, per
# entry, the number of this try (0: the delivery is another's).
_TAKE = (
    records.CLAIM_LUA
    + f"""
local tries = {{}}
for i = 1, #KEYS / 2 do
  redis.call('ZREM', KEYS[2 * i], ARGV[2 * i])
  tries[i] = 0
  if claimed(KEYS[2 * i - 1], ARGV[2 * i - 1]) == 1 then
    tries[i] = redis.call('HINCRBY', KEYS[2 * i - 1], '{records.ATTEMPTS_FIELD}', 1)
  end
end
return tries
"""
)


class DeliveryStreams(Transport):
    """The transport on Redis: the lanes' streams for deliveries, RQ for jobs."""

    def __init__(
        self,
        queue: Redis,
        consumer: str,
        apply: DeliveryHandler,
        *,
        clock: Clock,
        metrics_redis: Redis,
        budget_seconds: int,
        claim_idle_ms: int = CLAIM_IDLE_MS,
    ) -> None:
        self.queue = queue
        self.lanes = Lanes.on(queue)
        self.consumer = consumer
        self.apply_delivery = apply
        self.clock = clock
        self.metrics_redis = metrics_redis
        self.budget_seconds = budget_seconds
        self.claim_idle_ms = claim_idle_ms
        self.lane_names = [lane.name for lane in self.lanes.queues]
        self._take = queue.register_script(_TAKE)

    def ensure_groups(self) -> None:
        """Create the consumer group on each stream (and the stream), once; a group made
        after deliveries arrived still reads them from the start."""
        for lane in self.lane_names:
            try:
                stream = delivery_stream(lane)
                self.queue.xgroup_create(stream, WORKERS_GROUP, "0", mkstream=True)
            except ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise

    def read(self, block_ms: int | None = None) -> list[Entry]:
        """New entries of both lanes, up to BATCH each; with `block_ms`, wait that long for
        one when there are none."""
        streams: dict[Any, Any] = {delivery_stream(lane): ">" for lane in self.lane_names}
        try:
            replies: StreamReplies = self.queue.xreadgroup(  # type: ignore[assignment]
                WORKERS_GROUP, self.consumer, streams, count=BATCH, block=block_ms
            )
        except ResponseError as error:
            if not _streams_gone(error):
                raise
            log.warning("the delivery streams are gone (Redis lost its data?): made anew")
            self.ensure_groups()
            return []
        entries: list[Entry] = []
        for reply_stream, items in replies or []:
            stream = text(reply_stream)
            found, unusable = _entries(stream, items)
            entries += found
            for entry_id in unusable:
                log.error("stream entry %s of %s is not a delivery; dropped", entry_id, stream)
            if unusable:
                self._drop(stream, unusable)
        return entries

    def apply_available(self) -> int:
        """Apply what waits in the streams now, a batch at a time; how many entries."""
        done = 0
        while entries := self.read():
            self.apply(entries)
            done += len(entries)
        return done

    def claim_batch(self, block_ms: int | None = None) -> list[Claimed]:
        return self.claim(self.read(block_ms))

    def claim(self, entries: Sequence[Entry]) -> list[Claimed]:
        """Claim the entries' deliveries and count their tries, in one round trip."""
        if not entries:
            return []
        taken_at = time.time()
        tries = self._claim(entries)
        return [Claimed(e, t, taken_at) for e, t in zip(entries, tries, strict=True)]

    def apply(self, entries: Sequence[Entry]) -> None:
        """Claim, apply and acknowledge read entries, keeping them claimed meanwhile."""
        self.apply_claimed(self.claim(entries))

    def apply_claimed(self, batch: Sequence[Claimed]) -> None:
        if not batch:
            return
        renew = functools.partial(self._renew, [claimed.entry for claimed in batch])
        with repeating(RENEW_SECONDS, renew, "heartbeat of deliveries"):
            apply_batch(self, batch, self.apply_delivery, self.budget_seconds)

    def reclaim(self) -> int:
        """Take over and apply entries a dead worker left pending; how many."""
        taken = 0
        for lane in self.lane_names:
            stream = delivery_stream(lane)
            try:
                reply = self.queue.xautoclaim(
                    stream, WORKERS_GROUP, self.consumer, self.claim_idle_ms, "0-0", count=BATCH
                )
            except ResponseError as error:
                if not _streams_gone(error):
                    raise
                self.ensure_groups()
                continue
            entries, gone = _entries(stream, reply[1])
            deleted = reply[2] if len(reply) > 2 else []  # Redis 7 lists them apart
            gone += [text(entry_id) for entry_id in deleted]
            if gone:  # deleted while pending, or no delivery: nothing left to apply
                self._drop(stream, gone)
            if entries:
                log.warning("taking over %d deliveries a stopped worker left", len(entries))
                self._apply_one_by_one(entries)
                taken += len(entries)
        return taken

    def _apply_one_by_one(self, entries: Sequence[Entry]) -> None:
        """Apply taken-over entries each in a batch of its own, acknowledged once applied:
        should one of them kill this worker too, the others are not charged a try for it.
        They are all kept claimed meanwhile, so no other worker takes them over too."""
        renew = functools.partial(self._renew, entries)
        with repeating(RENEW_SECONDS, renew, "heartbeat of taken over"):
            for entry in entries:
                self.apply([entry])

    def forget_stopped_consumers(self, idle_ms: int = FORGET_IDLE_MS) -> int:
        """Take stopped workers' names off the group: each worker joins under a name of its
        own, which would otherwise stay listed for good. Only names with nothing pending go;
        a live worker that was merely quiet joins again at its next read."""
        forgotten = 0
        for lane in self.lane_names:
            stream = delivery_stream(lane)
            try:
                consumers = self.queue.xinfo_consumers(stream, WORKERS_GROUP)
            except ResponseError:  # no group yet
                continue
            for consumer in consumers:
                name = text(consumer["name"])
                if consumer["pending"] or consumer["idle"] < idle_ms or name == self.consumer:
                    continue
                self.queue.xgroup_delconsumer(stream, WORKERS_GROUP, name)
                forgotten += 1
        return forgotten

    def _drop(self, stream: str, entry_ids: list[str]) -> None:
        with self.queue.pipeline(transaction=False) as pipe:
            pipe.xack(stream, WORKERS_GROUP, *entry_ids)
            pipe.xdel(stream, *entry_ids)
            pipe.execute()

    def _claim(self, entries: Sequence[Entry]) -> list[int]:
        keys_: list[str] = []
        args: list[str] = []
        for entry in entries:
            keys_ += [
                keys.delivery(entry.delivery_id),
                keys.InstallationKeys(entry.installation_id).waiting_deliveries,
            ]
            args += [entry.entry_id, entry.delivery_id]
        return [int(mine) for mine in self._take(keys_, args)]

    def enqueue(
        self,
        job: Job,
        *,
        job_id: str | None = None,
        timeout: int = JOB_TIMEOUT_SECONDS,
        pipeline: Pipeline | None = None,
    ) -> None:
        lane = self.lanes.following(get_current_job())
        jobs.enqueue(lane, job, job_id=job_id, timeout=timeout, pipeline=pipeline)

    def schedule_at(
        self, at: datetime, job: Job, *, job_id: str, timeout: int = JOB_TIMEOUT_SECONDS
    ) -> None:
        jobs.schedule_at(self.lanes.shared, at, job, job_id=job_id, timeout=timeout)

    def set_aside(self, claimed: Claimed, reason: str) -> None:
        at = self.clock.now()
        poison.set_aside(self.queue, self.metrics_redis, claimed.entry, claimed.attempt, reason, at)

    def hand_over(self, claimed: Claimed) -> None:
        entry = claimed.entry
        job_id = f"delivery-{entry.delivery_id}"
        records.hand_over(self.queue, entry.delivery_id, entry.compressed_body, job_id)
        jobs.enqueue(
            self.lanes.following(None),
            jobs.process_delivery(entry.delivery_id, entry.installation_id),
            job_id=job_id,
            description=f"process_delivery({entry.event} {entry.delivery_id})",
            timeout=poison.job_timeout_seconds(self.budget_seconds),
        )

    def _renew(self, entries: Sequence[Entry]) -> None:
        """Reset the entries' idle time: a live worker's batch is not taken over."""
        with self.queue.pipeline(transaction=False) as pipe:
            for stream, ids in _ids_by_stream(entries).items():
                pipe.xclaim(stream, WORKERS_GROUP, self.consumer, 0, list[Any](ids), justid=True)
            pipe.execute()

    def acknowledge(self, batch: Sequence[Claimed]) -> None:
        """Acknowledge and delete the entries (their bodies go with them), and count how long
        each waited until its batch was claimed, in one round trip."""
        entries = [claimed.entry for claimed in batch]
        with self.queue.pipeline(transaction=False) as pipe:
            for stream, ids in _ids_by_stream(entries).items():
                pipe.xack(stream, WORKERS_GROUP, *ids)
                pipe.xdel(stream, *ids)
            for lane in self.lane_names:
                waits = [c.taken_at - c.entry.queued_at for c in batch if c.entry.lane == lane]
                metrics.JOB_LATENCY.observe_many(pipe, waits, lane)
            pipe.execute()


def _streams_gone(error: ResponseError) -> bool:
    """Whether a read failed because its streams or their group were deleted: NOGROUP for a
    new read, UNBLOCKED for one that was waiting when the keys went."""
    return str(error).startswith(("NOGROUP", "UNBLOCKED"))


def _entry(stream: str, entry_id: str, fields: dict[bytes, bytes] | None) -> Entry | None:
    """The delivery an entry holds; None for one without (deleted, or not written by intake)."""
    if not fields:
        return None
    try:
        return Entry(
            lane=stream.removeprefix(delivery_stream("")),
            entry_id=entry_id,
            delivery_id=text(fields[b"delivery"]),
            event=text(fields[b"event"]),
            installation_id=int(fields[b"installation"]),
            compressed_body=fields[b"body"],
        )
    except (KeyError, ValueError):
        return None


def _entries(
    stream: str, items: list[tuple[bytes, dict[bytes, bytes] | None]]
) -> tuple[list[Entry], list[str]]:
    """A stream reply's items as entries, and the ids of those with no delivery to apply
    (deleted while pending: Redis 6.2 lists them with no fields)."""
    entries: list[Entry] = []
    unusable: list[str] = []
    for entry_id, fields in items:
        entry = _entry(stream, text(entry_id), fields)
        if entry is None:
            unusable.append(text(entry_id))
        else:
            entries.append(entry)
    return entries, unusable


def _ids_by_stream(entries: Sequence[Entry]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for entry in entries:
        found.setdefault(entry.stream, []).append(entry.entry_id)
    return found
