"""Answer quality per packaged generator on a QA set, against issue 11's goals.

    .venv/bin/python benchmarks/answer_quality.py [--data ../shared/eval/answers/us-public-records]
        [--generators qwen2.5-coder-1.5b-instruct-q4,qwen2.5-coder-0.5b-instruct-q4] [--naive-for FIRST] [--limit N]
        [--output DIR]

Runs `kb eval answers` (app.answer_eval) once per generator: the full pipeline for each, and the
naive dense top-k baseline for the generators named by --naive-for (default: the first). The
us-public-records set's table-only questions (listed in its README) are tagged "table"; Chinese
questions are tagged "zh" by the reader. Prints one Markdown table with the goal columns.
A benchmark, not a test: the numbers go to benchmarks/RESULTS.md with the machine they ran on.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app import registry  # noqa: E402,F401 - hub libraries offline first
from app.answer_eval import QaSet, load_qa_set, result_line, run_answer_eval  # noqa: E402
from app.model_set import ModelSet  # noqa: E402
from app.settings import Settings  # noqa: E402

# The set's README: answers only in a table (NICS, Senate, WARN, the FAA cost table, Chinese tables 7.5/7.7).
TABLE_ONLY = {
    "nics01",
    "nics02",
    "nics03",
    "nics04",
    "nics05",
    "sen01",
    "sen02",
    "sen03",
    "sen04",
    "warn01",
    "warn02",
    "warn03",
    "fr10",
    "fr11",
    "fr12",
    "fr13",
    "zh01",
    "zh04",
    "zh06",
    "xl02",
}
GOALS = {"gold in answer": 0.80, "citation precision": 0.90, "refusal accuracy": 0.90, "table": 0.75, "zh": 0.75}


def _tagged(qa: QaSet) -> QaSet:
    items = [dataclasses.replace(item, tags=item.tags | {"table"}) if item.id in TABLE_ONLY else item for item in qa.items]
    return QaSet(items, qa.qa_file, qa.documents)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "eval" / "answers" / "us-public-records")
    parser.add_argument("--generators", default="qwen2.5-coder-1.5b-instruct-q4,qwen2.5-coder-0.5b-instruct-q4")
    parser.add_argument("--naive-for", default=None, help="generators that also run the naive baseline (default: the first)")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--output", type=Path, default=None, help="folder for one JSON Lines file of answers per run")
    args = parser.parse_args()

    qa = _tagged(load_qa_set(args.data))
    if args.limit:
        qa = QaSet(qa.items[: args.limit], qa.qa_file, qa.documents)
    generators = [g for g in args.generators.split(",") if g]
    naive_for = set((args.naive_for or generators[0]).split(","))
    rows = []
    for generator in generators:
        settings = Settings(generator=generator)
        configs = ["full", "naive"] if generator in naive_for else ["full"]
        sink = None
        if args.output:
            args.output.mkdir(parents=True, exist_ok=True)
            sink = (args.output / f"{generator}.jsonl").open("w", encoding="utf-8")

        def progress(config: str, result, sink=sink) -> None:
            print(f"  {generator} | {config} | {result.id}: {result.latency_s:.1f} s", file=sys.stderr, flush=True)  # noqa: B023 - called within this turn
            if sink:
                sink.write(result_line(config, result))
                sink.flush()

        started = time.perf_counter()
        report = run_answer_eval(qa, settings, ModelSet(settings), progress=progress, configs=configs)
        print(f"{generator}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
        if sink:
            sink.close()
        for summary in report.configs:
            rows.append((generator, summary))

    print(f"{args.data.name}: {len(qa.items)} questions; machine: {platform.machine()}, {_cores()} cores\n")
    print(
        "| generator | config | gold in answer | citation precision | refusal accuracy | false refusals "
        "| table-only | Chinese | extractive | p50 s | p95 s |"
    )
    print("| --- " * 11 + "|")
    for generator, s in rows:
        extractive = sum(r.extractive for r in s.results)
        print(
            f"| {generator} | {s.name} | {s.contains:.3f} | {_cell(s.citation_precision)} | {_cell(s.refusal_accuracy)} "
            f"| {s.false_refusals}/{s.answerable} ({s.false_refusals / max(s.answerable, 1):.0%}) "
            f"| {_cell(s.contains_by_tag.get('table'))} | {_cell(s.contains_by_tag.get('zh'))} | {extractive} "
            f"| {s.p50_s:.1f} | {s.p95_s:.1f} |"
        )
    print("\nGoals: " + ", ".join(f"{name} >= {value}" for name, value in GOALS.items()) + ", false refusals <= 10%")


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    main()
