"""How many of this process's cores other work leaves free right now.

llama.cpp's threads meet at a barrier after every operation, so one thread that has to wait
for a core stalls all of them: on the shared 2-core VM two threads decoded 4.8 tokens/s while
other processes ran, against 21 with one; with the cores free, two threads answered in half the
time of one (benchmarks/RESULTS.md, "Generator threads chosen per answer"). So the generator
samples, just before it reads a prompt, how busy the cores it may run on are with *other*
processes (the busy time of those CPUs in /proc/stat, less this process's own CPU time) and
uses one thread per free core.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

# A core counts as free when other processes used less than this share of it in the sample.
FREE_BELOW = 0.25


@dataclass(frozen=True)
class _Ticks:
    busy: int
    total: int
    own: int
    at: float


def allowed_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def _read(cpus: list[int]) -> _Ticks | None:
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            lines = stat.read().splitlines()
        with open("/proc/self/stat", encoding="ascii") as own_stat:
            # Fields after the ")" that ends the command name: utime and stime are the 12th and 13th.
            own_fields = own_stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    wanted = {f"cpu{n}" for n in cpus}
    busy = total = 0
    for line in lines:
        fields = line.split()
        if fields and fields[0] in wanted:
            values = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
            total += sum(values)
            busy += sum(values) - values[3] - values[4]
    if total == 0:
        return None
    return _Ticks(busy, total, int(own_fields[11]) + int(own_fields[12]), time.monotonic())


def free_cores(sample_s: float = 0.2, cpus: list[int] | None = None) -> int | None:
    """Cores of `cpus` (default: those this process may run on) that other processes left
    (almost) idle over the next `sample_s` seconds; None where /proc cannot tell (not Linux)."""
    cpus = cpus or allowed_cpus()
    before = _read(cpus)
    if before is None:
        return None
    time.sleep(sample_s)
    after = _read(cpus)
    if after is None or after.total <= before.total:
        return None
    # Ticks are per CPU: total ticks over the sample = len(cpus) x elapsed x HZ.
    others = max(0, (after.busy - before.busy) - (after.own - before.own))
    busy_cores = len(cpus) * others / (after.total - before.total)
    # Each core another process occupies beyond FREE_BELOW of it is taken.
    taken = int(busy_cores + (1 - FREE_BELOW))
    return max(0, len(cpus) - taken)
