"""Rate limits for the doors anyone can knock on: the login form and the partners' links.

A sliding window per client address, in the process's memory: enough to slow down guessing
(a password, a link token) from one address without a store of our own. Behind a reverse
proxy, run uvicorn with `--proxy-headers` so the address is the visitor's, not the proxy's.
With several web workers each counts for itself; the per-account lockout (models/accounts.py)
holds across them.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from fastapi import HTTPException, Request

MAX_ADDRESSES = 10_000  # the oldest address is forgotten first: memory stays bounded


@dataclass
class Limit:
    name: str
    per_minute: int
    _seen: OrderedDict[str, deque[float]] = field(default_factory=OrderedDict)

    def check(self, request: Request, now: dt.datetime) -> None:
        """Count this request; refuse it (429, with Retry-After) beyond the limit."""
        address = request.client.host if request.client else "unknown"
        t = now.timestamp()
        window = self._seen.pop(address, None) or deque()
        while window and window[0] <= t - 60:
            window.popleft()
        self._seen[address] = window
        if len(self._seen) > MAX_ADDRESSES:
            self._seen.popitem(last=False)
        if len(window) >= self.per_minute:
            wait = max(1, math.ceil(window[0] + 60 - t))
            raise HTTPException(429, f"too many {self.name} attempts", {"Retry-After": str(wait)})
        window.append(t)
