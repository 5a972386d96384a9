"""The per-user rate limit (`gndp.api.throttling`): two counts a user, never more requests in
a period than the rate, never a refusal for a client under it, and a wait that is honest."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.core.cache import caches
from hypothesis import given, settings
from hypothesis import strategies as st

from gndp.api.throttling import UserRateThrottle


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def throttle(rate: str, clock: Clock) -> UserRateThrottle:
    limiter = UserRateThrottle()
    limiter.rate = rate
    limiter.num_requests, limiter.duration = limiter.parse_rate(rate)
    limiter.timer = clock
    return limiter


REQUEST = SimpleNamespace(user=SimpleNamespace(is_authenticated=True, pk=7))


@pytest.fixture(autouse=True)
def clean_cache():
    caches["default"].clear()
    yield
    caches["default"].clear()


@settings(max_examples=60, deadline=None)
@given(gaps=st.lists(st.floats(min_value=0, max_value=30), min_size=1, max_size=150))
def test_no_period_admits_more_than_the_rate(gaps):
    caches["default"].clear()
    clock = Clock()
    admitted: dict[int, int] = {}
    for gap in gaps:
        clock.now += gap
        if throttle("10/min", clock).allow_request(REQUEST, None):
            period = int(clock.now // 60)
            admitted[period] = admitted.get(period, 0) + 1
    assert all(count <= 10 for count in admitted.values()), admitted


def test_a_client_under_the_rate_is_never_refused_and_its_state_stays_two_numbers():
    clock = Clock()
    for _ in range(3000):  # 5 a second against 100,000 an hour (27.8 a second), for ten minutes
        clock.now += 0.2
        assert throttle("100000/hour", clock).allow_request(REQUEST, None)
    cache = caches["default"]
    keys = [key for key in cache._cache if "throttle_user_7" in key]
    assert len(keys) == 1 and cache.get(keys[0].split(":", 2)[-1]) == 3000  # one period's count so far


def test_the_wait_is_when_a_request_would_be_admitted_again():
    clock = Clock(60 * 1000.0)  # the start of a period
    for _ in range(10):
        assert throttle("10/min", clock).allow_request(REQUEST, None)
    refused = throttle("10/min", clock)
    assert not refused.allow_request(REQUEST, None)
    assert refused.wait() == pytest.approx(60)  # the current period alone holds the rate
    clock.now += 75  # a quarter into the next period: three quarters of the previous ten count
    admitted = 0
    while throttle("10/min", clock).allow_request(REQUEST, None):
        admitted += 1
    assert admitted == 3  # 7.5, 8.5 and 9.5 are under ten
    refused = throttle("10/min", clock)
    assert not refused.allow_request(REQUEST, None)
    wait = refused.wait()
    assert wait == pytest.approx(3)  # 0.75 - t/60 of ten, plus three, falls under ten after 3 s
    clock.now += wait - 0.1
    assert not throttle("10/min", clock).allow_request(REQUEST, None)
    clock.now += 0.11
    assert throttle("10/min", clock).allow_request(REQUEST, None)
