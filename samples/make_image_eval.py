"""A tiny captioned image set from the samples' standalone images, for `kb eval images`:
OUT/images/ (the images) and OUT/captions.jsonl (samples/image_queries.json's queries as captions).

    python samples/make_image_eval.py OUT_DIR [--neutral-names]

--neutral-names stores the images as image-1.png, ... so that the text path cannot read the
answer off the file name and has to rely on the OCR text alone.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent


def write_image_set(out: Path, neutral_names: bool = False) -> Path:
    queries = json.loads((HERE / "image_queries.json").read_text(encoding="utf-8"))
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    captions: dict[str, list[str]] = {}
    for query in queries:
        captions.setdefault(query["file"], []).append(query["query"])
    with (out / "captions.jsonl").open("w", encoding="utf-8") as handle:
        for number, (name, texts) in enumerate(sorted(captions.items()), start=1):
            source = HERE / "collection" / name
            target = f"image-{number}{source.suffix}" if neutral_names else name
            shutil.copyfile(source, images / target)
            handle.write(json.dumps({"file": target, "captions": texts}, ensure_ascii=False) + "\n")
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--neutral-names", action="store_true")
    args = parser.parse_args()
    print(write_image_set(args.out, args.neutral_names))
