"""fake_tiny_openclip: a randomly initialised OpenCLIP model in the folder layout OpenCLIP
publishes (open_clip_config.json + open_clip_model.safetensors), built by open_clip's own code
from its own ViT-B-32 config shrunk to a few layers. Weights are random: it proves that an
OpenCLIP folder loads and computes what open_clip computes, never retrieval quality.

Run as a script, in its own process:

    python -m tests.fake_openclip OUT_DIR --captions captions.json --pixels pixels.npy

It writes the folder, then OUT_DIR/reference.json: open_clip's own token ids for the captions,
its text vectors, and its image vectors for the given pixel tensors (N, 3, S, S), all from
open_clip's forward pass, for the loader's output to be compared with.

Why a process of its own, with torchvision faked: open_clip's model code imports one class,
``torchvision.ops.misc.FrozenBatchNorm2d`` (used only by ResNet towers), and torchvision's only
build for torch 2.13.0 is a CUDA one that fails to import next to the CPU torch pinned here.
The fake module stands in for that import only, in this process only, so that pytest's
process (where transformers checks for torchvision) never sees it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import types
from pathlib import Path

IMAGE_SIDE = 32


def _import_open_clip_model():
    """open_clip's model and tokenizer modules without its package __init__ (which imports its
    torchvision-based transforms), torchvision's one needed class faked."""
    import torch
    import transformers  # noqa: F401 - checks for torchvision once, before the fake exists (hf_model imports it)

    class FakeFrozenBatchNorm2d(torch.nn.Module):  # only ResNet towers build one; none here
        def __init__(self, *args, **kwargs):
            raise RuntimeError("fake torchvision: FrozenBatchNorm2d is not available")

    for name in ("torchvision", "torchvision.ops", "torchvision.ops.misc"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["torchvision.ops.misc"].FrozenBatchNorm2d = FakeFrozenBatchNorm2d
    spec = importlib.util.find_spec("open_clip")
    if spec is None:
        raise SystemExit("open_clip_torch is not installed (pip install --no-deps open_clip_torch==3.3.0)")
    package = types.ModuleType("open_clip")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["open_clip"] = package
    import open_clip.model
    import open_clip.tokenizer

    return open_clip.model, open_clip.tokenizer, Path(package.__path__[0])


def tiny_config(package_dir: Path, quick_gelu: bool = True) -> dict:
    """open_clip's own ViT-B-32 config, shrunk: the same keys and architecture, tiny shapes."""
    config = json.loads((package_dir / "model_configs" / "ViT-B-32.json").read_text())
    config["embed_dim"] = 24
    config["quick_gelu"] = quick_gelu
    config["vision_cfg"].update(image_size=IMAGE_SIDE, layers=2, width=64, patch_size=8, head_width=32)
    config["text_cfg"].update(width=32, heads=2, layers=2)
    return config


def build(out: Path, captions: list[str], pixels) -> Path:
    import numpy as np
    import torch

    model_module, tokenizer_module, package_dir = _import_open_clip_model()
    config = tiny_config(package_dir)
    torch.manual_seed(0)
    model = model_module.CLIP(**config).eval()  # open_clip's own random initialisation
    out.mkdir(parents=True, exist_ok=True)
    preprocess = {
        "mean": [0.48145466, 0.4578275, 0.40821073],
        "std": [0.26862954, 0.26130258, 0.27577711],
        "interpolation": "bicubic",
        "resize_mode": "shortest",
    }
    (out / "open_clip_config.json").write_text(json.dumps({"model_cfg": config, "preprocess_cfg": preprocess}, indent=2))
    from safetensors.torch import save_file

    state = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, str(out / "open_clip_model.safetensors"))

    tokenizer = tokenizer_module.SimpleTokenizer(context_length=config["text_cfg"]["context_length"])
    tokens = tokenizer(captions)
    with torch.inference_mode():
        text = model.encode_text(tokens, normalize=True)
        image = model.encode_image(torch.as_tensor(np.asarray(pixels, dtype=np.float32)), normalize=True)
    ids = [[int(t) for t in row if t != 0] for row in tokens]
    reference = {"token_ids": ids, "text": text.tolist(), "image": image.tolist()}
    (out / "reference.json").write_text(json.dumps(reference))
    return out


def main() -> None:
    import numpy as np

    parser = argparse.ArgumentParser(description="Build fake_tiny_openclip (random weights) and open_clip's reference vectors.")
    parser.add_argument("out", type=Path)
    parser.add_argument("--captions", type=Path, required=True, help="a JSON list of captions")
    parser.add_argument("--pixels", type=Path, required=True, help="a .npy of preprocessed images, (N, 3, 32, 32)")
    args = parser.parse_args()
    build(args.out, json.loads(args.captions.read_text()), np.load(args.pixels))


if __name__ == "__main__":
    main()
