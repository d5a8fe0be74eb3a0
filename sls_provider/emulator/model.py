"""What the stores keep: logstore descriptions and stored batches (one per accepted request).

A batch shares topic, source, tags and arrival time across its logs, so storing it once per
request (rather than once per log) is what makes ingest fast; ``flatten`` expands it into the
flat dicts GetLogs returns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


@dataclass
class LogstoreInfo:
    """A logstore as GetLogStore describes it (the fields the official SDKs read)."""

    project: str
    logstore: str
    web_tracking: bool
    create_time: int
    modify_time: int
    ttl: int = 30
    shard_count: int = 2

    def describe(self) -> dict[str, object]:
        return {
            "logstoreName": self.logstore,
            "ttl": self.ttl,
            "shardCount": self.shard_count,
            "enable_tracking": self.web_tracking,
            "autoSplit": True,
            "maxSplitShard": 64,
            "appendMeta": True,
            "telemetryType": "",
            "mode": "standard",
            "hot_ttl": -1,
            "createTime": self.create_time,
            "lastModifyTime": self.modify_time,
        }


@dataclass
class Batch:
    """The logs of one accepted request. ``load`` fetches the logs lazily (SQLite keeps bodies)."""

    topic: str
    source: str
    tags: dict[str, str]  # user tags plus __receive_time__ and __client_ip__
    time: int
    count: int
    load: Callable[[], list[dict[str, str]]] = field(repr=False)


def flatten(batch: Batch) -> Iterator[dict[str, str]]:
    """Yield each log as GetLogs returns it: meta fields, content, then ``__tag__:`` keys."""
    when = str(batch.time)
    base = {"__time__": when, "__topic__": batch.topic, "__source__": batch.source}
    tags = {f"__tag__:{key}": value for key, value in batch.tags.items()}
    for log in batch.load():
        row = dict(base)
        row.update(log)
        row["__time__"] = when  # web tracking cannot set event time: arrival time wins
        row.update(tags)
        yield row
