"""Answer latency of the packaged llama.cpp generators on realistic prompts (a benchmark, not a test).

The bundled samples are ingested into a temporary data directory, each question's five
sources are retrieved as `kb ask` would (hybrid search + rerank), and the prompt is
app.generation.prompting.build_messages. Then, for every packaged generator that is installed, each
question is answered (greedy, MMKB_MAX_NEW_TOKENS) while timing the first streamed piece
(TTFT) and the whole answer. The generator is warmed at load, as load_generator does, and
answers the questions one after another in one process, so from the second question on the
system prompt's KV cache is reused as it is in a running server.

    .venv/bin/python -m benchmarks.answer_latency                       # ~8 questions, every installed model
    .venv/bin/python -m benchmarks.answer_latency --models qwen2.5-coder-1.5b-instruct-q4 --prompt-lookup 0,10

With several --prompt-lookup / --threads values, one generator per variant is loaded and the
variants answer each question in turn (interleaved A/B in one process, so machine load
drifts hit them alike); greedy answers that differ between variants are counted. `--threads auto` is the default
setting (one thread per core that other processes leave free, chosen per answer);
`--background-load N` runs N busy loops beside the answers, as other work on a shared machine.

    .venv/bin/python -m benchmarks.answer_latency --models qwen2.5-coder-1.5b-instruct-q4 --threads 1,2,auto --background-load 1
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import llama_cpp

from app import registry  # noqa: F401 - hub libraries offline before any model import
from app.generation.llama_cpp import LlamaCppGenerator
from app.generation.prompting import build_messages
from app.registry import PACKAGED_MODELS, ModelNotAvailable
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * q
    low, high = int(rank), min(int(rank) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def sample_prompts(limit: int, data_dir: Path) -> list[tuple[str, list[dict]]]:
    """(question, messages) for the first `limit` answerable sample questions, with the five
    sources the real pipeline retrieves for each."""
    from app.service import KnowledgeBase

    # parse_workers=0: parse in this process (six small files; no worker processes to spawn).
    settings = Settings(data_dir=data_dir, database_url=None, parse_workers=0)
    kb = KnowledgeBase(settings)
    try:
        user = kb.system_user()
        report = kb.ingest(user, "samples", paths=[SAMPLES / "collection"])
        if report.failed:
            raise SystemExit(f"ingesting the samples failed: {[(f.filename, f.error) for f in report.failed]}")
        collections = kb.readable_collections(user, ["samples"])
        answerer = kb._answerer()
        questions = [q["question"] for q in json.loads((SAMPLES / "questions.json").read_text()) if q.get("answer")]
        prompts = []
        for question in questions[:limit]:
            sources, _ = answerer.retrieve(question, collections)
            prompts.append((question, build_messages(question, sources)))
        return prompts
    finally:
        kb.close()


@dataclass
class Variant:
    model: str
    prompt_lookup: int
    threads: int | None
    generator: LlamaCppGenerator
    load_s: float
    warm_s: float
    ttft: list[float] = field(default_factory=list)
    full: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    decode_s: list[float] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    threads_used: list[int] = field(default_factory=list)

    @property
    def label(self) -> str:
        if self.threads is None:
            used = ", ".join(f"{n}: {self.threads_used.count(n)}x" for n in sorted(set(self.threads_used)))
            threads = f"auto ({used})"
        else:
            threads = str(self.threads)
        return f"{self.model} (lookup {self.prompt_lookup}, threads {threads})"


def answer_once(variant: Variant, messages: list[dict], max_new_tokens: int) -> None:
    start = time.perf_counter()
    first = None
    text = ""
    for piece in variant.generator.stream(messages, max_new_tokens):
        if first is None:
            first = time.perf_counter()
        text += piece
    end = time.perf_counter()
    first = first or end
    variant.ttft.append(first - start)
    variant.full.append(end - start)
    variant.tokens.append(variant.generator.count_tokens(text))
    variant.decode_s.append(end - first)
    variant.answers.append(text)
    variant.threads_used.append(variant.generator.threads_used)


def _spin() -> None:
    while True:
        pass


def background_load(processes: int) -> list[multiprocessing.Process]:
    """`processes` busy loops: other work on the machine, for the threads' A/B under load."""
    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(processes)]
    for spinner in spinners:
        spinner.start()
    return spinners


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--models", help="comma-separated packaged generator names (default: every installed one)")
    parser.add_argument("--prompt-lookup", default=None, help="comma-separated values (default: MMKB_GENERATOR_PROMPT_LOOKUP)")
    parser.add_argument(
        "--threads",
        default=None,
        help="comma-separated n_threads values, 'auto' = one per free core per answer (default: MMKB_GENERATOR_THREADS)",
    )
    parser.add_argument(
        "--background-load",
        type=int,
        default=0,
        help="busy-loop processes running beside the answers (other work on the machine)",
    )
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument(
        "--data-dir", type=Path, help="ingest the samples here (default: a temporary dir; never your knowledge base)"
    )
    parser.add_argument("--show-answers", action="store_true")
    args = parser.parse_args(argv)

    settings = Settings()
    max_new = args.max_new_tokens or settings.max_new_tokens
    lookups = [int(v) for v in args.prompt_lookup.split(",")] if args.prompt_lookup else [settings.generator_prompt_lookup]
    threads = (
        [int(v) if v not in ("auto", "default") else None for v in args.threads.split(",")]
        if args.threads
        else [settings.generator_threads]
    )
    names = args.models.split(",") if args.models else [n for role, n in PACKAGED_MODELS if role == "generator"]

    with tempfile.TemporaryDirectory(prefix="mmkb-latency-") as tmp:
        data_dir = args.data_dir or Path(tmp)
        started = time.perf_counter()
        load_at_start = " / ".join(f"{v:.1f}" for v in os.getloadavg())
        prompts = sample_prompts(args.questions, data_dir / "kb")
        print(
            f"ingested the samples and retrieved {len(prompts)} prompts in {time.perf_counter() - started:.0f} s", file=sys.stderr
        )
        spinners = background_load(args.background_load)

        rows = []
        for name in names:
            try:
                # The configured data dir (MMKB_DATA_DIR), where split weights are joined once and kept.
                gguf = registry.resolve("generator", settings.model_copy(update={"generator": name, "generator_path": None}))
            except ModelNotAvailable as exc:
                print(f"skipping {name}: {exc}", file=sys.stderr)
                continue
            variants = []
            for lookup in lookups:
                for n_threads in threads:
                    t0 = time.perf_counter()
                    generator = LlamaCppGenerator(gguf, n_threads=n_threads, prompt_lookup=lookup)
                    t1 = time.perf_counter()
                    generator.warm()
                    variants.append(Variant(name, lookup, n_threads, generator, t1 - t0, time.perf_counter() - t1))
            prompt_sizes = [variants[0].generator.prompt_tokens(messages) for _, messages in prompts]
            for index, (question, messages) in enumerate(prompts):
                # Rotate the order per question so no variant always goes first.
                for variant in variants[index % len(variants) :] + variants[: index % len(variants)]:
                    answer_once(variant, messages, max_new)
                print(f"{name}: {index + 1}/{len(prompts)} {question[:60]!r}", file=sys.stderr)
            for variant in variants:
                differ = sum(a != b for a, b in zip(variant.answers, variants[0].answers))
                rows.append((variant, statistics.median(prompt_sizes), differ))
            if args.show_answers:
                for (question, _), answer in zip(prompts, variants[0].answers):
                    print(f"- {name}: {question}\n  -> {answer.strip()}")
            del variants
        for spinner in spinners:
            spinner.terminate()

    load = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    print(
        f"\n{len(prompts)} sample questions, 5 retrieved sources each, max_new_tokens={max_new}, "
        f"llama-cpp-python {llama_cpp.__version__}, {os.cpu_count()} CPUs, load average at the end {load} "
        f"(at the start {load_at_start}); {args.background_load} busy-loop processes beside; "
        f"{time.perf_counter() - started:.0f} s in all\n"
    )
    print(
        "| model | prompt tokens p50 | load + warm s | TTFT p50 / p95 s | full answer p50 / p95 s | answer tokens p50 | decode tokens/s | answers differing from first variant |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for variant, prompt_p50, differ in rows:
        rate = sum(variant.tokens) / max(sum(variant.decode_s), 1e-9)
        print(
            f"| {variant.label} | {prompt_p50:.0f} | {variant.load_s:.1f} + {variant.warm_s:.1f} "
            f"| {percentile(variant.ttft, 0.5):.2f} / {percentile(variant.ttft, 0.95):.2f} "
            f"| {percentile(variant.full, 0.5):.2f} / {percentile(variant.full, 0.95):.2f} "
            f"| {statistics.median(variant.tokens):.0f} | {rate:.1f} | {differ} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
