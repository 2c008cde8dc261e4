"""Scaled time for the local AWS: minutes of bake take seconds in tests.

``ASTROLENS_TIME_SCALE`` (default 1) divides every *modelled* AWS duration: bake
times, canary wait intervals, hook callback delays, termination waits. With a
scale of 60, a 5-minute bake takes 5 seconds. Timestamps reported through the API
stay real wall-clock times; only the waiting is compressed.
"""

from __future__ import annotations

import os
import threading


def time_scale() -> float:
    raw = os.environ.get("ASTROLENS_TIME_SCALE", "1")
    try:
        scale = float(raw)
    except ValueError:
        raise ValueError(f"ASTROLENS_TIME_SCALE must be a positive number, got {raw!r}") from None
    if scale <= 0:
        raise ValueError(f"ASTROLENS_TIME_SCALE must be a positive number, got {raw!r}")
    return scale


def scaled(seconds: float) -> float:
    """The real seconds that stand for ``seconds`` of modelled AWS time."""
    return max(0.0, seconds) / time_scale()


def sleep_modelled(seconds: float, stop: threading.Event | None = None) -> bool:
    """Waits ``seconds`` of modelled time; returns False early if ``stop`` is set."""
    stop = stop or threading.Event()
    return not stop.wait(scaled(seconds))
