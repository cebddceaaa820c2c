"""The load harness's pure helpers: speech end by the RMS gate, histogram quantiles."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from framecast.metrics import LOOP_LAG, render

BENCH = Path(__file__).parents[2] / "benchmarks" / "bench.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_speech_end_is_the_end_of_the_last_loud_frame(bench: ModuleType) -> None:
    samples = np.zeros(16000, dtype=np.int16)
    samples[3200:8000] = 5000  # loud from 0.2 s to 0.5 s
    assert bench.speech_end_by_rms(samples) == pytest.approx(0.5)
    assert bench.speech_end_by_rms(np.zeros(16000, dtype=np.int16)) is None


def test_histogram_quantiles_from_prometheus_text(bench: ModuleType) -> None:
    for seconds in (0.0005, 0.0005, 0.003, 0.2):
        LOOP_LAG.observe(seconds)
    parsed = bench.parse_histogram(render().decode(), "framecast_event_loop_lag_seconds")
    assert parsed is not None
    buckets, total, count = parsed
    assert count >= 4 and total >= 0.204
    assert buckets[-1][0] == float("inf")
    median = bench.histogram_quantile(buckets, 0.5)
    assert median is not None and 0 < median <= 0.005
    assert bench.histogram_quantile([], 0.5) is None


def test_quantile_interpolates_inside_a_bucket(bench: ModuleType) -> None:
    buckets = [(0.1, 0.0), (0.2, 10.0), (float("inf"), 10.0)]
    assert bench.histogram_quantile(buckets, 0.5) == pytest.approx(0.15)
    assert bench.histogram_quantile(buckets, 1.0) == pytest.approx(0.2)
