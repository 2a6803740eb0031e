"""Failed-authentication limit per client address: a token bucket, 429 with ``Retry-After`` when it is empty.

Each failed attempt (no key, or an unknown key) takes a token from its address's bucket; buckets refill at a
steady rate up to their size. While an address has no token left, every request of it that needs a key is
answered 429 before the key is even looked up, so guessing keys costs the guesser time, not the service.
Successful requests take nothing: a reviewer who mistypes a key once is not locked out.

Hand-written rather than a library: the usual ones (slowapi, limits) limit every request of a route, not failed
authentications, and would be a new dependency for about forty lines. Memory is bounded: at most `max_clients`
addresses are remembered, the least recently seen forgotten first (a forgotten address starts with a full
bucket, the worst an attacker with many addresses gains). Behind a reverse proxy every request comes from the
proxy's address; run the limit there instead, or have the proxy pass the client address (uvicorn
``--forwarded-allow-ips``).

Example:
    >>> limiter = FailedAuthLimiter(burst=2, per_minute=60, clock_s=lambda: 0.0)
    >>> limiter.retry_after_s("10.0.0.1") is None
    True
    >>> limiter.failed("10.0.0.1"); limiter.failed("10.0.0.1")
    >>> limiter.retry_after_s("10.0.0.1")
    1.0
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

__all__ = ["FailedAuthLimiter"]


@dataclass
class _Bucket:
    tokens: float
    updated_s: float


class FailedAuthLimiter:
    """Token buckets of failed authentications by client address; thread-safe.

    Args:
        burst: Bucket size: failed attempts in a row before 429.
        per_minute: Tokens regained per minute.
        max_clients: Addresses remembered at once.
        clock_s: Monotonic clock in seconds (tests pass a fake one).
    """

    def __init__(self, burst: int, per_minute: float, max_clients: int = 10000,
                 clock_s: Callable[[], float] = time.monotonic) -> None:
        self.burst = float(burst)
        self.rate_per_s = float(per_minute) / 60.0
        self.max_clients = int(max_clients)
        self._clock_s = clock_s
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _bucket(self, address: str, now_s: float) -> _Bucket:
        bucket = self._buckets.get(address)
        if bucket is None:
            bucket = _Bucket(self.burst, now_s)
            self._buckets[address] = bucket
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now_s - bucket.updated_s) * self.rate_per_s)
            bucket.updated_s = now_s
            self._buckets.move_to_end(address)
        return bucket

    def retry_after_s(self, address: str) -> float | None:
        """Seconds until `address` may try again (at least 1), or None while it has a token left."""
        with self._lock:
            if address not in self._buckets:
                return None
            bucket = self._bucket(address, self._clock_s())
            if bucket.tokens >= 1.0:
                return None
            return max(1.0, float(int((1.0 - bucket.tokens) / self.rate_per_s + 0.999)))

    def failed(self, address: str) -> None:
        """Count one failed attempt of `address`."""
        with self._lock:
            bucket = self._bucket(address, self._clock_s())
            bucket.tokens = max(0.0, bucket.tokens - 1.0)
