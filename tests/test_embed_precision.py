"""The text embedder in bfloat16 (MMKB_EMBED_PRECISION=auto on CPUs that have it) finds what float32 finds;
its length-sorted batches give the vectors of one plain sentence-transformers call."""

from __future__ import annotations

import numpy as np
import pytest

from app import registry
from ingest.embedders import TextEmbedder, length_batches, native_bf16, use_bf16
from tests.conftest import make_settings

slow = pytest.mark.slow  # loads the real text embedder: the full suite's, not the fast tier's

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


@slow
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


@slow
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


def test_length_batches_cover_every_text_once_in_batches_of_one_length():
    lengths = [30, 220, 25, 128, 120, 31, 125, 12, 218, 122] * 3
    batches = length_batches(lengths, max_batch=8)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    assert all(0 < len(batch) <= 8 for batch in batches)
    # No batch mixes the ~220-token texts (tables) with the short ones (captions, headings).
    for batch in batches:
        sizes = [lengths[i] for i in batch]
        assert not (max(sizes) >= 218 and min(sizes) <= 31), sizes
    padded = sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)
    assert padded < 1.15 * sum(lengths)
    # Texts of one length: as few batches as max_batch allows; one text, one batch.
    assert [len(batch) for batch in length_batches([100] * 20, max_batch=8)] in ([8, 8, 4], [4, 8, 8], [8, 4, 8])
    assert length_batches([100] * 20, max_batch=32) == [list(range(20))]
    assert length_batches([7], max_batch=32) == [[0]] and length_batches([], max_batch=32) == []


@slow
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_length_batches_give_the_vectors_of_one_plain_call(tmp_path, precision):
    """Batches of one length pad less; the vectors are those of sentence-transformers' own
    batching of the same texts (cosine > 0.9999, same ranking)."""
    import torch
    from sentence_transformers import SentenceTransformer

    model_dir = registry.resolve("text_embedder", make_settings(tmp_path))
    embedder = TextEmbedder(model_dir, device="cpu", precision=precision)
    plain = SentenceTransformer(str(model_dir), device="cpu")
    table = "| Bay | Yield kg/m2 week 12 | week 13 | week 14 | change |\n" + "| B1 | 1.92 | 2.04 | 2.11 | +9.9 % |\n" * 12
    texts = PASSAGES + QUESTIONS + [table, "Figure 2.", "Hotel rooms in Munich"]

    def reference(batch: list[str]):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=embedder.bf16):
            return plain.encode(batch, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)

    assert len(length_batches(embedder._lengths(texts), 32)) > 1
    ours, theirs = embedder.embed(texts), reference(texts)
    assert np.sum(ours * theirs, axis=1).min() > 0.9999
    assert np.argmax(ours[5:10] @ ours[:5].T, axis=1).tolist() == np.argmax(theirs[5:10] @ theirs[:5].T, axis=1).tolist()
