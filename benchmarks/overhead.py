"""Framework overhead, framecast vs Pipecat, side by side in one run.

    .venv/bin/python benchmarks/overhead.py [--reps 5] [--quick] [--json PATH]

Each implementation runs in its own fresh interpreter (so imports, caches and freed
memory of one cannot help or hurt the other), one after the other, in the same run:
framecast, Pipecat lean, Pipecat default. ``peer_framecast.py`` and
``peer_pipecat.py`` hold the workloads and say exactly how each is measured.
Absolute numbers on a shared 2-core machine are noisy: read the ratios.

JSON shape: ``{"framecast": {...}, "pipecat": {...lean...}, "pipecat_default": {...},
"machine": {...}}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

ROWS: list[tuple[str, str, bool]] = [
    # key, label, higher is better
    ("hop_us_audio_n10", "per-hop latency, audio frame, N=10 (µs)", False),
    ("hop_us_text_n10", "per-hop latency, text frame, N=10 (µs)", False),
    ("fps_audio_n1", "throughput, audio frames/s, N=1", True),
    ("fps_audio_n10", "throughput, audio frames/s, N=10", True),
    ("fps_audio_n50", "throughput, audio frames/s, N=50", True),
    ("interrupt_us_idle_n50", "interruption to 50th processor, idle (µs)", False),
    ("interrupt_us_backlog_n50", "interruption to 50th processor, 200 queued (µs)", False),
    ("stale_frames_backlog", "stale frames at sink, backlog case", False),
    ("stale_frames_adversarial", "stale frames at sink, adversarial case", False),
    ("rss_kb_per_pipeline", "RSS per 7-processor pipeline (KB)", False),
    ("tasks_per_pipeline", "asyncio tasks per idle pipeline", False),
]

_PIPECAT_SNIPPET = (
    "import asyncio, json, sys; sys.path.insert(0, {here!r}); import peer_pipecat; "
    "print(json.dumps(asyncio.run("
    "peer_pipecat.run_pipecat({config!r}, reps={reps}, quick={quick}))))"
)


def _run(argv: list[str]) -> dict[str, float]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=HERE)
    if done.returncode != 0:
        raise SystemExit(
            f"benchmark subprocess failed: {' '.join(argv[:3])}\n{done.stderr[-3000:]}"
        )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(reps: int, quick: bool) -> dict[str, Any]:
    """Run all three configurations, each in a fresh interpreter."""
    mode = "quick" if quick else "full"
    results: dict[str, Any] = {
        "framecast": _run([sys.executable, str(HERE / "peer_framecast.py"), str(reps), mode])
    }
    for key, config in (("pipecat", "lean"), ("pipecat_default", "default")):
        code = _PIPECAT_SNIPPET.format(here=str(HERE), config=config, reps=reps, quick=quick)
        results[key] = _run([sys.executable, "-c", code])
    results["machine"] = {
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "pipecat": _version("pipecat-ai"),
        "reps": reps,
        "quick": quick,
    }
    return results


def _ratio(ours: float, theirs: float, higher_better: bool) -> str:
    if higher_better:
        return f"{ours / theirs:.1f}× more" if theirs else "-"
    if ours == 0:
        return "none" if theirs == 0 else f"0 vs {theirs:g}"
    return f"{theirs / ours:.1f}× less"


def table(results: dict[str, Any]) -> str:
    """Markdown table: framecast, Pipecat lean and default, ratios."""
    fc, lean, dflt = results["framecast"], results["pipecat"], results["pipecat_default"]
    lines = [
        "| workload | framecast | Pipecat lean | Pipecat default | vs lean | vs default |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, label, higher in ROWS:
        lines.append(
            f"| {label} | {fc[key]:,.2f} | {lean[key]:,.2f} | {dflt[key]:,.2f} "
            f"| {_ratio(fc[key], lean[key], higher)} | {_ratio(fc[key], dflt[key], higher)} |"
        )
    return "\n".join(lines)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="measured repetitions (medians)")
    parser.add_argument("--quick", action="store_true", help="smaller batches, for a smoke run")
    parser.add_argument("--json", type=Path, help="write all results here")
    args = parser.parse_args()
    results = measure(args.reps, args.quick)
    machine = results["machine"]
    print(
        f"{machine['cpu']}, {machine['cores']} cores, Python {machine['python']}, "
        f"pipecat-ai {machine['pipecat']}, reps={args.reps}{' (quick)' if args.quick else ''}"
    )
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
