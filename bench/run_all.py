"""Run wxgpt's benchmarks against real servers on loopback, print one report, save it.

    make bench [BENCH_ARGS="--quick --only overhead,concurrency,idle,storage"]

The full run takes several minutes on two cores; --quick uses smaller counts.
"""

import argparse
import os
import platform
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import torch

from bench import (
    content_checks,
    coordination,
    engines,
    idle,
    long_prompt,
    overhead,
    storage_rate,
)
from generation.loading import cpu_flags, pick_dtype

Rows = list[dict[str, str]]
# A benchmark gives one table, or several, each under a title of its own.
Tables = list[tuple[str, Rows]]
BENCHMARKS: dict[str, tuple[str, Callable[[bool], Rows | Tables]]] = {
    "engines": (
        "Engines: wxgpt on each engine against the machine's ceilings, per model (greedy)",
        engines.run,
    ),
    "overhead": ("Overhead: /ws/chat vs in-process generate (single engine, greedy)", overhead.run),
    "long_prompt": (
        "Long prompt: the longest message allowed sent into another user's stream "
        "(batched engine; times in s)",
        long_prompt.run,
    ),
    "idle": ("Idle scale: open heart-beating chat sockets (ping every 5 s)", idle.run),
    "storage": ("Storage: messages stored per second (8 concurrent writers)", storage_rate.run),
    "coordination": (
        "Coordination: Redis commands of one replica, and replicas per Redis",
        coordination.run,
    ),
    "content": (
        "Content checks: first-token delay added by releasing replies in checked pieces",
        content_checks.run,
    ),
}
RESULTS = Path(__file__).with_name("RESULTS.md")
VECTOR_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")


def table(rows: Rows) -> str:
    """A Markdown table of rows that share their keys."""
    if not rows:
        return "(no rows)"
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row[key] for key in header) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    """CPU, its vector units, cores, memory, torch threads and dtype, load and commit: what
    the figures depend on."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in cpuinfo.splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    flags = cpu_flags(cpuinfo)
    # The widest vector units and bfloat16 in hardware decide the speed more than the name.
    vectors = ", ".join(flag for flag in VECTOR_FLAGS if flag in flags) or "none listed"
    dtype = str(pick_dtype("auto", "cpu")).removeprefix("torch.")
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    load = " / ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"- CPU: {cpu}, {os.cpu_count()} cores, {memory_kb / 2**20:.0f} GiB memory; "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads\n"
        f"- vector instructions: {vectors}; the models load in {dtype} (`WXGPT_DTYPE=auto`)\n"
        f"- Python {platform.python_version()}, {platform.system()} {platform.release()}\n"
        f"- OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; "
        f"commit {commit}; load average (1/5/15 min) at start: {load}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, for development")
    parser.add_argument("--only", help="comma-separated subset of: " + ", ".join(BENCHMARKS))
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else list(BENCHMARKS)
    started = datetime.now(UTC)
    sections = [
        f"# wxgpt benchmark results{' (quick run)' if args.quick else ''}",
        f"{started:%Y-%m-%d %H:%M} UTC\n\n{machine()}",
        "Reproduce: `make bench` (`OMP_WAIT_POLICY=PASSIVE .venv/bin/python -m bench.run_all`).",
    ]
    for name in chosen:
        title, run = BENCHMARKS[name]
        print(f"running {name} …", flush=True)
        began = time.perf_counter()
        result = run(args.quick)
        tables = [("", result)] if not result or isinstance(result[0], dict) else result
        body = "\n\n".join(
            (f"### {subtitle}\n\n" if subtitle else "") + table(rows)  # type: ignore[arg-type]
            for subtitle, rows in tables
        )
        section = f"## {title}\n\n{body}\n\n({time.perf_counter() - began:.0f} s)"
        print(section, flush=True)
        sections.append(section)
    load = " / ".join(f"{value:.2f}" for value in os.getloadavg())
    sections.append(f"Load average at the end: {load}.")
    RESULTS.write_text("\n\n".join(sections) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
