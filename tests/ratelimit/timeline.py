"""Helpers to judge a sequence of grant timestamps as a vendor counting 1 s windows would."""

from __future__ import annotations

import bisect


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """Most timestamps in any half-open sliding window ``[t, t + window)``."""
    ordered = sorted(times)
    return max((bisect.bisect_left(ordered, t + window) - i for i, t in enumerate(ordered)), default=0)
