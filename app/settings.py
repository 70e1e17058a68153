"""The one settings object: environment variables (prefix ``MMKB_``) over an optional TOML file.

Precedence, highest first: explicit constructor arguments, environment variables,
the config file named by ``MMKB_CONFIG`` (default ``<data_dir>/mmkb.toml`` if it exists),
then the defaults below.
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict


def _config_file_source() -> dict[str, Any]:
    explicit = os.environ.get("MMKB_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(f"MMKB_CONFIG points to {path}, which does not exist")
    else:
        data_dir = Path(os.environ.get("MMKB_DATA_DIR", "data"))
        path = data_dir / "mmkb.toml"
        if not path.is_file():
            return {}
    with path.open("rb") as handle:
        return tomllib.load(handle)


class _TomlSource(PydanticBaseSettingsSource):
    def get_field_value(self, field, field_name):  # pragma: no cover - unused by pydantic for dict sources
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return _config_file_source()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MMKB_", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="Where the database, indexes and stored files live.")
    database_url: str | None = Field(
        default=None,
        validation_alias="DATABASE_URL",
        description="SQLAlchemy URL; default is a SQLite file under data_dir.",
    )

    # Model choices: a registry role name resolves to a package or to a local path.
    # Text embedders: all-MiniLM-L6-v2 (English; best SciFact default row and fastest to index
    # here), multilingual-e5-small-q4 (Chinese and cross-lingual questions; ~8x the indexing CPU
    # time) or use-multilingual-v3 (benchmarks/RESULTS.md, issue 12). The stored vectors are
    # the embedder's: after a change, `kb reindex`.
    text_embedder: str = "all-MiniLM-L6-v2"
    # No CLIP or cross-encoder weights are published as packages: by default images are
    # indexed by their caption and OCR text, and candidates are reranked by lexical fusion.
    # Set MMKB_IMAGE_EMBEDDER_PATH / MMKB_RERANKER_PATH to local model folders to use them.
    image_embedder: str = "none"
    reranker: str = "lexical"
    # Chosen by `benchmarks/answer_quality.py` on the public us-public-records set (RESULTS.md):
    # the 0.5B refused or babbled ("[1] [2] [3]") where the 1.5B answered.
    generator: str = "qwen2.5-coder-1.5b-instruct-q4"
    generator_backend: str = Field(default="llama-cpp", description="llama-cpp, transformers, transformers-vlm or openai")
    # llama.cpp threads; None = one per core that other processes leave free, chosen per answer (app.idle_cores).
    generator_threads: int | None = None
    # llama-cpp prompt-lookup decoding: tokens guessed from the prompt per step (answers copy from
    # their sources), verified in one batch; 0 = off. Off: slower on 2 CPU cores (benchmarks/answer_latency.py).
    generator_prompt_lookup: int = Field(default=0, ge=0)
    openai_base_url: str | None = None
    openai_model: str = "default"
    openai_api_key: SecretStr | None = None  # SecretStr: never printed in logs or reprs
    # Send retrieved figures to the OpenAI-compatible server as image_url parts; false for a
    # server whose model reads text only (it would refuse the request).
    openai_images: bool = True
    # Optional explicit local paths that override the packaged weights for each role.
    text_embedder_path: Path | None = None
    image_embedder_path: Path | None = None
    reranker_path: Path | None = None
    generator_path: Path | None = None

    # Ingestion
    max_upload_mb: float = 200.0
    # Small chunks: sharper retrieval on 2 cores and a short prompt for a small local model.
    chunk_tokens: int = 128
    chunk_overlap_tokens: int = 32
    min_image_side_px: int = 64
    ocr_images: bool = True
    # Pages of a PDF that are only a picture of text (scans) are OCRed into page text.
    ocr_scanned_pages: bool = True
    # tesseract (Debian packages, installed by scripts/setup.sh) or rapidocr (ONNX models in the
    # wheel); tesseract won on English words and speed in benchmarks/ocr.py (benchmarks/RESULTS.md).
    ocr_engine: Literal["rapidocr", "tesseract"] = "tesseract"
    embed_batch_size: int = 32
    # The text embedder's arithmetic: auto = bfloat16 where the CPU/GPU has it natively (2x
    # faster here, vectors within 1e-4 cosine of float32), else float32.
    embed_precision: Literal["auto", "float32", "bfloat16"] = "auto"
    # Processes that parse and OCR the next files while this one embeds the current file; None =
    # one per core, at most 8 (ingest.reading.default_parse_workers); 0 = parse in this process.
    parse_workers: int | None = Field(default=None, ge=0)
    # Zip uploads are expanded; these bound what one archive may unpack to (zip bombs).
    zip_max_files: int = 1000
    zip_max_total_mb: float = 2000.0
    # Threads per model call (torch embedders/rerankers, ONNX OCR); None = half the cores, at
    # least 1 (ingest.embedders.torch_threads): on a small machine shared with other work extra
    # threads spin waiting for a core: 2.5-5.6x slower embedding, ~2x slower OCR measured here.
    model_threads: int | None = None
    # `kb reindex` on Ray Data: RAY_ADDRESS (Ray's own variable, read unprefixed like
    # DATABASE_URL) names a cluster; each actor loads the models once.
    ray_address: str | None = Field(default=None, validation_alias="RAY_ADDRESS")
    ray_actors: int = 1
    # `kb reindex` keeps the live index when the collection's own evaluation set (app.collection_eval)
    # finds fewer questions in the first 5 on the new one: recall@5 lower by more than this.
    reindex_guard_margin: float = Field(default=0.05, ge=0.0, le=1.0)

    # Query
    dense_top_k: int = 40
    # Collection-wide BM25 fused with the dense hits by reciprocal rank (finds exact codes
    # such as "HX-FAN-77" that the 384-d embedding blurs); off = dense candidates only.
    hybrid_search: bool = True
    keyword_top_k: int = 40
    rrf_k: int = 60
    # HyDE: the generator writes a hypothetical answer whose embedding joins the question's.
    # Off by default: it costs one generator call (~5-10 s on 2 CPU cores) per new question.
    hyde: bool = False
    hyde_max_new_tokens: int = 96
    hyde_cache_size: int = 512
    # A question written in Chinese is also searched in its English translation, written by
    # the generator (one short generation): the default embedder reads English only. Off by
    # default: on the public set's two cross-lingual questions it found the right documents
    # but not the right pages (benchmarks/RESULTS.md), at one more generation per question.
    translate_questions: bool = False
    image_top_k: int = 4
    # Above this many vectors a collection's FAISS index becomes HNSW (approximate, much
    # faster); below it search is exact. 0 or less: never.
    hnsw_threshold: int = 50_000
    # FAISS on a GPU: auto = when this faiss build has CUDA and sees a GPU; on = required; off = never.
    faiss_gpu: Literal["auto", "on", "off"] = "auto"
    # FAISS OpenMP threads; None = half the cores (see retrieval.vector_store.configure_faiss_threads).
    faiss_threads: int | None = None
    # CLIP text-to-image cosine below this is noise for ViT-B/32-class models.
    min_image_score: float = 0.2
    rerank_top_n: int = 40
    # Maximal marginal relevance over the reranked list (0..1: lower = more diverse); None = off.
    mmr_lambda: float | None = Field(default=None, ge=0.0, le=1.0)
    context_chunks: int = 5
    # An answer refused (or unsupported) while one source holds a sentence covering the question
    # (the verified quote) is asked once more from that source alone (one more generation).
    focused_retry: bool = True
    max_new_tokens: int = 256
    # Best reranked score below which the reply is "not in the documents"; None = the reranker's own floor.
    min_relevance: float | None = None
    # Admission of questions (app.admission): at most this many in the server at once (more get
    # 503 + Retry-After), at most ask_per_user of one user's (more get 429), and none waits
    # longer than ask_max_wait_s for the generator. Each gets its verified quote at once.
    ask_max_admitted: int = Field(default=16, ge=1)
    ask_per_user: int = Field(default=2, ge=1)
    ask_max_wait_s: float = Field(default=600.0, gt=0)
    # Ingestion runs this many niceness steps below questions (its thread and its parse
    # workers), so that an upload slows answers as little as the machine allows; 0 = equal.
    ingest_niceness: int = Field(default=10, ge=0, le=19)
    # Folders the admin console may register for folder sync (app.folder_sync) must lie under one
    # of these (symbolic links resolved), so a web admin cannot mirror /etc into a collection.
    # Empty (the default): the console registers no folder; `kb sync` at the shell is not bound.
    # From the environment: paths separated by ':' (like PATH); in mmkb.toml, a list.
    sync_roots: Annotated[list[Path], NoDecode] = Field(default_factory=list)

    # Single sign-on by LDAP / Active Directory bind (app/directory.py); off while ldap_url is unset.
    # A user unknown here (or signed in from the directory before) is checked by binding as them;
    # local accounts with a password keep logging in locally. Either a DN template
    # ("uid={username},ou=people,dc=example,dc=org") binds directly, or the user's DN is searched
    # for under ldap_user_search_base with ldap_user_filter, bound as ldap_bind_dn (or anonymously).
    ldap_url: str | None = None  # ldap://host:389 or ldaps://host:636
    ldap_start_tls: bool = False
    ldap_ca_file: Path | None = None  # CA certificates for ldaps:// / StartTLS; default: the system's
    ldap_user_dn_template: str | None = None
    ldap_user_search_base: str | None = None
    ldap_user_filter: str = "(uid={username})"  # Active Directory: (sAMAccountName={username})
    ldap_bind_dn: str | None = None
    ldap_bind_password: SecretStr | None = None  # SecretStr: never printed in logs or reprs
    # Groups whose members include the user (groupOfNames, groupOfUniqueNames, posixGroup, AD groups);
    # they are matched to collection roles (`kb admin directory-group`) by name (this attribute) or DN.
    ldap_group_search_base: str | None = None
    ldap_group_filter: str = "(|(member={user_dn})(uniqueMember={user_dn})(memberUid={username}))"
    ldap_group_name_attribute: str = "cn"
    ldap_timeout_s: float = Field(default=5.0, gt=0)

    # UI
    host: str = "127.0.0.1"
    port: int = 7860
    # `kb mcp --transport http` (streamable HTTP at /mcp; same host as the chat by default).
    mcp_port: int = 7862
    # A chat login lapses after this many hours; the browser then asks for the password again.
    session_hours: float = Field(default=12.0, gt=0)
    # Questions the chat handles at once; more wait in Gradio's queue (and are told so). Each
    # searches and shows its quote at once and then waits its turn at the generator
    # (app.admission), which writes one answer at a time.
    chat_concurrency: int = Field(default=16, ge=1)

    @field_validator("database_url", "ray_address", "ldap_url", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return value or None

    @field_validator("sync_roots", mode="before")
    @classmethod
    def _path_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part for part in value.split(os.pathsep) if part.strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls,
        init_settings,
        env_settings,
        dotenv_settings,
        file_secret_settings,
    ):
        # DATABASE_URL is read without the prefix because that is what every deployment tool sets.
        return (init_settings, env_settings, _TomlSource(settings_cls), file_secret_settings)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'mmkb.sqlite3').resolve()}"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "indexes"

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def figures_dir(self) -> Path:
        return self.data_dir / "figures"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def zip_max_total_bytes(self) -> int:
        return int(self.zip_max_total_mb * 1024 * 1024)

    def ensure_dirs(self) -> None:
        for path in (self.data_dir, self.index_dir, self.files_dir, self.figures_dir):
            path.mkdir(parents=True, exist_ok=True)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
