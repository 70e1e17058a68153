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

    data_dir: Path = Field(
        default=Path("data"),
        description="database, FAISS indexes, stored originals, figure images, joined model files",
        json_schema_extra={"doc_default": "`data`"},
    )
    database_url: str | None = Field(
        default=None,
        validation_alias="DATABASE_URL",
        description="any SQLAlchemy URL, e.g. `postgresql+psycopg://user:pw@host/mmkb`",
        json_schema_extra={"doc_default": "SQLite file in the data dir"},
    )

    # Model choices: a registry role name resolves to a package or to a local path.
    # Text embedders: all-MiniLM-L6-v2 (English; best SciFact default row and fastest to index
    # here), multilingual-e5-small-q4 (Chinese and cross-lingual questions; ~8x the indexing CPU
    # time) or use-multilingual-v3 (benchmarks/RESULTS.md, issue 12). The stored vectors are
    # the embedder's: after a change, `kb reindex`.
    text_embedder: str = Field(
        default="all-MiniLM-L6-v2",
        description="the text embedder of collections that have not chosen their own ([per collection](#a-text-embedder-per-collection)): `all-MiniLM-L6-v2` (English; best on SciFact here, fastest to index), `multilingual-e5-small-q4` (Chinese and cross-lingual questions; ~8x the indexing CPU time) or `use-multilingual-v3`; stored vectors are the embedder's, so a change needs `kb reindex` of those collections (numbers: `benchmarks/RESULTS.md`, issue 12)",
        json_schema_extra={"doc_default": "`all-MiniLM-L6-v2`"},
    )
    # No CLIP or cross-encoder weights are published as packages: by default images are
    # indexed by their caption and OCR text, and candidates are reranked by lexical fusion.
    # Set MMKB_IMAGE_EMBEDDER_PATH / MMKB_RERANKER_PATH to local model folders to use them.
    image_embedder: str = Field(
        default="none",
        description="the packaged image-text embedder's registry name; `none`: figures are found by caption, OCR text and file name (no CLIP weights are published as a package; see `MMKB_IMAGE_EMBEDDER_PATH`)",
    )
    reranker: str = Field(
        default="lexical",
        description="the packaged reranker's registry name; `lexical`: the dense score fused with BM25 over the candidates (no cross-encoder weights are published as a package; see `MMKB_RERANKER_PATH`)",
    )
    # Chosen by `benchmarks/answer_quality.py` on the public us-public-records set (RESULTS.md):
    # the 0.5B refused or babbled ("[1] [2] [3]") where the 1.5B answered.
    generator: str = Field(
        default="qwen2.5-coder-1.5b-instruct-q4",
        description="packaged generator; or `qwen2.5-coder-0.5b-instruct-q4` (about 2× faster, answers less often itself) or `smollm2-135m-instruct-q4`",
        json_schema_extra={"doc_default": "`qwen2.5-coder-1.5b-instruct-q4`"},
    )
    generator_backend: str = Field(
        default="llama-cpp",
        description="`llama-cpp`, `transformers` (HF text folder), `transformers-vlm` (HF vision-language folder) or `openai` (any OpenAI-compatible server); see [Generator backends](#generator-backends)",
        json_schema_extra={"doc_default": "`llama-cpp`"},
    )
    # llama.cpp threads; None = one per core that other processes leave free, chosen per answer (app.idle_cores).
    generator_threads: int | None = Field(
        default=None,
        description="llama.cpp threads, for reading the prompt and for writing the answer alike. Unset: before each answer mmkb samples for 0.2 s how busy its cores are with other processes and takes one thread per free core (ggml's threads wait for each other after every operation: on the loaded 2-core VM 1 thread read a prompt 2× and wrote 4× faster than 2; on free cores 2 threads answered in half the time). A number fixes it",
        json_schema_extra={"doc_default": "one per free core, per answer"},
    )
    # llama-cpp prompt-lookup decoding: tokens guessed from the prompt per step (answers copy from
    # their sources), verified in one batch; 0 = off. Off: slower on 2 CPU cores (benchmarks/answer_latency.py).
    generator_prompt_lookup: int = Field(
        default=0,
        ge=0,
        description="llama.cpp prompt-lookup decoding: tokens guessed per step from the prompt (answers copy from sources), verified in one batch. Same greedy answers (but for near-ties), yet slower on 2 CPU cores, where checking the guesses costs what it saves: first token 9.4 → 12.9 s and 25 → 13 tokens/s (0.5B), 21.6 → 27.1 s and 12.6 → 9.3 tokens/s (1.5B), so off",
        json_schema_extra={"doc_default": "`0` (off)"},
    )
    openai_base_url: str | None = Field(
        default=None,
        description="for the `openai` backend (vLLM, Ollama, LM Studio, llama.cpp server)",
        json_schema_extra={"doc_default": "–"},
    )
    openai_model: str = Field(
        default="default",
        description="the model name sent to the `openai` backend",
        json_schema_extra={"doc_row": "openai_base_url"},
    )
    openai_api_key: SecretStr | None = Field(
        default=None,
        description="the `openai` backend's API key (a secret: never logged)",
        json_schema_extra={"doc_row": "openai_base_url"},
    )  # SecretStr: never printed in logs or reprs
    # Send retrieved figures to the OpenAI-compatible server as image_url parts; false for a
    # server whose model reads text only (it would refuse the request).
    openai_images: bool = Field(
        default=True,
        description="send retrieved figures to the `openai` backend as `image_url` parts; `false` for a server whose model reads text only (it would refuse them)",
        json_schema_extra={"doc_default": "`true`"},
    )
    # Optional explicit local paths that override the packaged weights for each role.
    text_embedder_path: Path | None = Field(
        default=None,
        description="a sentence-transformers folder to use as the text embedder instead of the packaged one; a change needs `kb reindex`",
    )
    image_embedder_path: Path | None = Field(
        default=None,
        description="a CLIP folder, Hugging Face transformers or OpenCLIP format, to also search images by what they show; a change needs `kb reindex` ([Bring your own CLIP](#bring-your-own-clip))",
        json_schema_extra={"doc_default": "–"},
    )
    reranker_path: Path | None = Field(
        default=None,
        description="a sentence-transformers cross-encoder folder; default is lexical fusion (below)",
        json_schema_extra={"doc_default": "–"},
    )
    generator_path: Path | None = Field(
        default=None,
        description="a GGUF file (llama-cpp) or a model folder (transformers, transformers-vlm: required) instead of the packaged one",
        json_schema_extra={"doc_default": "–"},
    )

    # Ingestion
    max_upload_mb: float = Field(
        default=200.0, description="larger files are refused with a message", json_schema_extra={"doc_default": "`200`"}
    )
    # Small chunks: sharper retrieval on 2 cores and a short prompt for a small local model.
    chunk_tokens: int = Field(
        default=128,
        description="chunk size in embedder tokens, for collections without their own (`kb collections create/set NAME --chunk-tokens N --chunk-overlap M`, or `chunk_tokens` / `chunk_overlap_tokens` in `POST /api/collections`); a change applies to files ingested afterwards",
        json_schema_extra={"doc_default": "`128`"},
    )
    chunk_overlap_tokens: int = Field(
        default=32,
        description="tokens shared by consecutive chunks",
        json_schema_extra={"doc_row": "chunk_tokens", "doc_default": "`32`"},
    )
    min_image_side_px: int = Field(
        default=64, description="embedded images smaller than this on either side (icons, bullets, rules) are not kept as figures"
    )
    ocr_images: bool = Field(default=True, description="OCR figures and image files", json_schema_extra={"doc_default": "`true`"})
    # Pages of a PDF that are only a picture of text (scans) are OCRed into page text.
    ocr_scanned_pages: bool = Field(
        default=True,
        description="PDF pages with no text layer that are one full-page image are rendered and OCRed into page text (cited by page like born-digital text)",
        json_schema_extra={"doc_default": "`true`"},
    )
    # tesseract (Debian packages, installed by scripts/setup.sh) or rapidocr (ONNX models in the
    # wheel); tesseract won on English words and speed in benchmarks/ocr.py (benchmarks/RESULTS.md).
    ocr_engine: Literal["rapidocr", "tesseract"] = Field(
        default="tesseract",
        description="`tesseract` (Debian `tesseract-ocr` + `eng`, `chi_sim`, installed by `scripts/setup.sh` when run as root; if missing, files that need OCR fail with the apt command to run) or `rapidocr` (ONNX models inside the wheel, nothing to install; better on degraded Chinese, 4× slower, glues English words); measured by `benchmarks/ocr.py`, see `benchmarks/RESULTS.md`",
        json_schema_extra={"doc_default": "`tesseract`"},
    )
    embed_batch_size: int = Field(default=32, description="texts per embedder call while ingesting")
    # The text embedder's arithmetic: auto = bfloat16 where the CPU/GPU has it natively (2x
    # faster here, vectors within 1e-4 cosine of float32), else float32.
    embed_precision: Literal["auto", "float32", "bfloat16"] = Field(
        default="auto",
        description="the text embedder's arithmetic: `auto` = bfloat16 where the CPU (AVX512-BF16/AMX) or GPU has it natively, else float32; `float32`; `bfloat16`. bfloat16 embedded 2× faster on this repository's CPU with vectors within 1e-4 cosine of float32 (`benchmarks/RESULTS.md`)",
        json_schema_extra={"doc_default": "`auto`"},
    )
    # Processes that parse and OCR the next files while this one embeds the current file; None =
    # one per core, at most 8 (ingest.reading.default_parse_workers); 0 = parse in this process.
    parse_workers: int | None = Field(
        default=None,
        ge=0,
        description="worker processes that parse, detect tables and OCR the next files of a batch while the ingesting process embeds the current one; a worker that dies (a file crashing MuPDF, the OOM killer) costs only that file, which is read again alone and fails with a reason if it kills its reader again; `0` = read in the ingesting process",
        json_schema_extra={"doc_default": "one per core, at most 8"},
    )
    # Zip uploads are expanded; these bound what one archive may unpack to (zip bombs).
    zip_max_files: int = Field(
        default=1000,
        description="a zip upload with more entries, or that inflates to more, is refused as a whole",
        json_schema_extra={"doc_default": "`1000`"},
    )
    zip_max_total_mb: float = Field(
        default=2000.0,
        description="the most one zip upload may inflate to, in MB",
        json_schema_extra={"doc_row": "zip_max_files", "doc_default": "`2000`"},
    )
    # Threads per model call (torch embedders/rerankers, ONNX OCR); None = half the cores, at
    # least 1 (ingest.embedders.torch_threads): on a small machine shared with other work extra
    # threads spin waiting for a core: 2.5-5.6x slower embedding, ~2x slower OCR measured here.
    model_threads: int | None = Field(
        default=None,
        description="threads per model call (torch embedders and rerankers, ONNX OCR). Not every core: torch's threads meet after every operator, so on a busy machine all wait for the slowest (1 thread embedded a query 10× and ingested 2× faster than 2 on the loaded 2-core VM); raise it on a dedicated many-core machine",
        json_schema_extra={"doc_default": "half the cores"},
    )
    # `kb reindex` and `kb ingest` on Ray Data: RAY_ADDRESS (Ray's own variable, read unprefixed like
    # DATABASE_URL) names a cluster; each actor loads the models once.
    ray_address: str | None = Field(
        default=None,
        validation_alias="RAY_ADDRESS",
        description="a Ray cluster (`ray://host:10001` or `auto`): `kb reindex`, `kb ingest` and uploads (console, API, folder sync) then run their parse, OCR and embed stages on Ray Data, as with `--ray` (which starts a local Ray when this is unset)",
        json_schema_extra={"doc_default": "–"},
    )
    ray_actors: int = Field(
        default=1,
        description="Ray Data actors for `kb reindex --ray` and `kb ingest --ray` (each run starts its own pool); each loads the models once (~0.5–1 GB) and takes one CPU",
        json_schema_extra={"doc_default": "`1`"},
    )
    # `kb reindex` keeps the live index when the collection's own evaluation set (app.collection_eval)
    # finds fewer questions in the first 5 on the new one: recall@5 lower by more than this.
    reindex_guard_margin: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="`kb reindex` keeps the live index of a collection whose own [evaluation set](#a-collections-own-evaluation-set) loses more than this much recall@5 on the new index (`--force` swaps anyway); 0–1",
        json_schema_extra={"doc_default": "`0.05`"},
    )

    # Query
    dense_top_k: int = Field(
        default=40,
        description="candidates per list, fusion constant, candidates the reranker sees",
        json_schema_extra={"doc_default": "`40`"},
    )
    # Collection-wide BM25 fused with the dense hits by reciprocal rank (finds exact codes
    # such as "HX-FAN-77" that the 384-d embedding blurs); off = dense candidates only.
    hybrid_search: bool = Field(
        default=True,
        description="BM25 over every text chunk of the searched collections, fused with the dense hits (RRF) before reranking",
        json_schema_extra={"doc_default": "`true`"},
    )
    keyword_top_k: int = Field(
        default=40,
        description="BM25 candidates per question",
        json_schema_extra={"doc_row": "dense_top_k", "doc_default": "`40`"},
    )
    rrf_k: int = Field(
        default=60,
        description="the reciprocal-rank-fusion constant",
        json_schema_extra={"doc_row": "dense_top_k", "doc_default": "`60`"},
    )
    # HyDE: the generator writes a hypothetical answer whose embedding joins the question's.
    # Off by default: it costs one generator call (~5-10 s on 2 CPU cores) per new question.
    hyde: bool = Field(
        default=False,
        description="HyDE: the generator writes a hypothetical answer whose embedding is averaged with the question's (+5–10 s per new question on 2 CPU cores; `ask(..., hyde=True)` or the API's `hyde` field per request; passage and its embedding cached per question in an in-process LRU of `MMKB_HYDE_CACHE_SIZE`=512)",
        json_schema_extra={"doc_default": "`false`"},
    )
    hyde_max_new_tokens: int = Field(default=96, description="the longest hypothetical answer HyDE writes")
    hyde_cache_size: int = Field(
        default=512, description="HyDE passages remembered per question text, so a repeated question costs no generation"
    )
    # A question written in Chinese is also searched in its English translation, written by
    # the generator (one short generation, ~2-3 s on 2 cores, Chinese questions only): the
    # default embedder reads English only, so without it a Chinese question never finds an
    # English page. On the public set: Chinese questions 6/8 -> 7/8 (benchmarks/RESULTS.md).
    translate_questions: bool = Field(
        default=True,
        description="also search a Chinese question in its English translation, written by the generator (one short generation, Chinese questions only; a translation holding a number the question does not is not used)",
        json_schema_extra={"doc_default": "`true`"},
    )
    image_top_k: int = Field(default=4, description="figures found by the image embedder per question, beside the text sources")
    # Above this many vectors a collection's FAISS index becomes HNSW (approximate, much
    # faster); below it search is exact. 0 or less: never.
    hnsw_threshold: int = Field(
        default=50_000,
        description="above this many vectors a collection's FAISS index becomes HNSW (approximate); `0` = always exact",
        json_schema_extra={"doc_default": "`50000`"},
    )
    # FAISS on a GPU: auto = when this faiss build has CUDA and sees a GPU; on = required; off = never.
    faiss_gpu: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="`auto`: search FAISS on a GPU when the installed faiss has CUDA (`faiss-gpu-cu12` instead of `faiss-cpu`) and sees one; `on`: required (error otherwise); `off`: CPU. GPU indexes are exact flat (FAISS has no GPU HNSW)",
        json_schema_extra={"doc_default": "`auto`"},
    )
    # FAISS OpenMP threads; None = half the cores (see retrieval.vector_store.configure_faiss_threads).
    faiss_threads: int | None = Field(
        default=None,
        description="FAISS OpenMP threads (a one-vector exact search over 100k took 42 ms with 1 thread, 103 ms with 2, on the loaded 2-core VM)",
        json_schema_extra={"doc_default": "half the cores"},
    )
    # CLIP text-to-image cosine below this is noise for ViT-B/32-class models.
    min_image_score: float = Field(
        default=0.2, description="a CLIP text-to-image cosine below this is noise (ViT-B/32-class models) and finds nothing"
    )
    rerank_top_n: int = Field(
        default=40,
        description="fused candidates the reranker scores",
        json_schema_extra={"doc_row": "dense_top_k", "doc_default": "`40`"},
    )
    # Maximal marginal relevance over the reranked list (0..1: lower = more diverse); None = off.
    mmr_lambda: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="maximal marginal relevance over the reranked list, 0–1 (lower = more diverse, 1 = reranker order): near-duplicate chunks give way to distinct ones; per request `ask(..., mmr_lambda=0.5)`, API field `mmr_lambda`",
        json_schema_extra={"doc_default": "– (off)"},
    )
    context_chunks: int = Field(
        default=5, description="sources given to the generator (the best reranked chunks), within its context window"
    )
    # An answer refused (or unsupported) while one source holds a sentence covering the question
    # (the verified quote) is asked once more from that source alone (one more generation).
    focused_retry: bool = Field(
        default=True,
        description='an answer the checks refuse while one source holds a sentence covering the question (the verified quote) is asked once more from that source alone; one more generation, only on those refusals (numbers: RESULTS.md, "A second look at one source")',
        json_schema_extra={"doc_default": "`true`"},
    )
    max_new_tokens: int = Field(default=256, description="the longest answer the generator writes, in tokens")
    # Best reranked score below which the reply is "not in the documents"; None = the reranker's own floor.
    min_relevance: float | None = Field(
        default=None,
        description='the best reranked score below which the reply is "not in the documents" without asking the model; unset: the reranker\'s own floor',
    )
    # Admission of questions (app.admission): at most this many in the server at once (more get
    # 503 + Retry-After), at most ask_per_user of one user's (more get 429), and none waits
    # longer than ask_max_wait_s for the generator. Each gets its verified quote at once.
    ask_max_admitted: int = Field(
        default=16,
        ge=1,
        description="questions in the server at once (more: 503 + `Retry-After`), of one user (more: 429 + `Retry-After`), and the longest one waits for the generator (then its verified quote is the answer where it clearly answers, else an error saying to retry)",
        json_schema_extra={"doc_default": "`16`"},
    )
    ask_per_user: int = Field(
        default=2,
        ge=1,
        description="questions of one user in the server at once",
        json_schema_extra={"doc_row": "ask_max_admitted", "doc_default": "`2`"},
    )
    ask_max_wait_s: float = Field(
        default=600.0,
        gt=0,
        description="the longest a question waits for the generator",
        json_schema_extra={"doc_row": "ask_max_admitted", "doc_default": "`600`"},
    )
    # Ingestion runs this many niceness steps below questions (its thread and its parse
    # workers), so that an upload slows answers as little as the machine allows; 0 = equal.
    ingest_niceness: int = Field(
        default=10,
        ge=0,
        le=19,
        description="ingestion (its thread in the server and its parse workers) runs this many niceness steps below questions, so an upload slows answers as little as the machine allows; `0` = equal",
        json_schema_extra={"doc_default": "`10`"},
    )
    # Folders the admin console may register for folder sync (app.folder_sync) must lie under one
    # of these (symbolic links resolved), so a web admin cannot mirror /etc into a collection.
    # Empty (the default): the console registers no folder; `kb sync` at the shell is not bound.
    # From the environment: paths separated by ':' (like PATH); in mmkb.toml, a list.
    sync_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="folders under which the admin console may register a folder for [folder sync](#folder-sync), separated by `:` (a list in `mmkb.toml`), e.g. `/srv/shares`; unset, the console registers none. `kb sync` at the shell is not bound by it",
        json_schema_extra={"doc_default": "– (none)"},
    )

    # Single sign-on by LDAP / Active Directory bind (app/directory.py); off while ldap_url is unset.
    # A user unknown here (or signed in from the directory before) is checked by binding as them;
    # local accounts with a password keep logging in locally. Either a DN template
    # ("uid={username},ou=people,dc=example,dc=org") binds directly, or the user's DN is searched
    # for under ldap_user_search_base with ldap_user_filter, bound as ldap_bind_dn (or anonymously).
    ldap_url: str | None = Field(
        default=None,
        description="`ldap://host:389` or `ldaps://host:636`: sign users in by LDAP / Active Directory bind ([Single sign-on](#single-sign-on-ldap--active-directory)); once set, login is always required",
        json_schema_extra={"doc_default": "– (off)"},
    )  # ldap://host:389 or ldaps://host:636
    ldap_start_tls: bool = Field(
        default=False,
        description="StartTLS on `ldap://`; CA certificates to verify the directory's certificate (always verified)",
        json_schema_extra={"doc_default": "`false`"},
    )
    ldap_ca_file: Path | None = Field(
        default=None,
        description="CA certificates that verify the directory's certificate",
        json_schema_extra={"doc_row": "ldap_start_tls", "doc_default": "system CAs"},
    )  # CA certificates for ldaps:// / StartTLS; default: the system's
    ldap_user_dn_template: str | None = Field(
        default=None,
        description="the user's DN from the name, e.g. `uid={username},ou=people,dc=example,dc=org` (the name is DN-escaped); or search with the next two",
        json_schema_extra={"doc_default": "–"},
    )
    ldap_user_search_base: str | None = Field(
        default=None,
        description="where and how to find the user's entry (Active Directory: `(sAMAccountName={username})`); exactly one entry must match",
        json_schema_extra={"doc_default": "–"},
    )
    ldap_user_filter: str = Field(
        default="(uid={username})",
        description="the filter that finds a user's entry under the search base",
        json_schema_extra={"doc_row": "ldap_user_search_base", "doc_default": "`(uid={username})`"},
    )  # Active Directory: (sAMAccountName={username})
    ldap_bind_dn: str | None = Field(
        default=None,
        description="the account that searches for users and groups; the password is a secret, never logged",
        json_schema_extra={"doc_default": "– (anonymous)"},
    )
    ldap_bind_password: SecretStr | None = Field(
        default=None,
        description="the search account's password (a secret: never logged)",
        json_schema_extra={"doc_row": "ldap_bind_dn"},
    )  # SecretStr: never printed in logs or reprs
    # Groups whose members include the user (groupOfNames, groupOfUniqueNames, posixGroup, AD groups);
    # they are matched to collection roles (`kb admin directory-group`) by name (this attribute) or DN.
    ldap_group_search_base: str | None = Field(
        default=None,
        description="where the user's groups are found and which attribute names them (a mapping may give the name or the DN); unset base: no groups, so no mapped roles",
        json_schema_extra={"doc_default": "–"},
    )
    ldap_group_filter: str = Field(
        default="(|(member={user_dn})(uniqueMember={user_dn})(memberUid={username}))",
        description="the filter that finds the user's groups",
        json_schema_extra={
            "doc_row": "ldap_group_search_base",
            "doc_default": "`(\\|(member={user_dn})(uniqueMember={user_dn})(memberUid={username}))`",
        },
    )
    ldap_group_name_attribute: str = Field(
        default="cn",
        description="the attribute that names a group",
        json_schema_extra={"doc_row": "ldap_group_search_base", "doc_default": "`cn`"},
    )
    ldap_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="connect and answer timeout; past it the login is a 503",
        json_schema_extra={"doc_default": "`5`"},
    )

    # Single sign-on for the web UI by OpenID Connect (app/oidc.py, ui/oidc.py): the authorization-code
    # flow with PKCE; off while the issuer or the client id is unset. Groups from the groups claim map
    # to collection roles exactly as LDAP groups do (`kb admin directory-group`).
    oidc_issuer: str | None = Field(
        default=None,
        description="the OpenID provider's issuer URL (its discovery document is `<issuer>/.well-known/openid-configuration`): the chat and the console offer [Sign in with SSO](#single-sign-on-oidc) at `/auth/oidc/login`; with `MMKB_OIDC_CLIENT_ID` set, login is always required",
        json_schema_extra={"doc_default": "– (off)"},
    )
    oidc_client_id: str | None = Field(
        default=None,
        description="the client registered at the provider for mmkb; its redirect URI is `<public URL>/auth/oidc/callback`",
        json_schema_extra={"doc_row": "oidc_issuer"},
    )
    oidc_client_secret: SecretStr | None = Field(
        default=None,
        description="the client's secret (a secret: never logged); unset: a public client, PKCE alone",
        json_schema_extra={"doc_row": "oidc_issuer"},
    )  # SecretStr: never printed in logs or reprs
    oidc_redirect_base: str | None = Field(
        default=None,
        description="the URL users reach mmkb at, e.g. `https://kb.example.org` (behind a proxy); the callback is this plus `/auth/oidc/callback`",
        json_schema_extra={"doc_default": "the request's own URL"},
    )
    oidc_scopes: str = Field(
        default="openid profile email",
        description="the scopes asked for; add the one that releases the groups claim if the provider needs it (often `groups`)",
        json_schema_extra={"doc_default": "`openid profile email`"},
    )
    oidc_username_claim: str = Field(
        default="preferred_username",
        description="the claim (ID token or userinfo) that is the local user name; a local account with a password, or an administrator, of that name is never taken over",
        json_schema_extra={"doc_default": "`preferred_username`"},
    )
    oidc_groups_claim: str = Field(
        default="groups",
        description="the claim listing the user's groups, mapped to collection roles like directory groups (`kb admin directory-group`)",
        json_schema_extra={"doc_default": "`groups`"},
    )
    oidc_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="timeout of each request to the provider; past it the sign-in page says the provider cannot be reached",
        json_schema_extra={"doc_default": "`10`"},
    )

    # UI
    host: str = Field(default="127.0.0.1", description="where `kb serve` listens")
    port: int = Field(default=7860, description="where `kb serve` listens", json_schema_extra={"doc_row": "host"})
    # `kb mcp --transport http` (streamable HTTP at /mcp; same host as the chat by default).
    mcp_port: int = Field(
        default=7862,
        description="where `kb mcp --transport http` listens (on `MMKB_HOST`)",
        json_schema_extra={"doc_default": "`7862`"},
    )
    # A chat login lapses after this many hours; the browser then asks for the password again.
    session_hours: float = Field(
        default=12.0,
        gt=0,
        description="a chat login lapses after this many hours; the browser then asks for the password again",
        json_schema_extra={"doc_default": "`12`"},
    )
    # Questions the chat handles at once; more wait in Gradio's queue (and are told so). Each
    # searches and shows its quote at once and then waits its turn at the generator
    # (app.admission), which writes one answer at a time.
    chat_concurrency: int = Field(
        default=16,
        ge=1,
        description="questions the chat handles at once (each searches and shows its quote at once, then waits its turn at the generator); more wait in Gradio's queue and are told so",
        json_schema_extra={"doc_default": "`16`"},
    )

    @field_validator(
        "database_url", "ray_address", "ldap_url", "oidc_issuer", "oidc_client_id", "oidc_redirect_base", mode="before"
    )
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
