"""A CLIP model folder of either published kind, read into transformers' CLIPModel.

- Hugging Face transformers: ``config.json`` with ``"model_type": "clip"`` (``openai/clip-vit-*``
  and the many CLIP folders saved with ``save_pretrained``).
- OpenCLIP: ``open_clip_config.json`` and ``open_clip_model.safetensors`` or
  ``open_clip_pytorch_model.bin``, as OpenCLIP publishes its models on the Hugging Face hub
  (LAION, DataComp, DFN, MetaCLIP ViT-B/L/H/g/bigG). A folder with both is read as transformers.

OpenCLIP folders are converted here, not run by open_clip: open_clip imports torchvision, and
the only torchvision for torch 2.13.0 is a CUDA build that fails to import beside the CPU torch
pinned here ("operator torchvision::nms does not exist"); once installed it would also switch
transformers' image processors over to it. OpenCLIP's plain ``CLIP`` (a ViT image tower and
CLIP's text transformer) is transformers' CLIPModel parameter for parameter, so its weights are
renamed (attention's packed q/k/v split in three) and run by transformers. Other OpenCLIP
towers (timm or ResNet image towers, Hugging Face text encoders, SigLIP, CoCa, layer scale,
custom attention) are refused, naming what differs.

Every failure is a ClipFolderError whose message names the folder and what to fix.
"""

from __future__ import annotations

import gzip
import html
import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

OPENCLIP_CONFIG = "open_clip_config.json"
OPENCLIP_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
_SETUP = (
    "MMKB_IMAGE_EMBEDDER_PATH must name a CLIP folder: a Hugging Face transformers one (config.json with "
    '"model_type": "clip") or an OpenCLIP one (open_clip_config.json + open_clip_model.safetensors or '
    "open_clip_pytorch_model.bin)"
)

# OpenCLIP settings that change the architecture away from transformers' CLIP, with the value
# that keeps it (open_clip's defaults). Anything else in the config only sizes the model.
_VISION_PLAIN: dict[str, Any] = {
    "timm_model_name": None,
    "ls_init_value": None,
    "attentional_pool": False,
    "no_ln_pre": False,
    "pos_embed_type": "learnable",
    "final_ln_after_pool": False,
    "pool_type": "tok",
    "act_kwargs": None,
    "norm_kwargs": None,
    "block_type": None,
    "qk_norm": False,
    "scaled_cosine_attn": False,
    "scale_heads": False,
    "scale_attn_inner": False,
    "scale_attn": False,
    "scale_fc": False,
    "input_patchnorm": False,
}
_TEXT_PLAIN: dict[str, Any] = {
    "hf_model_name": None,
    "hf_tokenizer_name": None,
    "tokenizer_mode": None,
    "ls_init_value": None,
    "embed_cls": False,
    "no_causal_mask": False,
    "final_ln_after_pool": False,
    "pool_type": "argmax",
    "proj_bias": False,
    "proj_type": "linear",
    "act_kwargs": None,
    "norm_kwargs": None,
    "block_type": None,
    "qk_norm": False,
    "scaled_cosine_attn": False,
    "scale_heads": False,
    "scale_attn_inner": False,
    "scale_attn": False,
    "scale_fc": False,
}
_MODEL_PLAIN: dict[str, Any] = {"multimodal_cfg": None, "init_logit_bias": None}


class ClipFolderError(ValueError):
    """The folder is not a CLIP model this loader reads; the message says why and what works."""


@dataclass
class ClipFolder:
    kind: Literal["transformers", "openclip"]
    model: Any  # transformers.CLIPModel, in eval mode
    tokenizer: Any  # called as tokenizer(texts, return_tensors="pt", padding=True, truncation=True)
    image_processor: Any  # called as image_processor(images=[PIL images], return_tensors="pt")
    clean: Callable[[str], str] = field(default=lambda text: text)  # applied to a text before the tokenizer


def clip_folder_kind(path: Path) -> Literal["transformers", "openclip"]:
    path = Path(path)
    if not path.is_dir():
        raise ClipFolderError(f"{path} is not a folder. {_SETUP}")
    config = path / "config.json"
    if config.is_file():
        model_type = _read_json(config).get("model_type")
        if model_type == "clip":
            return "transformers"
        if not (path / OPENCLIP_CONFIG).is_file():
            raise ClipFolderError(f"{config} describes a {model_type!r} model, not CLIP. {_SETUP}")
    if (path / OPENCLIP_CONFIG).is_file():
        if not any((path / name).is_file() for name in OPENCLIP_WEIGHTS):
            raise ClipFolderError(f"{path} has {OPENCLIP_CONFIG} but no weights ({' or '.join(OPENCLIP_WEIGHTS)})")
        return "openclip"
    raise ClipFolderError(f"{path} holds neither config.json nor {OPENCLIP_CONFIG}. {_SETUP}")


def load_clip_folder(path: Path) -> ClipFolder:
    path = Path(path)
    kind = clip_folder_kind(path)
    if kind == "transformers":
        from transformers import CLIPModel, CLIPProcessor

        processor = CLIPProcessor.from_pretrained(path)
        return ClipFolder(kind, CLIPModel.from_pretrained(path).eval(), processor.tokenizer, processor.image_processor)
    return _load_openclip(path)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ClipFolderError(f"{path} cannot be read as JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ClipFolderError(f"{path} is not a JSON object")
    return data


def _unlike_plain_clip(section: str, config: dict, plain: dict[str, Any]) -> list[str]:
    return [f"{section}.{key}={config[key]!r}" for key, value in plain.items() if config.get(key, value) != value]


def _openclip_config(path: Path) -> tuple[dict, dict]:
    raw = _read_json(path / OPENCLIP_CONFIG)
    # The hub layout nests the model under "model_cfg"; open_clip's own model_configs/*.json do not.
    model = raw.get("model_cfg", raw)
    vision, text = model.get("vision_cfg"), model.get("text_cfg")
    if not isinstance(vision, dict) or not isinstance(text, dict) or "embed_dim" not in model:
        raise ClipFolderError(f"{path / OPENCLIP_CONFIG} lacks embed_dim, vision_cfg or text_cfg: not an OpenCLIP model config")
    differences = _unlike_plain_clip("model_cfg", model, _MODEL_PLAIN) + _unlike_plain_clip("vision_cfg", vision, _VISION_PLAIN)
    differences += _unlike_plain_clip("text_cfg", text, _TEXT_PLAIN)
    if isinstance(vision.get("layers", 12), (list, tuple)):
        differences.append("vision_cfg.layers is a list (a ResNet image tower)")
    for key in ("image_size", "patch_size"):
        value = vision.get(key)
        if isinstance(value, (list, tuple)) and len(set(value)) > 1:
            differences.append(f"vision_cfg.{key}={value} (not square)")
    if (text.get("tokenizer_kwargs") or {}).get("clean", "lower") != "lower":
        differences.append(f"text_cfg.tokenizer_kwargs={text['tokenizer_kwargs']}")
    preprocess = raw.get("preprocess_cfg", {})
    if preprocess.get("resize_mode", "shortest") not in ("shortest", "squash"):
        differences.append(f"preprocess_cfg.resize_mode={preprocess['resize_mode']!r}")
    if differences:
        raise ClipFolderError(
            f"{path} is an OpenCLIP model this loader cannot run: {', '.join(differences)}. Only OpenCLIP's plain CLIP "
            "(ViT image tower + CLIP text transformer, e.g. ViT-B-32, ViT-B-16, ViT-L-14, ViT-H-14, ViT-g-14, ViT-bigG-14) "
            "loads; convert the model to a transformers CLIP folder, or use one"
        )
    return model, preprocess


def _side(value) -> int:
    return int(value[0] if isinstance(value, (list, tuple)) else value)


def _hf_config(model: dict, tokenizer):
    from transformers import CLIPConfig

    vision, text = model["vision_cfg"], model["text_cfg"]
    act = "quick_gelu" if model.get("quick_gelu") else "gelu"  # nn.GELU is the exact (erf) GELU, as transformers' "gelu"
    v_width, t_width = int(vision.get("width", 768)), int(text.get("width", 512))
    return CLIPConfig(
        projection_dim=int(model["embed_dim"]),
        vision_config=dict(
            hidden_size=v_width,
            intermediate_size=int(v_width * float(vision.get("mlp_ratio", 4.0))),
            num_hidden_layers=int(vision.get("layers", 12)),
            num_attention_heads=v_width // int(vision.get("head_width", 64)),
            image_size=_side(vision.get("image_size", 224)),
            patch_size=_side(vision.get("patch_size", 16)),
            hidden_act=act,
            layer_norm_eps=1e-5,  # torch's LayerNorm default, which open_clip uses
        ),
        text_config=dict(
            vocab_size=int(text.get("vocab_size", 49408)),
            hidden_size=t_width,
            intermediate_size=int(t_width * float(text.get("mlp_ratio", 4.0))),
            num_hidden_layers=int(text.get("layers", 12)),
            num_attention_heads=int(text.get("heads", 8)),
            max_position_embeddings=int(text.get("context_length", 77)),
            hidden_act=act,
            layer_norm_eps=1e-5,
            # open_clip pools the text at the highest token id, the end-of-text token, which
            # transformers finds as the first end-of-text (padding repeats it after).
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
    )


def _state_dict(path: Path) -> dict:
    import torch

    weights = next(path / name for name in OPENCLIP_WEIGHTS if (path / name).is_file())
    state: Any  # torch.load gives whatever the file pickled
    try:
        if weights.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(weights))
        else:
            state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: say which and why
        raise ClipFolderError(f"{weights} cannot be read as weights ({type(exc).__name__}: {exc})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):  # a training checkpoint
        state = state["state_dict"]
    renamed = {}
    for key, tensor in state.items():
        key = key.removeprefix("module.")
        # CustomTextCLIP keeps its text tower under "text."; plain CLIP keeps it at the top.
        renamed[key.removeprefix("text.") if key.startswith("text.") else key] = tensor.float()
    return renamed


def _hf_state_dict(state: dict, vision_layers: int, text_layers: int) -> dict:
    """OpenCLIP parameter names to transformers' CLIPModel names (the tensors themselves unchanged,
    but for the packed attention projections, split in q, k, v, and the projections, transposed)."""
    out: dict = {}

    def take(key: str):
        try:
            return state.pop(key)
        except KeyError:
            raise ClipFolderError(f"the OpenCLIP weights lack {key}: not a plain CLIP ViT checkpoint") from None

    def blocks(source: str, target: str, layers: int) -> None:
        for i in range(layers):
            s, t = f"{source}.resblocks.{i}", f"{target}.layers.{i}"
            for name in ("weight", "bias"):
                q, k, v = take(f"{s}.attn.in_proj_{name}").chunk(3, dim=0)
                for projection, tensor in zip(("q_proj", "k_proj", "v_proj"), (q, k, v)):
                    out[f"{t}.self_attn.{projection}.{name}"] = tensor
                out[f"{t}.self_attn.out_proj.{name}"] = take(f"{s}.attn.out_proj.{name}")
                out[f"{t}.layer_norm1.{name}"] = take(f"{s}.ln_1.{name}")
                out[f"{t}.layer_norm2.{name}"] = take(f"{s}.ln_2.{name}")
                out[f"{t}.mlp.fc1.{name}"] = take(f"{s}.mlp.c_fc.{name}")
                out[f"{t}.mlp.fc2.{name}"] = take(f"{s}.mlp.c_proj.{name}")

    out["vision_model.embeddings.class_embedding"] = take("visual.class_embedding")
    out["vision_model.embeddings.patch_embedding.weight"] = take("visual.conv1.weight")
    out["vision_model.embeddings.position_embedding.weight"] = take("visual.positional_embedding")
    for name in ("weight", "bias"):
        out[f"vision_model.pre_layrnorm.{name}"] = take(f"visual.ln_pre.{name}")  # sic: transformers' spelling
        out[f"vision_model.post_layernorm.{name}"] = take(f"visual.ln_post.{name}")
        out[f"text_model.final_layer_norm.{name}"] = take(f"ln_final.{name}")
    blocks("visual.transformer", "vision_model.encoder", vision_layers)
    out["visual_projection.weight"] = take("visual.proj").T.contiguous()
    out["text_model.embeddings.token_embedding.weight"] = take("token_embedding.weight")
    out["text_model.embeddings.position_embedding.weight"] = take("positional_embedding")
    blocks("transformer", "text_model.encoder", text_layers)
    out["text_projection.weight"] = take("text_projection").T.contiguous()
    out["logit_scale"] = take("logit_scale").reshape(())
    state.pop("attn_mask", None)
    state.pop("logit_bias", None)
    if state:
        raise ClipFolderError(f"the OpenCLIP weights hold parameters plain CLIP has not: {', '.join(sorted(state)[:5])}")
    return out


def _openclip_tokenizer(path: Path, context_length: int):
    """The folder's own CLIP tokenizer files where it has them (LAION's folders do), else CLIP's
    BPE vocabulary as open_clip_torch ships it, read without importing open_clip."""
    from transformers import CLIPTokenizer

    if (path / "tokenizer.json").is_file() or ((path / "vocab.json").is_file() and (path / "merges.txt").is_file()):
        return CLIPTokenizer.from_pretrained(path, model_max_length=context_length)
    spec = importlib.util.find_spec("open_clip")
    package = Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None
    bpe = package / "bpe_simple_vocab_16e6.txt.gz" if package else None
    if bpe is None or not bpe.is_file():
        raise ClipFolderError(
            f"{path} has no tokenizer files (tokenizer.json, or vocab.json + merges.txt), and CLIP's BPE vocabulary, "
            "which OpenCLIP models use, comes from `pip install --no-deps open_clip_torch==3.3.0`"
        )
    # As open_clip's SimpleTokenizer builds it: 256 byte symbols, the same with the end-of-word
    # mark, one token per merge, then start and end of text (ids 49406 and 49407).
    merges = [tuple(line.split()) for line in gzip.open(bpe).read().decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]]
    symbols = list(_bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    # tokenizers' BPE takes (first, second) pairs, which transformers annotates as list[str]
    return CLIPTokenizer(vocab={t: i for i, t in enumerate(tokens)}, merges=merges, model_max_length=context_length)  # type: ignore[arg-type]


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte-to-character table, which CLIP's BPE is written in."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes, extra = printable[:], 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes)))


def _image_processor(model: dict, preprocess: dict):
    """open_clip's PIL preprocessing as transformers' PIL CLIP processor: resize (shortest side,
    or both sides for "squash"), centre crop, scale to 0-1, normalise."""
    from PIL import Image
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    side = _side(model["vision_cfg"].get("image_size", 224))
    resample = Image.Resampling.BILINEAR if preprocess.get("interpolation") == "bilinear" else Image.Resampling.BICUBIC
    squash = preprocess.get("resize_mode") == "squash"
    return CLIPImageProcessorPil(
        size={"height": side, "width": side} if squash else {"shortest_edge": side},
        crop_size={"height": side, "width": side},
        do_center_crop=not squash,
        resample=resample,
        image_mean=list(preprocess.get("mean", OPENAI_MEAN)),
        image_std=list(preprocess.get("std", OPENAI_STD)),
    )


def _no_init_weights():
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # transformers 4.x
        from transformers.modeling_utils import no_init_weights
    return no_init_weights()


def _load_openclip(path: Path) -> ClipFolder:
    from transformers import CLIPModel

    model_cfg, preprocess = _openclip_config(path)
    context_length = int(model_cfg["text_cfg"].get("context_length", 77))
    tokenizer = _openclip_tokenizer(path, context_length)
    config = _hf_config(model_cfg, tokenizer)
    if len(tokenizer) != config.text_config.vocab_size:
        raise ClipFolderError(f"{path}: the tokenizer has {len(tokenizer)} tokens, the model {config.text_config.vocab_size}")
    state = _hf_state_dict(_state_dict(path), config.vision_config.num_hidden_layers, config.text_config.num_hidden_layers)
    with _no_init_weights():  # every parameter is loaded next; random init would only cost time
        model = CLIPModel(config)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a shape that the config does not predict
        raise ClipFolderError(f"{path}: the weights do not fit {OPENCLIP_CONFIG} ({exc})") from None
    missing = [k for k in missing if not k.endswith("position_ids")]  # a buffer transformers makes itself
    if missing or unexpected:
        raise ClipFolderError(f"{path}: weights missing {missing[:5]} / unexpected {unexpected[:5]} after conversion")
    return ClipFolder("openclip", model.eval(), tokenizer, _image_processor(model_cfg, preprocess), clean=openclip_clean)


def openclip_clean(text: str) -> str:
    """What open_clip's tokenizer does to a text before its BPE (transformers' CLIPTokenizer
    lower-cases and folds whitespace too, but leaves mojibake and HTML entities: "&amp;")."""
    try:
        import ftfy

        text = ftfy.fix_text(text)
    except ImportError:  # ftfy is in requirements.lock; without it only mojibake stays unfixed
        pass
    return html.unescape(html.unescape(text)).strip()
