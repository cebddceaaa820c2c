"""Prometheus metrics (one registry per process, shared by all sessions).

Latency histograms are labelled by stage and measured from the end of the
user's speech, like the turn timelines they come from.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from framecast.timeline import Timeline

__all__ = [
    "ERRORS",
    "LOOP_LAG",
    "REGISTRY",
    "SESSIONS",
    "STAGE_LATENCY",
    "TURNS",
    "observe_timeline",
    "render",
]

REGISTRY = CollectorRegistry(auto_describe=True)

_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0)

STAGE_LATENCY = Histogram(
    "framecast_stage_latency_seconds",
    "Time from the end of user speech to each stage of the reply.",
    ["stage"],
    buckets=_BUCKETS,
    registry=REGISTRY,
)
TURNS = Counter(
    "framecast_turns_total", "Turns finished, by outcome.", ["outcome"], registry=REGISTRY
)
ERRORS = Counter(
    "framecast_errors_total",
    "Errors reported by processors.",
    ["processor", "code"],
    registry=REGISTRY,
)
SESSIONS = Gauge("framecast_sessions", "Sessions currently open.", registry=REGISTRY)
LOOP_LAG = Histogram(
    "framecast_event_loop_lag_seconds",
    "How late the server's event loop wakes a 100 ms timer (time it could not react).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
    registry=REGISTRY,
)


def observe_timeline(timeline: Timeline) -> None:
    """Add a finished turn's stage latencies to the histograms."""
    origin = timeline.origin()
    if origin is None:
        return
    for stage, ts in timeline.marks.items():
        if ts >= origin:
            STAGE_LATENCY.labels(stage=stage).observe(ts - origin)


def render() -> bytes:
    """The registry in Prometheus text format."""
    return generate_latest(REGISTRY)
