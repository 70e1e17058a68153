"""Bring your own CLIP: MMKB_IMAGE_EMBEDDER_PATH naming an OpenCLIP folder or a Hugging Face
transformers CLIP folder, and the clear refusal of anything else.

No CLIP weights can be installed here, so the OpenCLIP folder is fake_tiny_openclip
(tests/fake_openclip.py): open_clip's own ViT-B-32 config shrunk, random weights, built by
open_clip's own model code, which also writes its token ids and vectors for our captions and
images. The loader must reproduce them, and kb's CLIP path must rank images as open_clip's
vectors do. Random weights: this proves the plumbing, NEVER retrieval quality.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from app.answering import RetrievalOptions
from app.image_evaluation import format_image_report, run_image_eval
from app.model_set import ModelSet
from app.models import Chunk, Document
from app.service import KnowledgeBase
from ingest.clip_folders import ClipFolderError, clip_folder_kind
from ingest.embedders import ClipEmbedder
from samples.untrained_clip import build_untrained_clip
from tests.conftest import ROOT, make_settings
from tests.fake_openclip import IMAGE_SIDE

CAPTIONS = [
    "a red and blue gradient",
    "a black and white checkerboard",
    "a green circle on a white background",
    "television static noise",
    "A woman stands in the dining area at the table.",
    "Two dogs play in the snow &amp; the sun",
]
OPENAI_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
OPENAI_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def _photos() -> dict[str, bytes]:
    """Four 64 px pictures without text, named so that neither OCR nor the file name tells them apart."""
    side = 64
    x = np.linspace(0, 255, side)
    gradient = np.stack([np.tile(x[::-1], (side, 1)), np.zeros((side, side)), np.tile(x, (side, 1))], axis=-1)
    checks = ((np.indices((side, side)) // 8).sum(axis=0) % 2 * 255)[..., None].repeat(3, axis=-1)
    yy, xx = np.indices((side, side))
    circle = np.full((side, side, 3), 255.0)
    circle[(yy - 32) ** 2 + (xx - 32) ** 2 < 20**2] = (30, 160, 40)
    noise = np.random.default_rng(0).integers(0, 256, (side, side, 3))
    photos = {}
    for number, pixels in enumerate((gradient, checks, circle, noise), start=1):
        buffer = io.BytesIO()
        Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(buffer, format="PNG")
        photos[f"photo-{number}.png"] = buffer.getvalue()
    return photos


def _openclip_pixels(png: bytes) -> np.ndarray:
    """open_clip's preprocessing of a square picture, written out: PIL bicubic resize to the
    model's side (torchvision's Resize does exactly this for a PIL image), to 0-1, normalise."""
    image = Image.open(io.BytesIO(png)).convert("RGB").resize((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.BICUBIC)
    return ((np.asarray(image, dtype=np.float32) / 255.0 - OPENAI_MEAN) / OPENAI_STD).transpose(2, 0, 1)


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    return _photos()


@pytest.fixture(scope="module")
def fake_tiny_openclip(tmp_path_factory, photos) -> tuple[Path, dict]:
    """The folder and open_clip's own reference: token ids, text vectors, image vectors (in photos' order)."""
    work = tmp_path_factory.mktemp("fake-openclip-input")
    (work / "captions.json").write_text(json.dumps(CAPTIONS))
    np.save(work / "pixels.npy", np.stack([_openclip_pixels(png) for png in photos.values()]))
    out = tmp_path_factory.mktemp("models") / "fake_tiny_openclip"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.fake_openclip",
            str(out),
            "--captions",
            str(work / "captions.json"),
            "--pixels",
            str(work / "pixels.npy"),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    reference = json.loads((out / "reference.json").read_text())
    (out / "reference.json").unlink()  # the folder as OpenCLIP publishes one: config + weights only
    return out, reference


def _open_clip_order(reference: dict, names: list[str]) -> dict[str, list[str]]:
    """For each caption, the photos in the order open_clip's own vectors rank them (the answer key;
    on this seed neighbouring scores differ by 1e-4 or more, the loader's vectors by 1e-6 or less)."""
    scores = np.asarray(reference["text"]) @ np.asarray(reference["image"]).T
    return {caption: [names[i] for i in np.argsort(-row)] for caption, row in zip(CAPTIONS, scores)}


@pytest.mark.slow  # the CLI in a process of its own: real models, or the app's start
def test_an_openclip_folder_loads_and_computes_what_open_clip_computes(fake_tiny_openclip, photos):
    folder, reference = fake_tiny_openclip
    assert clip_folder_kind(folder) == "openclip"
    clip = ClipEmbedder(folder, device="cpu")
    assert clip.kind == "openclip" and clip.dim == 24 and clip.name == "clip:fake_tiny_openclip (OpenCLIP)"
    # CLIP's BPE from open_clip_torch's vocabulary file, after open_clip's text cleaning ("&amp;"):
    # the same token ids as open_clip's own tokenizer.
    assert clip.tokenizer([clip.clean(c) for c in CAPTIONS])["input_ids"] == reference["token_ids"]
    np.testing.assert_allclose(clip.embed_texts(CAPTIONS), reference["text"], atol=1e-5)
    # From the PNG bytes, as ingest hands them over: transformers' image processor, then the image tower.
    images = clip.embed_images(list(photos.values()))
    np.testing.assert_allclose(images, reference["image"], atol=2e-3)
    assert np.allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)


def test_a_pytorch_checkpoint_and_the_folders_own_tokenizer_files_load_alike(fake_tiny_openclip, tmp_path):
    """open_clip_pytorch_model.bin as a training run saves it (under "state_dict", "module."
    prefixes) and a folder with its own tokenizer files, as LAION's carry them."""
    import torch
    from safetensors.torch import load_file

    folder, reference = fake_tiny_openclip
    copy = tmp_path / "openclip-bin"
    copy.mkdir()
    shutil.copy(folder / "open_clip_config.json", copy)
    state = load_file(str(folder / "open_clip_model.safetensors"))
    torch.save({"epoch": 32, "state_dict": {f"module.{k}": v for k, v in state.items()}}, copy / "open_clip_pytorch_model.bin")
    ClipEmbedder(folder, device="cpu").tokenizer.save_pretrained(copy)
    assert (copy / "tokenizer.json").is_file()
    clip = ClipEmbedder(copy, device="cpu")
    assert clip.tokenizer([clip.clean(c) for c in CAPTIONS])["input_ids"] == reference["token_ids"]
    np.testing.assert_allclose(clip.embed_texts(CAPTIONS), reference["text"], atol=1e-5)


def test_a_transformers_clip_folder_still_loads(tmp_path):
    folder = build_untrained_clip(tmp_path / "fake_tiny_clip", "tiny")
    assert clip_folder_kind(folder) == "transformers"
    clip = ClipEmbedder(folder, device="cpu")
    assert clip.kind == "transformers" and clip.name == "clip:fake_tiny_clip"
    assert clip.embed_texts(["a bar chart"]).shape == (1, 24)


@pytest.mark.slow  # the CLI in a process of its own: real models, or the app's start
def test_a_folder_that_is_neither_is_refused_with_the_reason(tmp_path, fake_tiny_openclip):
    folder, _ = fake_tiny_openclip
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ClipFolderError, match="holds neither config.json nor open_clip_config.json.*OpenCLIP one"):
        ClipEmbedder(empty, device="cpu")
    with pytest.raises(ClipFolderError, match="is not a folder"):
        ClipEmbedder(folder / "open_clip_config.json", device="cpu")
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ClipFolderError, match="describes a 'bert' model, not CLIP"):
        ClipEmbedder(bert, device="cpu")
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    shutil.copy(folder / "open_clip_config.json", no_weights)
    with pytest.raises(ClipFolderError, match="but no weights"):
        ClipEmbedder(no_weights, device="cpu")
    # An OpenCLIP architecture transformers' CLIP cannot run (SigLIP-like: timm image tower,
    # no causal mask): refused naming what differs, before any weight is read.
    siglip = tmp_path / "siglip-like"
    shutil.copytree(folder, siglip)
    config = json.loads((siglip / "open_clip_config.json").read_text())
    config["model_cfg"]["vision_cfg"]["timm_model_name"] = "vit_base_patch16_siglip_224"
    config["model_cfg"]["text_cfg"]["no_causal_mask"] = True
    (siglip / "open_clip_config.json").write_text(json.dumps(config))
    refused = r"cannot run: vision_cfg.timm_model_name='vit_base_patch16_siglip_224', text_cfg.no_causal_mask=True"
    with pytest.raises(ClipFolderError, match=refused):
        ClipEmbedder(siglip, device="cpu")
    # The same error where the app loads it: the configured path, through the model set.
    with pytest.raises(ClipFolderError, match="holds neither"):
        ModelSet(make_settings(tmp_path / "m", image_embedder_path=empty)).image_embedder
    # And `kb ingest` with it: one line saying what to fix, not a traceback.
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "MMKB_DATA_DIR": str(tmp_path / "cli"),
        "MMKB_IMAGE_EMBEDDER_PATH": str(empty),
        "MMKB_PARSE_WORKERS": "0",
        "HOME": str(tmp_path),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "ingest",
            str(ROOT / "samples" / "collection" / "danger-high-voltage-sign.jpg"),
            "-c",
            "photos",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "error:" in done.stderr and "holds neither" in done.stderr and "Traceback" not in done.stderr, done.stderr[-2000:]


@pytest.fixture()
def openclip_models(tmp_path, models, fake_tiny_openclip) -> ModelSet:
    """The real default models plus fake_tiny_openclip, configured as an admin would."""
    clip_set = ModelSet(make_settings(tmp_path / "m", image_embedder_path=fake_tiny_openclip[0]))
    clip_set.text_embedder, clip_set.ocr, clip_set.reranker = models.text_embedder, models.ocr, models.reranker
    return clip_set


def test_ingest_and_a_caption_query_go_through_the_openclip_path(tmp_path, photos, fake_tiny_openclip, openclip_models):
    """fake_tiny_openclip: the answer key is what open_clip itself ranks first, so this proves kb
    reproduces open_clip's ranking through ingest, the index and the fused search; nothing more."""
    _, reference = fake_tiny_openclip
    order = _open_clip_order(reference, list(photos))
    assert len({ranked[0] for ranked in order.values()}) > 1  # the key is not one photo for every caption
    image_dir = tmp_path / "set" / "images"
    image_dir.mkdir(parents=True)
    for name, png in photos.items():
        (image_dir / name).write_bytes(png)
    settings = make_settings(tmp_path / "data", min_image_score=-1.0)  # random weights: any cosine counts
    kb = KnowledgeBase(settings, models=openclip_models)
    try:
        user = kb.system_user()
        assert not kb.ingest(user, "photos", paths=sorted(image_dir.iterdir())).failed
        (collection,) = kb.readable_collections(user, ["photos"])
        with kb.database.session() as session:
            rows = session.execute(select(Chunk.id, Document.filename).join(Document, Document.id == Chunk.document_id))
            filenames = dict(rows.all())
        for caption in CAPTIONS:
            ranking = kb._answerer().rank(caption, [collection], RetrievalOptions(keyword=True, rerank=True))
            # Every photo found by its CLIP vector, in open_clip's order, and among the fused candidates.
            assert [filenames[chunk_id] for chunk_id in ranking.lists["clip"]] == order[caption], caption
            assert set(ranking.lists["clip"]) <= {c.chunk_id for c in ranking.chunks}
    finally:
        kb.close()

    (tmp_path / "set" / "captions.jsonl").write_text(
        "".join(json.dumps({"file": order[caption][0], "caption": caption}) + "\n" for caption in CAPTIONS)
    )
    report = run_image_eval(tmp_path / "set", make_settings(tmp_path / "eval", min_image_score=-1.0), openclip_models)
    table = format_image_report(report)
    assert "CLIP: clip:fake_tiny_openclip (OpenCLIP)" in table and "| fused (text + CLIP, RRF) |" in table
    clip_row = next(r for r in report.results if r.name == "CLIP text→image")
    assert clip_row.metrics["R@1"] == 1.0, table
