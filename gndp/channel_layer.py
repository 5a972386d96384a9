"""The Redis channel layer, with one command to learn which of many groups have listeners.

Every committed step is published to several groups (its process, the dashboard, the
inboxes it touches), and most of them have nobody listening at that moment. channels-redis
asks Redis for each group's members in two round trips of its own, so a batch of events
cost a dozen round trips even when nobody was there to hear it, and a command of redis-py
costs more of the publisher's time than the round trip. `listened` asks about all the
batch's groups in one script per Redis server; the publisher then sends, with `group_send`,
to the groups that have members only.

Publishers also note the ids of the events they sent (`mark_sent`), so that the servers'
relay (`processes.live_relay`) finds the committed events nobody sent (`unsent`): those of a
worker killed between its commit and its publish.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Iterable

from channels_redis.core import RedisChannelLayer


# How many members of each group joined within the expiry: those `group_send` would keep
# (it removes the older ones first), counted without removing them here.
_LIVE_MEMBERS = """
local counts = {}
for i, key in ipairs(KEYS) do
    counts[i] = redis.call('ZCOUNT', key, ARGV[1], '+inf')
end
return counts
"""


SENT_KEPT = 300  # seconds an event's id is remembered as sent: far longer than the relay waits


class BatchingRedisChannelLayer(RedisChannelLayer):
    # A consumer waits for its next message in a blocking pop of this many seconds on the
    # server. redis-py 8 gives every read 5 s, which channels-redis's own 5 s pop races: a
    # lost race raised TimeoutError in the consumer and closed its WebSocket (about once in
    # 15 minutes a socket). The pop ends well before the read's timeout.
    brpop_timeout = 2

    async def listened(self, groups: Iterable[str]) -> set[str]:
        """The groups among `groups` that have members: one script per Redis server."""
        by_connection: dict[int, list[str]] = defaultdict(list)
        for group in groups:
            assert self.require_valid_group_name(group), "Group name not valid"
            by_connection[self.consistent_hash(group)].append(group)
        joined_after = f"({int(time.time()) - self.group_expiry}"  # exclusive: group_send drops the rest
        listened = set()
        for index, names in by_connection.items():
            keys = [self._group_key(group) for group in names]
            counts = await self.connection(index).eval(_LIVE_MEMBERS, len(keys), *keys, joined_after)
            listened.update(group for group, count in zip(names, counts) if count)
        return listened

    def _sent_key(self) -> str:
        return f"{self.prefix}:live:sent"

    async def mark_sent(self, event_ids: Iterable[int]) -> None:
        """Note these events as sent (after `group_send`); ids older than SENT_KEPT go."""
        ids = [str(event_id) for event_id in event_ids]
        if not ids:
            return
        now = time.time()
        async with self.connection(0).pipeline(transaction=False) as pipe:
            pipe.zadd(self._sent_key(), dict.fromkeys(ids, now))
            pipe.zremrangebyscore(self._sent_key(), "-inf", now - SENT_KEPT)
            await pipe.execute()

    async def unsent(self, event_ids: Iterable[int]) -> list[int]:
        """The ids among `event_ids` that no publisher noted as sent."""
        ids = list(event_ids)
        if not ids:
            return []
        scores = await self.connection(0).zmscore(self._sent_key(), [str(event_id) for event_id in ids])
        return [event_id for event_id, score in zip(ids, scores) if score is None]
