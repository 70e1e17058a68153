"""Randomly initialised CLIP models in the folder layout of a real one, built offline.

No CLIP weights can be installed in this environment (none ship as a package), so tests and
benchmarks build their own: "tiny" (a second to build; tests of the CLIP code path) and
"vit-b-32" (the shapes of OpenAI's ViT-B/32, the usual default: what the image path costs,
since speed depends on the shapes, not on the weights). Neither says anything about quality.
"""

from __future__ import annotations

from pathlib import Path

VOCABULARY = ["an electrical wiring diagram", "a bar chart", "a red warning sign", "a photo of a sign on a wall"]


def build_untrained_clip(out: Path, shapes: str = "tiny", vocabulary: list[str] = VOCABULARY) -> Path:
    """config + safetensors, tokenizer.json + tokenizer_config.json, preprocessor_config.json.
    The tokenizer is a word-level one trained on `vocabulary` (CLIP's BPE files are not here)."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<|startoftext|>", "<|endoftext|>"]
    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(vocabulary, trainers.WordLevelTrainer(special_tokens=specials))
    bos, eos, pad = (tokenizer.token_to_id(t) for t in ("<|startoftext|>", "<|endoftext|>", "<pad>"))
    # CLIP's text tower pools the hidden state at the end-of-text token: every text needs one.
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>", special_tokens=[("<|startoftext|>", bos), ("<|endoftext|>", eos)]
    )
    max_length = 16 if shapes == "tiny" else 77
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<|startoftext|>", eos_token="<|endoftext|>", pad_token="<pad>",
        unk_token="<unk>", model_max_length=max_length,
    ).save_pretrained(out)
    torch.manual_seed(0)
    ids = dict(vocab_size=tokenizer.get_vocab_size(), bos_token_id=bos, eos_token_id=eos, pad_token_id=pad)
    if shapes == "tiny":
        config = CLIPConfig(
            text_config=dict(ids, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                             max_position_embeddings=16),
            vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8),
            projection_dim=24,
        )
        side = 32
    elif shapes == "vit-b-32":
        config = CLIPConfig(text_config=ids, vision_config=dict(image_size=224, patch_size=32), projection_dim=512)
        side = 224
    else:
        raise ValueError(f"unknown shapes {shapes!r}: tiny or vit-b-32")
    CLIPModel(config).eval().save_pretrained(out)
    CLIPImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side}).save_pretrained(out)
    return out
