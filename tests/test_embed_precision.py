"""The text embedder in bfloat16 (MMKB_EMBED_PRECISION=auto on CPUs that have it) finds what float32 finds."""

from __future__ import annotations

import numpy as np
import pytest

from app import registry
from ingest.embedders import TextEmbedder, native_bf16, use_bf16
from tests.conftest import make_settings

# Loads the real text embedder: the full suite's, not the fast tier's.
pytestmark = pytest.mark.slow

PASSAGES = [
    "The hotel cap in Munich is 180 EUR per night, room only.",
    "Clean the inverter's air intake filter every six months; replace it when torn.",
    "LED interlighting raised the weekly tomato yield of bays B1 and B3 by 11 percent.",
    "Lunch is reimbursed up to 20 EUR when the trip lasts more than eight hours.",
    "The DC isolator must be switched off before the front cover is opened.",
]
QUESTIONS = [
    "How much may I spend on a hotel in Munich?",
    "How often is the filter cleaned?",
    "Did the LED lights increase yield?",
    "What is the meal allowance?",
    "What do I switch off before opening the cover?",
]


def test_precision_setting():
    assert use_bf16("float32", "cpu") is False
    assert use_bf16("bfloat16", "cpu") is True
    assert use_bf16("auto", "cpu") == native_bf16("cpu")


def test_bfloat16_vectors_match_float32_and_rank_passages_alike(tmp_path):
    model_dir = registry.resolve("text_embedder", make_settings(tmp_path))
    exact = TextEmbedder(model_dir, device="cpu", precision="float32")
    fast = TextEmbedder(model_dir, device="cpu", precision="bfloat16")
    assert not exact.bf16 and fast.bf16
    for texts in (PASSAGES, QUESTIONS):
        cosines = np.sum(exact.embed(texts) * fast.embed(texts), axis=1)
        assert cosines.min() > 0.999, cosines
    ranks_exact = np.argmax(exact.embed(QUESTIONS) @ exact.embed(PASSAGES).T, axis=1)
    ranks_fast = np.argmax(fast.embed(QUESTIONS) @ fast.embed(PASSAGES).T, axis=1)
    assert ranks_exact.tolist() == ranks_fast.tolist() == list(range(len(QUESTIONS)))


def test_bfloat16_weights_kept_give_autocasts_vectors_bit_identical(tmp_path):
    """The linear layers' weights stored in bfloat16 (not re-cast by autocast at every pass)
    give exactly the vectors of an unmodified model under the same autocast."""
    import torch
    from sentence_transformers import SentenceTransformer

    model_dir = registry.resolve("text_embedder", make_settings(tmp_path))
    fast = TextEmbedder(model_dir, device="cpu", precision="bfloat16")
    plain = SentenceTransformer(str(model_dir), device="cpu")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        reference = plain.encode(PASSAGES, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    assert np.array_equal(fast.embed(PASSAGES), reference)
