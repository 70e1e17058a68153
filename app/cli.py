"""`kb`: the command line of mmkb."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from tqdm import tqdm

from app import registry  # noqa: F401 - switches the hub libraries offline before anything loads
from app.settings import get_settings

cli = typer.Typer(help="mmkb: a multimodal knowledge base that runs on your own hardware.", no_args_is_help=True)


def _knowledge_base():
    from app.service import KnowledgeBase

    return KnowledgeBase(get_settings())


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


@cli.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to ingest (PDF, PNG, JPEG, DOCX, PPTX, HTML, text/Markdown).", exists=True)],
    collection: Annotated[str, typer.Option("--collection", "-c", help="Collection to add them to (created if new).")],
) -> None:
    """Ingest files into a collection, with a progress bar; failures are listed, the rest goes on."""
    from app.ingestion import expand_paths

    kb = _knowledge_base()
    total = len(expand_paths(paths))
    with tqdm(total=total, unit="file", desc=f"ingest → {collection}", file=sys.stderr) as bar:
        last = [0]

        def progress(done: int, _total: int, name: str) -> None:
            bar.update(done - last[0])
            last[0] = done
            if name:
                bar.set_postfix_str(name[:40])

        report = kb.ingest(kb.system_user(), collection, paths=paths, progress=progress)
    for result in report.files:
        if result.outcome.value == "ingested":
            replaced = " (replaced the earlier version)" if result.replaced_document_ids else ""
            typer.echo(f"  ok      {result.filename}: {result.pages} page(s), {result.text_chunks} text + {result.image_chunks} image chunks{replaced}")
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
    collection: Annotated[Optional[list[str]], typer.Option("--collection", "-c", help="Collection(s) to search; default all.")] = None,
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
            piece, written = event.answer.text[len(written):], event.answer.text
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
    host: Annotated[Optional[str], typer.Option(help="Interface to bind (default from settings).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (default from settings).")] = None,
    insecure_no_auth: Annotated[bool, typer.Option(
        "--insecure-no-auth", help="Serve on a non-loopback address before any account exists: everyone who can reach "
        "it is administrator until the first account is created.")] = False,
) -> None:
    """Serve the chat UI, the admin console and the API. Without accounts only on loopback
    (the single-user local app), unless --insecure-no-auth."""
    from app.exposure import ExposedWithoutAccounts, open_without_accounts
    from ui.chat import launch

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

    from app.llm import load_generator
    from app.openai_server import build_openai_app

    settings = get_settings()
    generator = load_generator(settings)
    uvicorn.run(build_openai_app(generator, settings.generator, settings.max_new_tokens), host=host, port=port)


collections_cli = typer.Typer(help="List, create and configure collections (plain `kb collections` lists them).")
cli.add_typer(collections_cli, name="collections")

ChunkTokens = Annotated[Optional[int], typer.Option("--chunk-tokens", help="Chunk size in tokens (default MMKB_CHUNK_TOKENS).")]
ChunkOverlap = Annotated[
    Optional[int], typer.Option("--chunk-overlap", help="Tokens shared by consecutive chunks (default MMKB_CHUNK_OVERLAP_TOKENS).")
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
            f"{info.chunks} chunks (chunks of {info.chunk_tokens} tokens, {info.chunk_overlap_tokens} overlap)"
        )


@collections_cli.command("create")
def collections_create(name: str, chunk_tokens: ChunkTokens = None, chunk_overlap: ChunkOverlap = None) -> None:
    """Create a collection, optionally with its own chunk size and overlap."""
    kb = _knowledge_base()
    try:
        kb.create_collection(kb.system_user(), name, chunk_tokens, chunk_overlap)
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(f"collection {name} ready")


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


@cli.command()
def documents(collection: Annotated[str, typer.Option("--collection", "-c")]) -> None:
    """List a collection's documents with their status and any error."""
    kb = _knowledge_base()
    for document in kb.documents(kb.system_user(), collection):
        line = f"{document.status.value:10} {document.filename} ({document.page_count or '-'} pages)"
        typer.echo(line + (f": {document.error}" if document.error else ""))


@cli.command()
def reindex(
    collection: Annotated[Optional[str], typer.Option("--collection", "-c", help="Only this collection; default all.")] = None,
    use_ray: Annotated[bool, typer.Option("--ray", help="Run parse and embed on Ray Data (also when RAY_ADDRESS is set).")] = False,
) -> None:
    """Rebuild every ready document's chunks and vectors from the stored originals (after a
    model or chunk-size change). Resumable: run it again after a kill and it continues; the
    old index answers queries until the new one is complete."""
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
            report = kb.reindex(kb.system_user(), collection, progress=progress, use_ray=use_ray)
        except (AccessDenied, NotFound) as exc:
            _fail(str(exc))
    for document in report.failed:
        typer.secho(f"  FAILED  {document.collection}/{document.filename}: {document.error} (previous chunks kept)", fg=typer.colors.RED)
    where = " on Ray" if report.used_ray else ""
    typer.echo(
        f"{len(report.rebuilt)} rebuilt{where}, {len(report.resumed)} taken from the interrupted run, "
        f"{len(report.failed)} failed; collections: {', '.join(report.collections) or 'none'}"
    )
    if report.failed and not report.rebuilt and not report.resumed:
        raise typer.Exit(code=1)


admin = typer.Typer(help="Accounts and permissions.", no_args_is_help=True)
cli.add_typer(admin, name="admin")


@admin.command("create")
def admin_create(
    username: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, envvar="MMKB_NEW_PASSWORD")],
    administrator: Annotated[bool, typer.Option("--admin/--no-admin", help="Global administrator (default) or plain user.")] = True,
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
def models() -> None:
    """Show which weights each model role resolves to."""
    for row in registry.describe(get_settings()):
        typer.echo(f"{row['role']:15} {row['name']:28} {row['package']:32} {row['licence']:30} {row['path']}")


eval_cli = typer.Typer(help="Measure retrieval and answer quality and latency.", no_args_is_help=True)
cli.add_typer(eval_cli, name="eval")


@eval_cli.command("retrieval")
def eval_retrieval(
    data: Annotated[Path, typer.Option("--data", help="A BEIR-format folder: corpus.jsonl, queries.jsonl, qrels/test.tsv.",
                                       exists=True, file_okay=False)],
    limit: Annotated[Optional[int], typer.Option("--limit", help="Evaluate only the first N judged queries (HyDE is slow).")] = None,
    skip_hyde: Annotated[bool, typer.Option("--skip-hyde", help="Leave out the configurations that call the generator.")] = False,
    configs: Annotated[Optional[str], typer.Option("--configs", help="Comma-separated rows to run, in the order given, from: "
                                                   "default, BM25 only, dense only, + BM25 fusion, + HyDE, + rerank, all (default: every row).")] = None,
    embedding_cache: Annotated[Optional[Path], typer.Option("--embedding-cache", help="Keep the corpus embeddings in this folder "
                                                            "and reuse them when the same embedder runs on the same set again.")] = None,
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
    report = run_retrieval_eval(data, ModelSet(settings), limit=limit, configs=chosen, settings=settings, cache_dir=embedding_cache)
    typer.echo(format_report(report))


@eval_cli.command("images")
def eval_images(
    data: Annotated[Path, typer.Option("--data", help="A captioned image set: images/ + captions.jsonl (see app/image_evaluation.py).",
                                       exists=True, file_okay=False)],
    limit: Annotated[Optional[int], typer.Option("--limit", help="Evaluate only the first N captions.")] = None,
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
    data: Annotated[Path, typer.Option("--data", help="A QA file (JSONL, or a JSON list like samples/questions.json), or a folder "
                                       "holding qa.jsonl / questions.jsonl / questions.json and its documents in docs/ or collection/.",
                                       exists=True)],
    docs: Annotated[Optional[Path], typer.Option("--docs", help="Documents to ingest for the set (default: DATA/docs or DATA/collection).",
                                                 exists=True, file_okay=False)] = None,
    collection: Annotated[Optional[str], typer.Option("--collection", "-c", help="Ask this existing collection of your knowledge "
                                                      "base instead of ingesting the set's documents.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", help="Only the first N questions (each answer is one generation).")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", help="Also write every answer and its scores here, as JSON Lines.")] = None,
    configs: Annotated[Optional[str], typer.Option("--configs", help="Comma-separated configurations to run: full, naive (default both).")] = None,
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
            with tqdm(total=(len(chosen) if chosen else 2) * len(qa.items), unit="answer", desc="eval answers", file=sys.stderr) as bar:
                def progress(config: str, result) -> None:
                    bar.update(1)
                    bar.set_postfix_str(config)
                    if sink:
                        sink.write(result_line(config, result))
                        sink.flush()

                report = run_answer_eval(qa, settings, ModelSet(settings), collection=collection, progress=progress, configs=chosen)
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
