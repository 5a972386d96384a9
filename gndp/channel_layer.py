"""The Redis channel layer, with one round trip to learn which of many groups have listeners.

Every committed step is published to several groups (its process, the dashboard, the
inboxes it touches), and most of them have nobody listening at that moment. channels-redis
asks Redis for each group's members in two round trips of its own, so a batch of events
cost a dozen round trips even when nobody was there to hear it. `group_send_many` asks
for the members of all the batch's groups in one pipeline per Redis server, and sends only
to the groups that have members, exactly as `group_send` does.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

from channels_redis.core import RedisChannelLayer


class BatchingRedisChannelLayer(RedisChannelLayer):
    async def group_send_many(self, messages: dict[str, dict]) -> None:
        """`group_send(group, message)` for every item, in one round trip for the groups
        that nobody listens to."""
        by_connection: dict[int, list[str]] = defaultdict(list)
        for group in messages:
            assert self.require_valid_group_name(group), "Group name not valid"
            by_connection[self.consistent_hash(group)].append(group)
        stale_before = int(time.time()) - self.group_expiry
        listened = []
        for index, groups in by_connection.items():
            pipe = self.connection(index).pipeline(transaction=False)
            for group in groups:
                key = self._group_key(group)
                pipe.zremrangebyscore(key, min=0, max=stale_before)
                pipe.zcard(key)
            counts = (await pipe.execute())[1::2]
            listened += [group for group, count in zip(groups, counts) if count]
        await asyncio.gather(*(self.group_send(group, messages[group]) for group in listened))
