"""Does `kb ingest --ray` keep the driver's memory flat as the batch grows?

    python benchmarks/ray_ingest.py [--files 50] [--actors 1] [--local]

Makes `--files` (N) and 4N small one-page PDFs, each with its own text (so none is a
duplicate), and ingests each batch into a fresh data directory with `kb ingest --ray`, as a
person would (`python -m app.cli`, a local Ray started by the command, MMKB_RAY_ACTORS
actors). While the command runs, the driver's peak resident memory (VmHWM of its process;
the Ray daemons and actors are other processes) is read from /proc. `--local` also runs the
same batches on the local path for comparison.

files/s is over the whole command (start, model loading, Ray and its actors' model loading
included); "marginal files/s" is (4N - N) / (time at 4N - time at N): the rate once started.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pymupdf

ROOT = Path(__file__).resolve().parents[1]

WORDS = (
    "pump valve inverter panel cable breaker relay sensor meter filter bearing motor gasket "
    "pressure voltage current torque flow seal housing shaft coupling fan duct boiler tank "
    "inspection maintenance replacement calibration warranty schedule shift operator report"
).split()


def make_batch(folder: Path, files: int, seed: int = 7) -> None:
    folder.mkdir(parents=True)
    chooser = random.Random(seed)
    for number in range(files):
        sentences = [
            f"Log {number}: the {' '.join(chooser.choices(WORDS, k=8))} was checked on day {chooser.randint(1, 365)}."
            for _ in range(8)
        ]
        document = pymupdf.open()
        document.new_page().insert_textbox(pymupdf.Rect(72, 72, 520, 760), " ".join(sentences), fontsize=10)
        document.save(folder / f"log-{number:05d}.pdf")


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run(folder: Path, data: Path, use_ray: bool, actors: int) -> tuple[float, float, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MMKB_DATA_DIR": str(data), "MMKB_RAY_ACTORS": str(actors)}
    for name in ("DATABASE_URL", "RAY_ADDRESS"):
        env.pop(name, None)
    command = [sys.executable, "-m", "app.cli", "ingest", str(folder), "-c", "bench"] + (["--ray"] if use_ray else [])
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak = 0.0
    while child.poll() is None:
        peak = max(peak, peak_rss_mb(child.pid) or 0.0)
        time.sleep(0.1)
    elapsed = time.perf_counter() - started
    output = child.stdout.read() if child.stdout else ""
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({child.returncode}):\n{output}")
    return peak, elapsed, output.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--actors", type=int, default=1)
    parser.add_argument("--local", action="store_true", help="also run the local path")
    args = parser.parse_args()
    sizes = [args.files, 4 * args.files]
    modes = [True, False] if args.local else [True]
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}, Ray actors: {args.actors}")
    print("| path | files | driver peak RSS MB | wall s | files/s | outcome |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory(prefix="mmkb-ray-bench-") as scratch:
        for size in sizes:
            make_batch(Path(scratch) / f"batch-{size}", size)
        for use_ray in modes:
            timings = {}
            for size in sizes:
                peak, elapsed, summary = run(
                    Path(scratch) / f"batch-{size}", Path(scratch) / f"data-{use_ray}-{size}", use_ray, args.actors
                )
                timings[size] = elapsed
                name = "ray" if use_ray else "local"
                print(f"| {name} | {size} | {peak:.0f} | {elapsed:.1f} | {size / elapsed:.2f} | {summary} |", flush=True)
            extra = timings[sizes[1]] - timings[sizes[0]]
            # On a shared machine the larger run can finish sooner: then there is no rate to give.
            marginal = f"{(sizes[1] - sizes[0]) / extra:.2f}" if extra > 0 else "n/a (noise)"
            print(f"| {'ray' if use_ray else 'local'} marginal | {sizes[0]}→{sizes[1]} | | | {marginal} | |", flush=True)


if __name__ == "__main__":
    main()
