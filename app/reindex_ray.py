"""The parse + embed stage of `kb reindex` and `kb ingest` on Ray Data.

Documents flow through `map_batches` into a pool of `MMKB_RAY_ACTORS` actors, each of which
loads the models once and builds one document per call with the same code as the local
path (app.reindex_build.build_document). Results stream back to the driver as each
document finishes (in the order they finish), so it stages or stores them at once: a
killed job loses at most the documents in flight, and the driver holds only those. SQL
writes and the index stay in the driver.

Workers read the stored originals and write figure images under the data directory, so on
a multi-node cluster (RAY_ADDRESS) that directory must be shared storage at the same path,
and mmkb must be installed on the workers.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from app.reindex_build import DocumentTask, StagedDocument, build_document
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
_NOT_FOR_WORKERS = {"database_url", "ray_address", "openai_api_key"}


class _Builder:
    """A Ray Data actor: models loaded in __init__, once per actor, not per batch."""

    def __init__(self, settings_data: dict) -> None:
        from app import registry  # noqa: F401 - hub libraries offline before any model import
        from app.model_set import ModelSet

        self.settings = Settings(**settings_data)
        self.models = ModelSet(self.settings)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        # Tasks travel as JSON: Arrow columns would turn the optional chunk sizes into NaN.
        tasks = [DocumentTask(**json.loads(str(encoded))) for encoded in batch["task"]]
        staged = [build_document(task, self.settings, self.models).to_json() for task in tasks]
        return {"document_id": np.array([t.document_id for t in tasks], dtype=np.int64), "staged": np.array(staged, dtype=object)}


def _worker_settings(settings: Settings) -> dict:
    data = settings.model_dump(mode="json", exclude=_NOT_FOR_WORKERS)
    # Workers do not share the driver's working directory: every path must be absolute.
    data["data_dir"] = str(settings.data_dir.resolve())
    return data


# One Ray connection per process, shared by the builds running in it at once (a server's
# concurrent uploads): made by the first, shut down by the last if this process made it.
_session_lock = threading.Lock()
_session_users = 0
_session_ours = False


@contextmanager
def _ray_session(settings: Settings) -> Iterator[None]:
    global _session_users, _session_ours
    import ray

    with _session_lock:
        if _session_users == 0 and not ray.is_initialized():
            if settings.ray_address:
                ray.init(address=settings.ray_address, log_to_driver=False)
            else:  # a local Ray on this machine; its workers import mmkb from this checkout
                ray.init(include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
            _session_ours = True
        _session_users += 1
    try:
        yield
    finally:
        with _session_lock:
            _session_users -= 1
            if _session_users == 0 and _session_ours:
                _session_ours = False
                ray.shutdown()


def build_on_ray(tasks: list[DocumentTask], settings: Settings) -> Iterator[StagedDocument]:
    """Each task's built document, as it finishes. Lazy: nothing starts before the first
    result is asked for, and closing the iterator early ends the Ray job."""
    import ray

    with _ray_session(settings):
        ray.data.DataContext.get_current().enable_progress_bars = False  # the CLI shows its own bar
        absolute = [replace(t, stored_path=str(Path(t.stored_path).resolve()) if t.stored_path else "") for t in tasks]
        dataset = ray.data.from_items(
            [{"task": json.dumps(asdict(t))} for t in absolute], override_num_blocks=len(absolute)
        ).map_batches(
            _Builder,
            fn_constructor_kwargs={"settings_data": _worker_settings(settings)},
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=max(1, settings.ray_actors)),
            num_cpus=1,
        )
        figures = settings.figures_dir.resolve()
        for row in dataset.iter_rows():
            staged = StagedDocument.from_json(row["staged"])
            # Figure paths as the local path records them (relative when the data dir is).
            staged.chunks = [
                replace(c, image_path=str(settings.figures_dir / Path(c.image_path).name))
                if c.image_path and Path(c.image_path).parent == figures
                else c
                for c in staged.chunks
            ]
            yield staged
