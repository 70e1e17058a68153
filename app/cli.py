"""`kb`: the command line of mmkb."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from tqdm import tqdm

from app import registry  # noqa: F401 - switches the hub libraries offline before anything loads
from app.settings import get_settings

cli = typer.Typer(help="mmkb: a multimodal knowledge base that runs on your own hardware.", no_args_is_help=True)


def _knowledge_base():
    from app.directory import DirectoryConfigError
    from app.oidc import OidcConfigError
    from app.service import KnowledgeBase

    try:
        return KnowledgeBase(get_settings())
    except (DirectoryConfigError, OidcConfigError) as exc:  # MMKB_LDAP_* / MMKB_OIDC_* settings that cannot work
        _fail(str(exc))  # says which, no traceback


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


@cli.command()
def ingest(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Files or folders to ingest (PDF, PNG, JPEG, DOCX, PPTX, HTML, text/Markdown).", exists=True),
    ],
    collection: Annotated[str, typer.Option("--collection", "-c", help="Collection to add them to (created if new).")],
    use_ray: Annotated[
        bool, typer.Option("--ray", help="Run parse, OCR and embed on Ray Data (also when RAY_ADDRESS is set).")
    ] = False,
) -> None:
    """Ingest files into a collection, with a progress bar; failures are listed, the rest goes on."""
    from app.ingestion import expand_paths
    from app.registry import ModelNotAvailable
    from ingest.clip_folders import ClipFolderError

    kb = _knowledge_base()
    total = len(expand_paths(paths))
    try:
        with tqdm(total=total, unit="file", desc=f"ingest → {collection}", file=sys.stderr) as bar:
            last = [0]

            def progress(done: int, _total: int, name: str) -> None:
                bar.update(done - last[0])
                last[0] = done
                if name:
                    bar.set_postfix_str(name[:40])

            report = kb.ingest(kb.system_user(), collection, paths=paths, progress=progress, use_ray=use_ray)
    except (ModelNotAvailable, ClipFolderError) as exc:
        # A model that cannot load fails every file alike: one line saying how to fix it.
        _fail(str(exc))
    for result in report.files:
        if result.outcome.value == "ingested":
            replaced = " (replaced the earlier version)" if result.replaced_document_ids else ""
            typer.echo(
                f"  ok      {result.filename}: {result.pages} page(s), {result.text_chunks} text + {result.image_chunks} image chunks{replaced}"
            )
        elif result.outcome.value == "skipped_duplicate":
            typer.echo(f"  same    {result.filename}: already ingested, skipped")
        else:
            typer.secho(f"  FAILED  {result.filename}: {result.error}", fg=typer.colors.RED)
    typer.echo(f"{len(report.ingested)} ingested, {len(report.skipped)} unchanged, {len(report.failed)} failed")
    if report.failed and not report.ingested and not report.skipped:
        raise typer.Exit(code=1)


@cli.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    collection: Annotated[
        list[str] | None, typer.Option("--collection", "-c", help="Collection(s) to search; default all.")
    ] = None,
) -> None:
    """Answer a question from the documents, citing file and page: the best supporting
    sentence(s) of a source first, quoted as they stand, then the answer as it is written."""
    from app.service import AccessDenied

    kb = _knowledge_base()
    events = kb.ask_stream(kb.system_user(), question, collection or None)
    quoted = False
    written = ""
    answer = None
    try:
        for event in events:
            if not quoted and event.answer.quote is not None:
                quoted = True
                typer.echo(format_quote(event.answer.quote))
                typer.echo("")
            if event.done:
                answer = event.answer
                break
            piece, written = event.answer.text[len(written) :], event.answer.text
            typer.echo(piece, nl=False)
    except (AccessDenied, ValueError) as exc:
        _fail(str(exc))
    finally:
        events.close()
    if answer is None:
        _fail("the answer ended before it was complete")
    if answer.extractive:
        if written:
            typer.echo("\n")
        if quoted:
            typer.echo("The model did not give a supported answer; the quote above is the answer from the source.")
        else:
            typer.echo("Quoted from the source (the model did not give a supported answer):")
            typer.echo(f"“{' '.join(answer.text.split())}”")
    elif written.strip() != answer.text.strip():
        # The citation check changed what was streamed (markers fixed, unsupported sentences
        # dropped, or no supported answer at all): the checked text is the answer.
        if written:
            typer.echo("\n")
            typer.echo("Checked answer:")
        typer.echo(answer.text)
    else:
        typer.echo("")
    typer.echo("")
    cited = answer.cited_sources
    if cited:
        typer.echo("Sources:")
        for source in cited:
            typer.echo(f"  [{source.number}] {source.label}")
    for image in answer.images:
        typer.echo(f"  figure: {image.label} ({image.image_path})")


def format_quote(quote) -> str:
    """A quote as `kb ask` prints it: “…” — file, p. N (whitespace folded to single spaces)."""
    return f"“{' '.join(quote.text.split())}” — {quote.label}"


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default from settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None,
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth",
            help="Serve on a non-loopback address before any account exists: everyone who can reach "
            "it is administrator until the first account is created.",
        ),
    ] = False,
) -> None:
    """Serve the chat UI, the admin console and the API. Without accounts only on loopback
    (the single-user local app), unless --insecure-no-auth."""
    from app.exposure import ExposedWithoutAccounts, open_without_accounts
    from ui.server import launch

    settings = get_settings()
    host = settings.host if host is None else host
    kb = _knowledge_base()
    try:
        anonymous_allowed = open_without_accounts(host, kb.login_required(), insecure_no_auth)
    except ExposedWithoutAccounts as exc:
        _fail(str(exc))
    launch(kb, host, port or settings.port, open_without_accounts=anonymous_allowed)


@cli.command("serve-llm")
def serve_llm(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8001,
) -> None:
    """Serve the configured generator as an OpenAI-compatible API (/v1/chat/completions)."""
    import uvicorn

    from app.generation.loading import load_generator
    from app.openai_server import build_openai_app

    settings = get_settings()
    generator = load_generator(settings)
    uvicorn.run(build_openai_app(generator, settings.generator, settings.max_new_tokens), host=host, port=port)


@cli.command("mcp")
def mcp_server(
    transport: Annotated[
        str, typer.Option(help="stdio (an MCP client starts `kb mcp`) or http (streamable HTTP at /mcp).")
    ] = "stdio",
    user: Annotated[
        str | None,
        typer.Option(
            help="stdio: act as this user (default: the local administrator, like "
            "other kb commands). Over HTTP each request's API token names its user."
        ),
    ] = None,
    host: Annotated[str | None, typer.Option(help="http: interface to bind (default MMKB_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="http: port (default MMKB_MCP_PORT).")] = None,
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth",
            help="http: serve on a non-loopback address before any account exists: everyone who can "
            "reach it acts as administrator until the first account is created.",
        ),
    ] = False,
) -> None:
    """Serve the knowledge base to MCP clients (agents, IDEs): tools `search`, `ask` and
    `collections`, with the caller's permissions."""
    from app.exposure import ExposedWithoutAccounts, open_without_accounts
    from app.service import NotFound

    if transport not in ("stdio", "http"):
        _fail(f"unknown transport {transport!r}: use stdio or http")
    settings = get_settings()
    kb = _knowledge_base()
    if transport == "http":
        if user is not None:
            _fail("--user is for stdio; over HTTP each request's API token (Authorization: Bearer) names its user")
        host = settings.host if host is None else host
        try:
            anonymous_allowed = open_without_accounts(host, kb.login_required(), insecure_no_auth)
        except ExposedWithoutAccounts as exc:
            _fail(str(exc))
    else:
        try:
            caller = kb.user(user) if user else kb.system_user()
        except NotFound as exc:
            _fail(f"{exc}: create it with `kb admin create {user}`")
    from app import mcp_server as served

    kb.preload_models()  # a client's first call should not wait for the models
    if transport == "http":
        assert host is not None  # defaulted to MMKB_HOST above
        served.serve_http(kb, host, port or settings.mcp_port, anonymous_allowed)
    else:
        served.serve_stdio(kb, caller)


collections_cli = typer.Typer(help="List, create and configure collections (plain `kb collections` lists them).")
cli.add_typer(collections_cli, name="collections")

ChunkTokens = Annotated[int | None, typer.Option("--chunk-tokens", help="Chunk size in tokens (default MMKB_CHUNK_TOKENS).")]
ChunkOverlap = Annotated[
    int | None, typer.Option("--chunk-overlap", help="Tokens shared by consecutive chunks (default MMKB_CHUNK_OVERLAP_TOKENS).")
]
Embedder = Annotated[
    str | None,
    typer.Option(
        "--embedder",
        help="Text embedder (see `kb models`), e.g. multilingual-e5-small-q4 for Chinese; default MMKB_TEXT_EMBEDDER.",
    ),
]


@collections_cli.callback(invoke_without_command=True)
def collections(context: typer.Context) -> None:
    """List collections with document and chunk counts and their chunking."""
    if context.invoked_subcommand is not None:
        return
    kb = _knowledge_base()
    for info in kb.collection_info(kb.system_user()):
        typer.echo(
            f"{info.name}: {info.ready_documents} ready, {info.failed_documents} failed of {info.documents} documents, "
            f"{info.chunks} chunks (chunks of {info.chunk_tokens} tokens, {info.chunk_overlap_tokens} overlap; "
            f"embedder {info.text_embedder})"
        )


@collections_cli.command("create")
def collections_create(
    name: str, chunk_tokens: ChunkTokens = None, chunk_overlap: ChunkOverlap = None, embedder: Embedder = None
) -> None:
    """Create a collection, optionally with its own chunk size and overlap and text embedder."""
    kb = _knowledge_base()
    try:
        collection = kb.create_collection(kb.system_user(), name, chunk_tokens, chunk_overlap, embedder)
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(f"collection {name} ready (text embedder {kb.models.embedder_name(collection.text_embedder)})")


@collections_cli.command("set")
def collections_set(name: str, chunk_tokens: ChunkTokens = None, chunk_overlap: ChunkOverlap = None) -> None:
    """Change a collection's chunk size and overlap for files ingested from now on."""
    from app.service import NotFound

    if chunk_tokens is None and chunk_overlap is None:
        _fail("nothing to set: give --chunk-tokens and/or --chunk-overlap")
    kb = _knowledge_base()
    try:
        collection = kb.configure_chunking(kb.system_user(), name, chunk_tokens, chunk_overlap)
    except (NotFound, ValueError) as exc:
        _fail(str(exc))
    typer.echo(
        f"{name}: chunks of {collection.chunk_tokens or kb.settings.chunk_tokens} tokens, "
        f"{collection.chunk_overlap_tokens if collection.chunk_overlap_tokens is not None else kb.settings.chunk_overlap_tokens} overlap "
        "(applies to files ingested from now on)"
    )


eval_set_cli = typer.Typer(
    help="A collection's own evaluation set: questions with the file (and page) that answers them. "
    "`kb reindex` runs it before each swap and keeps the live index when recall@5 falls.",
    no_args_is_help=True,
)
collections_cli.add_typer(eval_set_cli, name="eval")


def _scores_line(recall: float, mrr: float, questions: int) -> str:
    return f"recall@5 {recall:.3f}, MRR@10 {mrr:.3f} on {questions} question(s)"


@eval_set_cli.command("add")
def eval_add(
    collection: str,
    question: str,
    file: Annotated[str, typer.Option("--file", "-f", help="File name of a document of the collection that answers it.")],
    page: Annotated[
        int | None, typer.Option("--page", "-p", help="The page that answers it (1-based); default any page of the file.")
    ] = None,
) -> None:
    """Add a question whose answer is in FILE (on PAGE)."""
    from app.collection_eval import validation_message
    from app.schemas import NewEvalQuestion
    from app.service import AccessDenied, NotFound

    try:
        item = NewEvalQuestion(question=question, file=file, page=page)
    except ValueError as exc:
        _fail(validation_message(exc))
    kb = _knowledge_base()
    try:
        (added,) = kb.add_eval_questions(kb.system_user(), collection, [item])
    except (AccessDenied, NotFound, ValueError) as exc:
        _fail(str(exc))
    typer.echo(f"added question {added.id} to {collection}")


@eval_set_cli.command("import")
def eval_import(
    collection: str,
    path: Annotated[
        Path,
        typer.Argument(
            help='JSON Lines (or a JSON list) of {"question", "file", "page"}; the QA sets of '
            "`kb eval answers` read as they are.",
            exists=True,
            dir_okay=False,
        ),
    ],
) -> None:
    """Add every question of a file, all or none; questions already in the set are left out."""
    from app.collection_eval import read_question_file
    from app.service import AccessDenied, NotFound

    kb = _knowledge_base()
    try:
        questions = read_question_file(path)
        added = kb.add_eval_questions(kb.system_user(), collection, questions, skip_existing=True)
    except (AccessDenied, NotFound, ValueError) as exc:
        _fail(str(exc))
    typer.echo(f"added {len(added)} question(s) to {collection}; {len(questions) - len(added)} were in the set already")


@eval_set_cli.command("list")
def eval_list(collection: str) -> None:
    """The collection's questions: id, file, page, question."""
    from app.service import AccessDenied, NotFound

    kb = _knowledge_base()
    try:
        questions = kb.eval_questions(kb.system_user(), collection)
    except (AccessDenied, NotFound) as exc:
        _fail(str(exc))
    for q in questions:
        typer.echo(f"{q.id:5}  {q.file}, p. {q.page or 'any'}: {q.question}")
    typer.echo(f"{len(questions)} question(s)")


@eval_set_cli.command("remove")
def eval_remove(collection: str, question_id: int) -> None:
    """Remove a question by its id (see `list`)."""
    from app.service import AccessDenied, NotFound

    kb = _knowledge_base()
    try:
        kb.remove_eval_question(kb.system_user(), collection, question_id)
    except (AccessDenied, NotFound) as exc:
        _fail(str(exc))
    typer.echo(f"removed question {question_id} from {collection}")


@eval_set_cli.command("run")
def eval_run(collection: str) -> None:
    """Run the set against the live index now (recorded in its history)."""
    from app.service import AccessDenied, NotFound

    kb = _knowledge_base()
    try:
        run, scores = kb.run_eval(kb.system_user(), collection)
    except (AccessDenied, NotFound, ValueError) as exc:
        _fail(str(exc))
    typer.echo(f"{collection}: {_scores_line(run.recall_at_5, run.mrr_at_10, run.questions)}")
    for question in scores.missed:
        typer.echo(f"  not in the first 5: {question}")


@eval_set_cli.command("history")
def eval_history(collection: str, limit: Annotated[int, typer.Option(help="At most this many runs, newest first.")] = 20) -> None:
    """The collection's scores: runs on demand, and each re-index's live and new index with what it did."""
    from app.service import AccessDenied, NotFound

    kb = _knowledge_base()
    try:
        runs = kb.eval_runs(kb.system_user(), collection, limit)
    except (AccessDenied, NotFound) as exc:
        _fail(str(exc))
    for run in runs:
        job = f"re-index job {run.job_id}, {run.verdict}" if run.job_id else "on demand"
        scores = _scores_line(run.recall_at_5, run.mrr_at_10, run.questions)
        typer.echo(f"{run.created_at:%Y-%m-%d %H:%M:%S}  {run.index:9}  {scores}  ({job})")


@cli.command()
def documents(collection: Annotated[str, typer.Option("--collection", "-c")]) -> None:
    """List a collection's documents with their status and any error."""
    kb = _knowledge_base()
    for document in kb.documents(kb.system_user(), collection):
        line = f"{document.status.value:10} {document.filename} ({document.page_count or '-'} pages)"
        typer.echo(line + (f": {document.error}" if document.error else ""))


@cli.command()
def reindex(
    collection: Annotated[str | None, typer.Option("--collection", "-c", help="Only this collection; default all.")] = None,
    use_ray: Annotated[
        bool, typer.Option("--ray", help="Run parse and embed on Ray Data (also when RAY_ADDRESS is set).")
    ] = False,
    embedder: Annotated[
        str | None, typer.Option("--embedder", help="Move the collection(s) to this text embedder (see `kb models`).")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Swap in the new index even where the collection's evaluation set does worse on it (see `kb collections eval`).",
        ),
    ] = False,
) -> None:
    """Rebuild every ready document's chunks and vectors from the stored originals (after a
    model or chunk-size change). Resumable: run it again after a kill and it continues; the
    old index answers queries until the new one is complete. With --embedder, the collection
    switches to that embedder in the same transaction as the new index."""
    from app.service import AccessDenied, NotFound

    kb = _knowledge_base()
    with tqdm(unit="doc", desc="reindex", file=sys.stderr, delay=0.5) as bar:

        def progress(done: int, total: int, name: str) -> None:
            bar.total = total
            bar.n = done
            if name:
                bar.set_postfix_str(name[:40])
            bar.refresh()

        try:
            report = kb.reindex(
                kb.system_user(), collection, progress=progress, use_ray=use_ray, text_embedder=embedder, force=force
            )
        except (AccessDenied, NotFound, ValueError) as exc:
            _fail(str(exc))
    for document in report.failed:
        typer.secho(
            f"  FAILED  {document.collection}/{document.filename}: {document.error} (previous chunks kept)", fg=typer.colors.RED
        )
    if embedder is not None:
        for name in report.collections:
            if any(d.collection == name and d.outcome == "failed" for d in report.documents):
                typer.secho(
                    f"  {name} stays on its text embedder: fix or delete the failed documents, then run again",
                    fg=typer.colors.RED,
                )
            elif any(d.collection == name for d in report.held):
                typer.secho(
                    f"  {name} stays on its text embedder: its evaluation set did worse on {embedder} (below)",
                    fg=typer.colors.RED,
                )
            else:
                typer.echo(f"  {name} now uses the text embedder {embedder}")
    where = " on Ray" if report.used_ray else ""
    typer.echo(
        f"{len(report.rebuilt)} rebuilt{where}, {len(report.resumed)} taken from the interrupted run, "
        f"{len(report.failed)} failed; collections: {', '.join(report.collections) or 'none'}"
    )
    for guarded in report.guard:
        # Both scores, and what was done: the live index kept (exit code 2), or the new one in place.
        color = {"kept": typer.colors.RED, "forced": typer.colors.YELLOW}.get(guarded.verdict)
        typer.secho(f"  {guarded.collection}: {guarded.message}", fg=color)
    if report.held:
        typer.echo(f"{len(report.held)} built but held back: their collection keeps its live index")
        raise typer.Exit(code=2)
    if report.failed and not report.rebuilt and not report.resumed:
        raise typer.Exit(code=1)


admin = typer.Typer(help="Accounts and permissions.", no_args_is_help=True)
cli.add_typer(admin, name="admin")


@admin.command("create")
def admin_create(
    username: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, envvar="MMKB_NEW_PASSWORD")],
    administrator: Annotated[
        bool, typer.Option("--admin/--no-admin", help="Global administrator (default) or plain user.")
    ] = True,
) -> None:
    """Create a user with a password; the first one should be an administrator. Once any
    password exists, the UI and the API require login."""
    kb = _knowledge_base()
    try:
        kb.accounts.create_user(username, password, is_admin=administrator)
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(f"created {'administrator' if administrator else 'user'} {username}")


@admin.command("token")
def admin_token(username: str, name: Annotated[str, typer.Option(help="A label for the token.")] = "cli") -> None:
    """Issue an API token for a user (shown once; only its hash is stored)."""
    from app.service import NotFound

    kb = _knowledge_base()
    try:
        typer.echo(kb.accounts.issue_token(kb.user(username), name))
    except NotFound as exc:
        _fail(str(exc))


@admin.command("grant")
def admin_grant(
    username: str,
    collection: str,
    role: Annotated[str, typer.Option(help="admin, editor or reader")] = "reader",
) -> None:
    """Give a user a role in a collection."""
    from app.models import Role
    from app.service import NotFound

    kb = _knowledge_base()
    try:
        kb.manage_member(kb.system_user(), collection, username, Role(role))
    except (NotFound, ValueError) as exc:
        _fail(str(exc))
    typer.echo(f"{username} is {role} of {collection}")


@admin.command("directory-group")
def admin_directory_group(
    collection: str,
    group: Annotated[str | None, typer.Argument(help="The directory group's name (e.g. its cn) or DN.")] = None,
    role: Annotated[str, typer.Option(help="admin, editor or reader")] = "reader",
    remove: Annotated[bool, typer.Option("--remove", help="Remove the group's mapping instead.")] = False,
) -> None:
    """Give the members of a directory (LDAP) group a role in a collection, applied at their
    next login; without GROUP, list the collection's mapped groups."""
    from app.models import Role
    from app.service import NotFound

    kb = _knowledge_base()
    try:
        if group is None:
            for name, mapped in kb.directory_groups(kb.system_user(), collection):
                typer.echo(f"{name}\t{mapped.value}")
            return
        kb.map_directory_group(kb.system_user(), collection, group, None if remove else Role(role))
    except (NotFound, ValueError) as exc:
        _fail(str(exc))
    typer.echo(f"{group}: {'no longer mapped in' if remove else role + ' of'} {collection}")


@cli.command()
def delete(
    document: Annotated[str, typer.Argument(help="File name or document id (see `kb documents`).")],
    collection: Annotated[str, typer.Option("--collection", "-c")],
) -> None:
    """Delete a document: its chunks, its vectors, and stored files no other document uses."""
    from app.service import AccessDenied, NotFound

    kb = _knowledge_base()
    try:
        target = kb.find_document(kb.system_user(), collection, document)
        result = kb.delete_document(kb.system_user(), collection, target.id)
    except (AccessDenied, NotFound, ValueError) as exc:
        _fail(str(exc))
    typer.echo(f"deleted {target.filename} (id {target.id}): {result.chunks} chunks, {len(result.files_deleted)} files")


@cli.command()
def sync(
    folder: Annotated[Path, typer.Argument(help="The folder to mirror, with its subfolders.")],
    collection: Annotated[str, typer.Option("--collection", "-c", help="Collection that mirrors it (created if new).")],
    watch: Annotated[
        bool, typer.Option("--watch", help="Keep following the folder: each change is synced once it has settled, until Ctrl-C.")
    ] = False,
    delete: Annotated[bool, typer.Option("--delete", help="Also delete the documents of files gone from the folder.")] = False,
    debounce: Annotated[
        float, typer.Option(help="With --watch: seconds a change must stay still before it is synced.", min=0.1)
    ] = 2.0,
) -> None:
    """Make a collection mirror a folder tree: new files ingested, changed ones replaced (a
    file's path in the folder is its document's name), unchanged ones skipped (by size and
    time, else by hash), removed ones deleted only with --delete. Running it again changes
    nothing; after a kill it finishes the job."""
    from app.service import AccessDenied, NotFound

    kb = _knowledge_base()
    user = kb.system_user()

    def once():
        with _SyncBars() as progress:
            return kb.sync_folder(user, collection, folder, delete=delete, progress=progress, at_shell=True)

    if not watch:
        try:
            summary = once()
        except (AccessDenied, NotFound, ValueError) as exc:
            _fail(str(exc))
        _print_sync(summary)
        if summary.failed and not (summary.added or summary.replaced or summary.deleted or summary.unchanged):
            raise typer.Exit(code=1)
        return

    from datetime import datetime

    from app.folder_sync import existing_folder
    from app.folder_watch import watch as follow

    try:
        root = existing_folder(folder)
    except ValueError as exc:
        _fail(str(exc))

    def report(result) -> None:
        when = datetime.now().strftime("%H:%M:%S")
        if isinstance(result, Exception):
            typer.secho(f"{when} sync failed: {result}", fg=typer.colors.RED, err=True)
        else:
            _print_sync(result, when)

    typer.echo(f"watching {root} for collection {collection} (Ctrl-C stops)")
    try:
        follow(once, root, report, debounce_s=debounce)
    except KeyboardInterrupt:
        typer.echo("stopped watching")


class _SyncBars:
    """tqdm bars for one sync: one while files are checked (hashed), one while they are ingested."""

    def __init__(self) -> None:
        self.stage: str | None = None
        self.bar: tqdm | None = None

    def __enter__(self) -> _SyncBars:
        return self

    def __exit__(self, *_exc) -> None:
        if self.bar is not None:
            self.bar.close()

    def __call__(self, stage: str, done: int, total: int, name: str) -> None:
        if stage != self.stage:
            self.__exit__()
            self.stage = stage
            desc = {"hash": "checking"}.get(stage, "ingesting")
            self.bar = tqdm(total=total, unit="file", desc=desc, file=sys.stderr, delay=0.5)
        assert self.bar is not None  # made on the first call: self.stage starts as None
        self.bar.total = total
        if name:
            self.bar.set_postfix_str(name[-40:], refresh=False)
        self.bar.update(done - self.bar.n)  # drawn only past tqdm's delay: a quick check shows no bar


def _print_sync(summary, when: str | None = None) -> None:
    for label, names in (
        ("added", summary.added),
        ("replaced", summary.replaced),
        ("renamed", summary.renamed),
        ("deleted", summary.deleted),
    ):
        for name in names:
            typer.echo(f"  {label:9} {name}")
    for name in summary.missing:
        typer.echo(f"  kept      {name} (gone from the folder; --delete removes its document)")
    for failure in summary.failed:
        typer.secho(f"  FAILED    {failure.file}: {failure.error}", fg=typer.colors.RED)
    typer.echo(f"{when + ' ' if when else ''}{summary.collection} ← {summary.folder}: {summary.line()}")


@cli.command()
def models() -> None:
    """Show which weights each model role resolves to."""
    for row in registry.describe(get_settings()):
        typer.echo(f"{row['role']:15} {row['name']:28} {row['package']:32} {row['licence']:30} {row['path']}")


eval_cli = typer.Typer(help="Measure retrieval and answer quality and latency.", no_args_is_help=True)
cli.add_typer(eval_cli, name="eval")


@eval_cli.command("retrieval")
def eval_retrieval(
    data: Annotated[
        Path,
        typer.Option(
            "--data", help="A BEIR-format folder: corpus.jsonl, queries.jsonl, qrels/test.tsv.", exists=True, file_okay=False
        ),
    ],
    limit: Annotated[int | None, typer.Option("--limit", help="Evaluate only the first N judged queries (HyDE is slow).")] = None,
    skip_hyde: Annotated[bool, typer.Option("--skip-hyde", help="Leave out the configurations that call the generator.")] = False,
    configs: Annotated[
        str | None,
        typer.Option(
            "--configs",
            help="Comma-separated rows to run, in the order given, from: "
            "default, BM25 only, dense only, + BM25 fusion, + HyDE, + rerank, all (default: every row).",
        ),
    ] = None,
    embedding_cache: Annotated[
        Path | None,
        typer.Option(
            "--embedding-cache",
            help="Keep the corpus embeddings in this folder and reuse them when the same embedder runs on the same set again.",
        ),
    ] = None,
) -> None:
    """Recall@1/5/10/100, MRR@10, nDCG@10 and latency per stage for `default` (the shipped
    configuration as your settings define it), BM25 only, dense, +BM25, +HyDE, +rerank, all.

    The corpus is indexed into a temporary data directory; your knowledge base is not touched."""
    from app.evaluation import format_report, run_retrieval_eval, select_configs
    from app.model_set import ModelSet

    settings = get_settings()
    try:
        chosen = select_configs(settings, configs, skip_hyde=skip_hyde)
    except ValueError as exc:
        _fail(str(exc))
    report = run_retrieval_eval(
        data, ModelSet(settings), limit=limit, configs=chosen, settings=settings, cache_dir=embedding_cache
    )
    typer.echo(format_report(report))


@eval_cli.command("images")
def eval_images(
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="A captioned image set: images/ + captions.jsonl (see app/image_evaluation.py).",
            exists=True,
            file_okay=False,
        ),
    ],
    limit: Annotated[int | None, typer.Option("--limit", help="Evaluate only the first N captions.")] = None,
) -> None:
    """Caption-to-image recall@1/5/10 for the text path and, with a CLIP model configured, CLIP and fused.

    The images are ingested into a temporary data directory; your knowledge base is not touched."""
    from app.image_evaluation import ImageSetError, format_image_report, run_image_eval
    from app.model_set import ModelSet

    settings = get_settings()
    try:
        report = run_image_eval(data, settings, ModelSet(settings), limit=limit)
    except ImageSetError as exc:
        _fail(str(exc))
    typer.echo(format_image_report(report))


@eval_cli.command("answers")
def eval_answers(
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="A QA file (JSONL, or a JSON list like samples/questions.json), or a folder "
            "holding qa.jsonl / questions.jsonl / questions.json and its documents in docs/ or collection/.",
            exists=True,
        ),
    ],
    docs: Annotated[
        Path | None,
        typer.Option(
            "--docs",
            help="Documents to ingest for the set (default: DATA/docs or DATA/collection).",
            exists=True,
            file_okay=False,
        ),
    ] = None,
    collection: Annotated[
        str | None,
        typer.Option(
            "--collection",
            "-c",
            help="Ask this existing collection of your knowledge base instead of ingesting the set's documents.",
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", help="Only the first N questions (each answer is one generation).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", help="Also write every answer and its scores here, as JSON Lines.")
    ] = None,
    configs: Annotated[
        str | None, typer.Option("--configs", help="Comma-separated configurations to run: full, naive (default both).")
    ] = None,
) -> None:
    """Token F1, exact match, citation precision/recall, refusal accuracy and latency, for the
    full pipeline and a naive dense top-k baseline with the same model and prompt.

    The set's documents are ingested into a temporary data directory unless --collection is given."""
    from app.answer_eval import QaSet, QaSetError, format_answer_report, load_qa_set, result_line, run_answer_eval
    from app.model_set import ModelSet
    from app.registry import ModelNotAvailable
    from app.service import AccessDenied

    settings = get_settings()
    try:
        qa = load_qa_set(data, docs)
        if limit:
            qa = QaSet(qa.items[:limit], qa.qa_file, qa.documents)
        # Lines are written as answers come: a long run on a slow machine can be followed and keeps what it did.
        chosen = [key.strip() for key in configs.split(",") if key.strip()] if configs else None
        sink = output.open("w", encoding="utf-8") if output else None
        try:
            with tqdm(
                total=(len(chosen) if chosen else 2) * len(qa.items), unit="answer", desc="eval answers", file=sys.stderr
            ) as bar:

                def progress(config: str, result) -> None:
                    bar.update(1)
                    bar.set_postfix_str(config)
                    if sink:
                        sink.write(result_line(config, result))
                        sink.flush()

                report = run_answer_eval(
                    qa, settings, ModelSet(settings), collection=collection, progress=progress, configs=chosen
                )
        finally:
            if sink:
                sink.close()
    except (QaSetError, ModelNotAvailable, AccessDenied) as exc:
        _fail(str(exc))
    typer.echo(format_answer_report(report))
    if output:
        typer.echo(f"answers written to {output}")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    cli()


if __name__ == "__main__":
    main()
