"""Exponential backoff with jitter, for whatever retries a failing peer: the bridge's
deliveries to a destination, and every service's audit records to the API."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff between attempts on a failing peer, with ±10 % jitter so that
    replicas and peers do not retry in step."""

    initial: float
    maximum: float

    def delay(self, failures: int) -> float:
        base = min(self.maximum, self.initial * 2.0 ** max(0, failures - 1))
        return base * random.uniform(0.9, 1.1)
