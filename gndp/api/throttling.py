"""The API's per-user rate limit, counted in two numbers a user instead of a list.

DRF's `UserRateThrottle` keeps the time of every request of the last period in the cache and
reads and writes that whole list at each request: at the default rate (100,000 an hour) a
client making twenty requests a second carries some 70,000 of them, and unpickling and
pickling those cost 3 ms a request, more than completing a task. Here each user has a count
of the current period and one of the previous one, and the requests of the last period are
estimated as the current count plus the previous count weighted by how much of the previous
period the last one still covers (a sliding window counter). A period never admits more than
the rate, and a client that keeps under the rate is never refused.
"""

from __future__ import annotations

from rest_framework import throttling

from gndp.addresses import client_address
from steps import tricks


class UserRateThrottle(throttling.UserRateThrottle):
    def allow_request(self, request, view) -> bool:
        if not tricks.on("throttling"):
            return super().allow_request(request, view)
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        period = int(self.now // self.duration)
        current, previous = f"{self.key}:{period}", f"{self.key}:{period - 1}"
        counts = self.cache.get_many([current, previous])
        self.current, self.previous = counts.get(current, 0), counts.get(previous, 0)
        self.elapsed = self.now - period * self.duration
        if self._estimate(self.elapsed) >= self.num_requests:
            return self.throttle_failure()
        # Kept for two periods: the count serves as the next period's previous one.
        if not self.cache.add(current, 1, 2 * self.duration):
            try:
                self.cache.incr(current)
            except ValueError:  # expired between the two calls
                self.cache.set(current, 1, 2 * self.duration)
        return self.throttle_success()

    def get_ident(self, request) -> str:
        """An anonymous caller's address, read as everywhere else (`gndp.addresses`): DRF's
        own believes any client's X-Forwarded-For."""
        return client_address(request)

    def _estimate(self, elapsed: float) -> float:
        return self.previous * (1 - elapsed / self.duration) + self.current

    def throttle_success(self) -> bool:
        if not tricks.on("throttling"):
            return super().throttle_success()
        return True

    def wait(self) -> float | None:
        """Seconds until the estimate falls below the rate: the previous period's weight
        fades as time passes; with the current period's count alone at the rate, the
        period's end."""
        if not tricks.on("throttling"):
            return super().wait()
        to_period_end = self.duration - self.elapsed
        if self.previous and self.current < self.num_requests:
            fades = self.duration * (1 - (self.num_requests - self.current) / self.previous) - self.elapsed
            return max(0.0, min(fades, to_period_end))
        return to_period_end
