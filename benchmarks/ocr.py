"""OCR engines compared on rendered text of known content: character error rate and speed.

    python benchmarks/ocr.py [--engines rapidocr,tesseract] [--save DIR]

Known English and Chinese passages are rendered to images (DejaVu Sans / Noto Sans CJK,
found with fc-match), each in two conditions: "clean" (black on white, 150 dpi-like) and
"scan" (rotated 1.5 degrees, blurred, speckled, grey paper, JPEG at quality 40). Every engine
reads every image with the configuration ingestion uses; CER is the Levenshtein distance
between the reference and the output with all whitespace removed, divided by the
reference length (Chinese has no spaces and Tesseract adds some between CJK characters);
WER (English only) compares lower-cased words, so words run together count as errors.
Seconds per image exclude model loading (measured once, reported apart).
"""

from __future__ import annotations

import argparse
import io
import random
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PIL import Image, ImageDraw, ImageFilter, ImageFont  # noqa: E402

from ingest.ocr import ENGINES, load_ocr  # noqa: E402

TEXTS = {
    "en": [
        "Hotel costs are reimbursed up to 180 EUR per night in Munich and 150 EUR elsewhere.",
        "Before opening the inverter, switch off the DC isolator and wait five minutes.",
        "The interlit bays yielded 14.2 percent more class A tomatoes than the control bays.",
        "Invoice HX-FAN-77 was paid on 3 March 2025; the next service is due in October.",
    ],
    "zh": [
        "员工出差住宿费用每晚最高报销一百八十欧元。",
        "打开逆变器之前，请先断开直流开关并等待五分钟。",
        "补光温室的番茄产量比对照温室高出百分之十四。",
        "下一次设备维护安排在十月份，请提前通知仓库。",
    ],
}


@dataclass(frozen=True)
class Sample:
    language: str
    condition: str
    reference: str
    png: bytes


def font_path(family: str) -> str:
    found = subprocess.run(["fc-match", "-f", "%{file}", family], capture_output=True, text=True, check=True).stdout
    if not found:
        raise SystemExit(f"no font for {family!r}: apt-get install fonts-dejavu-core fonts-noto-cjk")
    return found


def render(text: str, font: ImageFont.FreeTypeFont, width: int = 1200) -> Image.Image:
    """The text wrapped to `width` pixels, black on white, with page-like margins."""
    draw = ImageDraw.Draw(Image.new("L", (1, 1)))
    lines: list[str] = []
    units = text.split(" ") if " " in text else list(text)
    joiner = " " if " " in text else ""
    line = ""
    for unit in units:
        candidate = f"{line}{joiner}{unit}" if line else unit
        if draw.textlength(candidate, font=font) > width - 120 and line:
            lines.append(line)
            line = unit
        else:
            line = candidate
    lines.append(line)
    height = 120 + int(font.size * 1.6) * len(lines)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    for index, text_line in enumerate(lines):
        draw.text((60, 60 + int(font.size * 1.6) * index), text_line, font=font, fill=0)
    return image


def as_scan(image: Image.Image, seed: int, angle: float = 1.5) -> Image.Image:
    """A photocopy-like version: slightly rotated, blurred, grey paper, speckles, JPEG artefacts."""
    rng = random.Random(seed)
    scan = image.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=255).filter(ImageFilter.GaussianBlur(0.8))
    pixels = scan.load()
    for _ in range(scan.width * scan.height // 150):
        x, y = rng.randrange(scan.width), rng.randrange(scan.height)
        pixels[x, y] = rng.choice((0, 90, 160))
    scan = scan.point(lambda value: int(40 + value * 0.78))  # grey paper, weaker contrast
    buffer = io.BytesIO()
    scan.save(buffer, format="JPEG", quality=40)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("L")


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def samples() -> list[Sample]:
    families = {"en": font_path("DejaVu Sans"), "zh": font_path("Noto Sans CJK SC")}
    result = []
    for language, texts in TEXTS.items():
        font, small = ImageFont.truetype(families[language], 30), ImageFont.truetype(families[language], 17)
        for index, text in enumerate(texts):
            clean = render(text, font)
            result.append(Sample(language, "clean", text, png_bytes(clean)))
            result.append(Sample(language, "scan", text, png_bytes(as_scan(clean, seed=index))))
            # A low-resolution, more skewed copy: a fax or a phone photo of a page.
            result.append(
                Sample(language, "poor scan", text, png_bytes(as_scan(render(text, small, 700), seed=index, angle=3.0)))
            )
        # A whole page: every passage as its own paragraph, twice, degraded like a scan.
        page_text = (" " if language == "en" else "").join(texts * 2)
        page = render(page_text, ImageFont.truetype(families[language], 24), width=1650)
        result.append(Sample(language, "page scan", page_text, png_bytes(as_scan(page, seed=99))))
    return result


def edit_distance(a, b) -> int:
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def cer(reference: str, output: str) -> float:
    ref, out = "".join(reference.split()), "".join(output.split())
    return edit_distance(ref, out) / max(1, len(ref))


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:[.-][a-z0-9]+)*", text.lower())


def wer(reference: str, output: str) -> float:
    """Word error rate over lower-cased words (English): glued words ("EURpernight"), which
    CER without whitespace forgives, break keyword search and embeddings, so they count."""
    ref, out = _words(reference), _words(output)
    return edit_distance(ref, out) / max(1, len(ref))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--save", type=Path, help="also write the rendered images here")
    args = parser.parse_args()
    data = samples()
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        for index, sample in enumerate(data):
            (args.save / f"{index:02d}-{sample.language}-{sample.condition}.png").write_bytes(sample.png)
    rows = []
    for name in args.engines.split(","):
        started = time.perf_counter()
        engine = load_ocr(name)
        engine.read(data[0].png)  # warm-up: first call loads models / language data
        load_s = time.perf_counter() - started
        results: dict[tuple[str, str], list[tuple[float, float | None, float]]] = {}
        for sample in data:
            started = time.perf_counter()
            output = engine.read(sample.png)
            seconds = time.perf_counter() - started
            word_error = wer(sample.reference, output) if sample.language == "en" else None
            results.setdefault((sample.language, sample.condition), []).append(
                (cer(sample.reference, output), word_error, seconds)
            )
        groups = list(results.items()) + [(("all", "all"), [v for values in results.values() for v in values])]
        for (language, condition), values in groups:
            word_errors = [v[1] for v in values if v[1] is not None]
            rows.append(
                (
                    name,
                    language,
                    condition,
                    len(values),
                    sum(v[0] for v in values) / len(values),
                    sum(word_errors) / len(word_errors) if word_errors else None,
                    sum(v[2] for v in values) / len(values),
                )
            )
        print(f"{name}: load + first image {load_s:.1f} s", file=sys.stderr)
    print("| engine | language | condition | images | CER | WER (en) | s/image |")
    print("|---|---|---|---:|---:|---:|---:|")
    for name, language, condition, count, error, word_error, seconds in rows:
        words = f"{word_error:.3f}" if word_error is not None else "–"
        print(f"| {name} | {language} | {condition} | {count} | {error:.3f} | {words} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
