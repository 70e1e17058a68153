"""Ingest throughput: mmkb versus the LangChain pipeline a user would write, same PDFs, same embedder.

    PYTHONPATH=. python benchmarks/ingest.py --copies 4

The corpus is the sample PDFs copied N times, each copy re-saved with a different title so
its bytes (and sha256) differ and mmkb's dedup cannot skip it. Each pipeline runs in its
own fresh process, so its peak resident memory (ru_maxrss) is its own and model loading is
counted the same way for both (reported separately from the ingest time).

LangChain side: PyPDFLoader + RecursiveCharacterTextSplitter(500 chars, 125 overlap: about
mmkb's 128/32 tokens) + HuggingFaceEmbeddings (langchain_community's; langchain-huggingface
requires huggingface_hub<2 and would downgrade it) + FAISS.from_documents, on the same
all-MiniLM-L6-v2 folder. It does less than mmkb: no figures, no OCR, no tables, no SQL, no
per-file failure handling. mmkb runs once with OCR of figures (default) and once without
("mmkb-no-ocr": the work LangChain does, plus tables, headings, figures' captions and SQL);
"mmkb-no-ocr-fp32" is the latter embedding in float32; "mmkb-serial-fp32" is the
default with OCR as it was before parse workers and bfloat16 (MMKB_PARSE_WORKERS=0,
MMKB_EMBED_PRECISION=float32). mmkb limits its models to MMKB_MODEL_THREADS (default half
the cores: 1 here) threads; "langchain-1-thread" is the LangChain pipeline with torch limited
the same way, to show how much of the gap is threading, and "langchain-bf16" the LangChain
pipeline embedding under bfloat16 autocast, as mmkb does where the CPU has it natively
("langchain-bf16-1-thread": the same on 1 thread, mmkb's default here).
Equal precision means mmkb-no-ocr (bfloat16 where native, MMKB_EMBED_PRECISION=auto)
against langchain-bf16, and mmkb-no-ocr-fp32 against langchain; figure OCR is the
difference between mmkb and mmkb-no-ocr, reported on its own.

--rounds N runs every pipeline N times, interleaved (round r starts at the r-th pipeline), so
a shared machine's load falls on all of them alike; the table gives each one's median and
the ratios are medians of the same-round ratios.

Image path (--image-copies): the sample PNG/JPEG figures ingested as image files, once with
the default (OCR, text vector of caption + OCR text) and once with a CLIP model of ViT-B/32's
shapes configured (the same plus a CLIP vector). No CLIP weights are installable here, so
that model is untrained (samples/untrained_clip.py): its images/s is the architecture's cost,
which does not depend on the weights; it says nothing about quality.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder comes first on sys.path, and its name would shadow
# the `ingest` package; import from the repository root instead.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
SAMPLES = ROOT / "samples" / "collection"
PIPELINES = (
    "mmkb",
    "mmkb-no-ocr",
    "mmkb-no-ocr-fp32",
    "mmkb-serial-fp32",
    "langchain",
    "langchain-1-thread",
    "langchain-bf16",
    "langchain-bf16-1-thread",
)
# Comparisons at equal work: the same embedder at the same precision on both sides, figure OCR
# (which LangChain does not do) left out of mmkb and reported on its own.
EQUAL_PRECISION = (
    ("mmkb-no-ocr", "langchain-bf16", "bfloat16"),
    ("mmkb-no-ocr", "langchain-bf16-1-thread", "bfloat16, LangChain on mmkb's 1 thread"),
    ("mmkb-no-ocr-fp32", "langchain", "float32"),
)
IMAGE_PIPELINES = ("images-mmkb", "images-clip-vit-b-32")


def make_corpus(folder: Path, copies: int) -> tuple[list[Path], int]:
    import pymupdf

    folder.mkdir(parents=True, exist_ok=True)
    files, pages = [], 0
    for source in sorted(SAMPLES.glob("*.pdf")):
        for copy in range(copies):
            with pymupdf.open(source) as document:
                document.set_metadata({**document.metadata, "title": f"{source.stem} copy {copy}"})
                target = folder / f"{source.stem}-{copy}.pdf"
                document.save(target)
                pages += document.page_count
            files.append(target)
    return files, pages


def make_image_corpus(folder: Path, copies: int) -> list[Path]:
    """The sample images, each copy with one pixel changed so its sha256 differs."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for source in sorted(p for p in SAMPLES.iterdir() if p.suffix in (".png", ".jpg")):
        for copy in range(copies):
            with Image.open(source) as image:
                image = image.convert("RGB")
                image.putpixel((0, 0), (copy % 256, copy // 256, 7))
                target = folder / f"{source.stem}-{copy}{source.suffix}"
                image.save(target, quality=95) if source.suffix == ".jpg" else image.save(target)
            files.append(target)
    return files


def run_mmkb(
    files: list[Path], data_dir: Path, ocr: bool, serial_fp32: bool = False, clip_shapes: str | None = None, fp32: bool = False
) -> dict:
    from app.model_set import ModelSet
    from app.service import KnowledgeBase
    from app.settings import Settings

    started = time.perf_counter()
    overrides: dict = {"parse_workers": 0, "embed_precision": "float32"} if serial_fp32 else {}
    if fp32:
        overrides["embed_precision"] = "float32"
    if clip_shapes:
        from samples.untrained_clip import build_untrained_clip

        overrides["image_embedder_path"] = build_untrained_clip(data_dir / "clip", clip_shapes)
    settings = Settings(data_dir=data_dir, database_url=None, ocr_images=ocr, **overrides)
    models = ModelSet(settings)
    models.text_embedder.embed(["warm up"])
    if ocr:
        models.ocr  # noqa: B018 - load it before the clock starts, like the embedder
    result: dict = {}
    if clip_shapes:
        images = [path.read_bytes() for path in files]
        models.image_embedder.embed_images(images[:2])
        clip_started = time.perf_counter()
        models.image_embedder.embed_images(images)
        result["clip_embed_images_per_s"] = len(images) / (time.perf_counter() - clip_started)
    kb = KnowledgeBase(settings, models=models)
    kb.file_reader.start()  # the parse workers start with the models, as in a running server
    loaded = time.perf_counter()
    cpu_before = tree_cpu_s()
    report = kb.ingest(kb.system_user(), "bench", paths=files)
    done = time.perf_counter()
    cpu = tree_cpu_s() - cpu_before  # before close(): the workers are still there to be asked
    assert not report.failed, report.failed
    kb.close()  # stops the parse workers, so their peak memory is counted below
    return {
        **result,
        "load_s": loaded - started,
        "ingest_s": done - loaded,
        "cpu_s": cpu,
        "chunks": sum(f.text_chunks for f in report.files),
    }


def run_langchain(files: list[Path], threads: int | None = None, bf16: bool = False) -> dict:
    import torch

    if threads:
        torch.set_num_threads(threads)
    from langchain_community.document_loaders import PyPDFLoader
    from langchain_community.embeddings import HuggingFaceEmbeddings
    from langchain_community.vectorstores import FAISS
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from app import registry
    from app.settings import Settings

    model_dir = registry.resolve("text_embedder", Settings(database_url=None))
    started = time.perf_counter()
    embeddings = HuggingFaceEmbeddings(model_name=str(model_dir), encode_kwargs={"normalize_embeddings": True, "batch_size": 32})
    embeddings.embed_query("warm up")
    loaded = time.perf_counter()
    cpu_before = tree_cpu_s()
    documents = [page for path in files for page in PyPDFLoader(str(path)).load()]
    chunks = RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=125).split_documents(documents)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        FAISS.from_documents(chunks, embeddings)
    done = time.perf_counter()
    return {"load_s": loaded - started, "ingest_s": done - loaded, "cpu_s": tree_cpu_s() - cpu_before, "chunks": len(chunks)}


def tree_cpu_s() -> float:
    """CPU seconds (user + system) used so far by this process, its live children (parse
    workers) and the children they reaped (Tesseract). Less sensitive to a shared machine's
    load than wall time, but it counts threads that spin waiting for each other (torch's,
    with more than one thread on a busy machine) as work."""
    import psutil

    total = 0.0
    for process in [psutil.Process(), *psutil.Process().children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


class TreeMemory:
    """Peak resident memory of this process plus its children (parse workers, Tesseract),
    sampled every 50 ms: ru_maxrss of children would count the parent's pages each child
    shares for a moment after fork."""

    def __init__(self) -> None:
        import threading

        import psutil

        self.peak = 0
        self._me = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        import psutil

        while not self._stop.wait(0.05):
            total = 0
            for process in [self._me, *self._me.children(recursive=True)]:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak / 2**20


def child(args) -> None:
    files = [Path(p) for p in json.loads(Path(args.files).read_text())]
    tree = TreeMemory()
    if args.pipeline.startswith("langchain"):
        result = run_langchain(
            files,
            threads=1 if args.pipeline.endswith("-1-thread") else None,
            bf16=args.pipeline.startswith("langchain-bf16"),
        )
    else:
        result = run_mmkb(
            files,
            Path(args.data_dir),
            ocr=not args.pipeline.startswith("mmkb-no-ocr"),
            fp32=args.pipeline == "mmkb-no-ocr-fp32",
            serial_fp32=args.pipeline == "mmkb-serial-fp32",
            clip_shapes="vit-b-32" if args.pipeline == "images-clip-vit-b-32" else None,
        )
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["tree_rss_mb"] = tree.stop()
    print("RESULT " + json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=4, help="copies of each sample PDF")
    parser.add_argument("--pipelines", default=",".join(PIPELINES), help="comma-separated subset of " + ", ".join(PIPELINES))
    parser.add_argument(
        "--image-copies", type=int, default=8, help="copies of each sample image for the image-path table (0: skip it)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="runs of every pipeline, interleaved; medians reported")
    parser.add_argument("--pipeline", help=argparse.SUPPRESS)
    parser.add_argument("--files", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pipeline:
        child(args)
        return
    pipelines = [p for p in args.pipelines.split(",") if p]
    with tempfile.TemporaryDirectory(prefix="mmkb-bench-") as tmp:
        files, pages = make_corpus(Path(tmp) / "corpus", args.copies)
        rounds = []
        for round_ in range(args.rounds):
            order = pipelines[round_ % len(pipelines) :] + pipelines[: round_ % len(pipelines)]
            rounds.append(run_children(Path(tmp) / f"round-{round_}", "pdfs", files, order))
        images = make_image_corpus(Path(tmp) / "images", args.image_copies) if args.image_copies else []
        image_results = run_children(Path(tmp), "images", images, list(IMAGE_PIPELINES)) if images else {}
    print(
        f"{len(files)} PDFs, {pages} pages; {platform.machine()}, {os.cpu_count()} CPUs, {args.rounds} round(s); "
        f"load average {os.getloadavg()[0]:.1f} / {os.getloadavg()[1]:.1f} / {os.getloadavg()[2]:.1f} (1/5/15 min, at the end)"
    )
    print(
        "| pipeline | pages/s | ingest s (median, range) | ingest CPU s (median) | model load s | chunks | peak RSS MB, main process | peak RSS MB, with workers |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in pipelines:
        runs = [r[name] for r in rounds]
        ingest = median([r["ingest_s"] for r in runs])
        spread = f" ({min(r['ingest_s'] for r in runs):.1f}–{max(r['ingest_s'] for r in runs):.1f})" if len(runs) > 1 else ""
        print(
            f"| {name} | {pages / ingest:.2f} | {ingest:.2f}{spread} | {median([r['cpu_s'] for r in runs]):.2f} "
            f"| {median([r['load_s'] for r in runs]):.1f} | {runs[0]['chunks']} "
            f"| {max(r['peak_rss_mb'] for r in runs):.0f} | {max(r['tree_rss_mb'] for r in runs):.0f} |"
        )
    for ours, theirs, precision in EQUAL_PRECISION:
        if ours in pipelines and theirs in pipelines:
            ratios = [r[theirs]["ingest_s"] / r[ours]["ingest_s"] for r in rounds]
            print(
                f"{ours} / {theirs} pages/s (both {precision}): {median(ratios):.2f} "
                f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)})"
            )
    for name in ("mmkb", "mmkb-serial-fp32"):
        if name in pipelines and "langchain" in pipelines:
            ratios = [r["langchain"]["ingest_s"] / r[name]["ingest_s"] for r in rounds]
            print(f"{name} / langchain pages/s (mmkb with figure OCR): {median(ratios):.2f}")
    if "mmkb" in pipelines and "mmkb-no-ocr" in pipelines:
        ocr = [r["mmkb"]["ingest_s"] - r["mmkb-no-ocr"]["ingest_s"] for r in rounds]
        print(
            f"figure OCR (mmkb minus mmkb-no-ocr, same round): {median(ocr):.2f} s for the corpus "
            f"(rounds: {', '.join(f'{x:.2f}' for x in ocr)})"
        )
    if image_results:
        print(f"\n{len(images)} images (the sample PNG/JPEG figures, one pixel changed per copy)")
        print(
            "| image path | images/s (ingest) | CLIP image embedding alone, images/s | ingest s | peak RSS MB, main process | peak RSS MB, with workers |"
        )
        print("| --- | --- | --- | --- | --- | --- |")
        for name, r in image_results.items():
            clip = f"{r['clip_embed_images_per_s']:.1f}" if "clip_embed_images_per_s" in r else "–"
            print(
                f"| {name} | {len(images) / r['ingest_s']:.2f} | {clip} | {r['ingest_s']:.1f} | {r['peak_rss_mb']:.0f} | {r['tree_rss_mb']:.0f} |"
            )


def run_children(tmp: Path, label: str, files: list[Path], pipelines: list[str]) -> dict:
    """Each pipeline in a fresh process of its own (its own peak memory, its own model loading)."""
    tmp.mkdir(parents=True, exist_ok=True)
    listing = tmp / f"{label}.json"
    listing.write_text(json.dumps([str(p) for p in files]))
    results = {}
    for pipeline in pipelines:
        command = [sys.executable, __file__, "--pipeline", pipeline, "--files", str(listing), "--data-dir", str(tmp / pipeline)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
        if done.returncode:
            sys.exit(f"{pipeline} failed:\n{done.stderr[-3000:]}")
        results[pipeline] = json.loads(done.stdout.split("RESULT ", 1)[1])
    return results


if __name__ == "__main__":
    main()
