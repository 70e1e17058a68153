"""Seconds from asking to the verified quote (the first event of KnowledgeBase.ask_stream),
on the bundled samples: retrieval, evidence and the quote, before the model writes.

    .venv/bin/python benchmarks/quote_latency.py [--rounds 3]

Ingests samples/collection into a temporary data directory, warms the query models with one
question, then asks every sample question `--rounds` times and stops each stream after its
first event (so the generator never runs). Prints p50/p95 and how many questions got a quote.
A benchmark, not a test: the figures go to benchmarks/RESULTS.md with the machine they ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app import registry  # noqa: E402,F401 - hub libraries offline first
from app.model_set import ModelSet  # noqa: E402
from app.service import KnowledgeBase  # noqa: E402
from app.settings import Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    questions = [q["question"] for q in json.loads((ROOT / "samples" / "questions.json").read_text())]
    with tempfile.TemporaryDirectory(prefix="mmkb-quote-") as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=None)
        kb = KnowledgeBase(settings, models=ModelSet(settings))
        try:
            kb.ingest(kb.system_user(), "samples", paths=[ROOT / "samples" / "collection"])
            user = kb.system_user()
            next(kb.ask_stream(user, questions[0], ["samples"]))  # loads the embedder and the BM25 index
            times, quoted = [], 0
            for _ in range(args.rounds):
                for question in questions:
                    started = time.perf_counter()
                    stream = kb.ask_stream(user, question, ["samples"])
                    first = next(stream)
                    times.append(time.perf_counter() - started)
                    stream.close()  # the generator is never started
                    quoted += first.answer.quote is not None
        finally:
            kb.close()
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    print(f"machine: {os.cpu_count()} cores; {len(questions)} sample questions x {args.rounds} rounds\n")
    print("| asks | quote shown | time to quote p50 s | p95 s | max s |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| {len(times)} | {quoted} | {statistics.median(times):.3f} | {p95:.3f} | {times[-1]:.3f} |")


if __name__ == "__main__":
    main()
