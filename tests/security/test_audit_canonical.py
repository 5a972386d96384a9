"""An event's hashed content is the same text whatever computes it: what was hashed when the
chain was written must be what `verify_audit` computes again, years later."""

from __future__ import annotations

import datetime
import json

from hypothesis import given
from hypothesis import strategies as st

from processes import hashchain

OFFSETS = st.builds(lambda minutes: datetime.timezone(datetime.timedelta(minutes=minutes)), st.integers(-1439, 1439))
MOMENTS = st.datetimes(min_value=datetime.datetime(2, 1, 1), timezones=st.one_of(st.just(datetime.timezone.utc), OFFSETS))
PAYLOADS = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text()),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(st.text(max_size=5), children, max_size=3)),
    max_leaves=10,
)


@given(MOMENTS)
def test_a_timestamp_is_written_as_strftime_writes_it(moment):
    assert hashchain._timestamp(moment) == moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@given(moment=MOMENTS, payload=PAYLOADS, username=st.text(max_size=10))
def test_the_canonical_content_is_sorted_compact_json(moment, payload, username):
    content = hashchain.canonical(process_id=3, seq=2, type="task.completed", timestamp=moment, user_id=None,
                              username=username, task_id=9, atom_id="atom-a", payload={"value": payload})
    expected = {"process": 3, "seq": 2, "type": "task.completed", "timestamp": hashchain._timestamp(moment),
                "user_id": None, "username": username, "task_id": 9, "atom_id": "atom-a",
                "payload": hashchain._plain({"value": payload})}
    assert content == json.dumps(expected, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                                 allow_nan=False).encode()
