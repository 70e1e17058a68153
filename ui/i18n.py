"""Every word the chat and the admin console show, in English and Simplified Chinese.

One table serves two translators:

* Gradio's own i18n (`I18N`, a `gr.I18n`): a component's label, info, placeholder, button
  text, tab name or a fixed Markdown text is given as `I18N(key)`; the browser resolves the
  key for its locale and re-renders it when the locale changes, also when a handler sends
  `gr.update(label=I18N(key))`.
* The server (`t(key, lang, **params)`): Gradio resolves a key only as a whole string, so a
  message with values in it (a user name, a count), chat message contents and table headers
  cannot go through it; handlers render those here, in the language `language(request)`
  reads from the request.

The language switch on each page is a radio (`switch()`). Gradio picks its first locale from
`navigator.language` and keeps it in a store that only its own `changeLocale` changes (its
Settings panel calls it); `SWITCH_SCRIPT` calls that same function when the radio changes,
and writes the choice to a cookie, so that later requests (and the next visit, chat and admin
alike) carry it to the server.
"""

from __future__ import annotations

import gradio as gr

LOCALES = ("en", "zh-CN")
DEFAULT = "en"
COOKIE = "mmkb-lang"
LANGUAGE_NAMES = [("English", "en"), ("中文", "zh-CN")]  # each in its own language, as switches name them

EN: dict[str, str] = {
    # --- both pages
    "language": "Language",
    "signed_in": "Signed in as **{user}**.",
    "warning": "⚠️ {message}",
    # --- chat
    "chat_intro": "## mmkb\nAsk a question; answers cite the file and page they come from. Click a citation to open the page.",
    "chat_all_collections": "All collections",
    "chat_queued": "⏳ Queued: the server is answering other questions; yours starts as soon as it is free.",
    "chat_no_collection": "You cannot read any collection yet; ask an administrator for access.",
    "chat_logged_out": "Your login has expired or you are logged out: reload the page and log in again.",
    "chat_sources": "Sources",
    "chat_no_sources_yet": "Sources appear here with an answer",
    "chat_no_sources_found": "No sources were found",
    "chat_writing": "Writing the answer…",
    "chat_searching": "Searching the documents…",
    "chat_extractive": "Quoted from the source (the model did not give a supported answer):",
    "chat_sources_line": "Sources: {refs}",
    "chat_waiting_one": "⏳ Waiting for the model: {ahead} answer ahead of yours.",
    "chat_waiting_many": "⏳ Waiting for the model: {ahead} answers ahead of yours.",
    "chat_cited": "cited",
    "chat_retrieved": "retrieved",
    "chat_figure_kind": "figure · ",
    "chat_score": "score",
    "chat_model_missing": "⚠️ A model this answer needs is not available on the server: {error}. An administrator has to install or configure it.",
    "chat_nothing_to_search": "⚠️ Nothing to search yet: {error}.",
    "chat_conversation_gone": "⚠️ This conversation no longer exists; start a new chat.",
    "chat_failed": "⚠️ The answer failed: {error}",
    "chat_source_gone": "_That source is not available any more._",
    "chat_source_refused": "⚠️ {label}: {error}",
    "chat_in_text_quote": "{title} — the quoted sentence in its text:",
    "chat_in_text_passage": "{title} — the passage in its text:",
    "chat_page_quote": "{title} — the quoted sentence is highlighted",
    "chat_page_passage": "{title} — the cited passage is highlighted",
    "chat_figure": "{title} — the figure",
    "chat_only_stored": "_Only stored answers can be rated._",
    "chat_rated_helpful": "Thanks: rated helpful. Add a comment below if you like.",
    "chat_rated_unhelpful": "Thanks: rated not helpful. Add a comment below if you like.",
    "chat_rate_first": "_Rate an answer with 👍 or 👎 first; the comment goes with that rating._",
    "chat_comment_stored": "Thanks: your comment was stored with your rating.",
    "chat_new_chat": "New chat",
    "chat_past": "Past conversations",
    "token_title": "API access",
    "token_intro": (
        "An API token lets a script, an OpenAI client (`/v1`) or an MCP client ask as you, with your permissions. "
        "It is shown once: copy it now. It expires after 90 days."
    ),
    "token_create": "Create an API token",
    "token_label": "Your new API token (shown once)",
    "token_needs_account": "API tokens belong to accounts: create one with `kb admin create` first.",
    "chat_collection": "Collection",
    "chat_chat": "Chat",
    "chat_placeholder": "Ask about your documents…",
    "chat_ask": "Ask",
    "chat_question": "Question",
    "chat_comment": "Comment",
    "chat_comment_placeholder": "Optional comment on your 👍/👎 rating…",
    "chat_send_comment": "Send comment",
    "chat_pick_source": "Pick a source to open it beside the chat.",
    "chat_cited_source": "Cited source",
    "chat_figures": "Figures",
    # --- admin console
    "admin_intro": "## mmkb admin console\nCollections, members, uploads and what the knowledge base holds. [Open the chat](../)",
    "admin_not_allowed": (
        "### Not allowed\n"
        "You are signed in as **{user}**, who administers no collection. The admin console is for "
        "global administrators and for a collection's administrators. Ask an administrator for the "
        "admin role on a collection, or use the [chat](../) to ask questions."
    ),
    "admin_please_log_in": "please log in",
    "admin_signed_in": "Signed in as **{user}** ({role}).",
    "admin_global_admin": "global administrator",
    "admin_collection_admin": "collection administrator",
    "admin_choose_collection": "choose a collection first",
    "admin_choose_embedder": "choose a text embedder first",
    "admin_choose_or_create": "choose or create a collection first",
    "admin_add_files": "add files to upload first (drag them onto the upload box)",
    "admin_confirm_delete": "tick the box to confirm that {collection} and all its documents should be deleted",
    "admin_enter_user": "enter a user name",
    "admin_choose_document": "choose a document to delete",
    "admin_created": "Created collection **{collection}**.",
    "admin_renamed": "Renamed **{old}** to **{new}**.",
    "admin_deleted_collection": (
        "Deleted collection **{collection}**: {documents} documents, {chunks} chunks, {files} stored files."
    ),
    "admin_member_set": "**{user}** is now {role} of **{collection}**.",
    "admin_member_removed": "**{user}** is no longer a member of **{collection}**.",
    "admin_deleted_document": "Deleted document {document} ({chunks} chunks).",
    "admin_no_failed": "No failed documents in **{collection}**.",
    "admin_failed_count": "{count} failed documents in **{collection}**.",
    "admin_starting": "Starting…",
    "admin_finishing": "finishing",
    "admin_progress_unit": "files",
    "admin_swapping": "swapping in the new index",
    "admin_ingesting": "Ingesting into **{collection}**: {done} of {total} files done…",
    "admin_job_done": ("Job {job} finished in **{collection}**: {ready} ready, {unchanged} unchanged, {failed} failed."),
    "admin_job_errors": " The errors are in the table and in the report below.",
    "admin_reindexing": "Re-indexing **{collection}**: {done} of {total} documents done…",
    "admin_reindexed": (
        "Re-indexed **{collection}**: {rebuilt} rebuilt, {resumed} resumed from an interrupted run, {failed} failed"
    ),
    "admin_reindex_kept": " (kept their previous chunks: {failures})",
    "admin_embedder_changed": ". **{collection}** now uses the text embedder **{embedder}**",
    "admin_embedder_kept": (
        ". **{collection}** keeps its text embedder and index: documents that fail cannot move to **{embedder}**; "
        "fix or delete them (see Documents), then try again"
    ),
    "admin_totals": (
        "**{documents}** documents · **{chunks}** chunks · **{figures}** figures · "
        "indexes **{size}** on disk · **{collections}** collections"
    ),
    "admin_yes": "yes",
    "admin_not_yet": "not yet",
    "admin_refresh": "Refresh",
    "admin_tab_collections": "Collections",
    "admin_new_collection": "New collection",
    "admin_name_placeholder": "name",
    "admin_create": "Create",
    "admin_embedder": "Text embedder (empty: the server's default)",
    "admin_change_embedder_to": "Text embedder for the selected collection",
    "admin_change_embedder": "Change embedder (re-indexes every document)",
    "admin_rename_to": "Rename the selected collection to",
    "admin_rename": "Rename",
    "admin_delete_confirm_label": "Delete the selected collection with all its documents",
    "admin_delete_collection": "Delete collection",
    "admin_tab_members": "Members",
    "admin_user_name": "User name",
    "admin_role": "Role",
    "admin_set_member": "Add or change role",
    "admin_remove_member": "Remove member",
    "admin_tab_upload": "Upload",
    "admin_files": "Files (drag and drop; PDF, images, DOCX, PPTX, HTML, Markdown, text, or a .zip of them)",
    "admin_ingest": "Ingest into the selected collection",
    "admin_ingest_report": "Ingest report (CSV, with each failed file's error)",
    "admin_tab_documents": "Documents",
    "admin_document": "Document",
    "admin_delete_document": "Delete document",
    "admin_failed_button": "Download the errors of failed documents",
    "admin_failed_report": "Failed documents (CSV)",
    "admin_tab_dashboard": "Dashboard",
    "admin_last_jobs": "Last jobs",
    "admin_models": "Models in use",
    "admin_refresh_dashboard": "Refresh dashboard",
    "admin_reindex": "Re-index the selected collection",
    "admin_reindex_force": "Swap the new index in even if the collection's evaluation set does worse on it (a held re-index is swapped in without rebuilding)",
    # --- the console's evaluation tab (ui/admin_eval.py)
    "admin_tab_evaluation": "Evaluation",
    "eval_intro": (
        "Questions with the file and page that answer them. `kb reindex` runs them before it puts a new index "
        "in place, and keeps the live index when recall@5 falls by more than MMKB_REINDEX_GUARD_MARGIN "
        "(`kb reindex --force` swaps anyway)."
    ),
    "eval_questions_label": "Questions",
    "eval_question": "Question",
    "eval_file": "File that answers it",
    "eval_page": "Page (empty: any page)",
    "eval_add": "Add question",
    "eval_to_remove": "Question to remove",
    "eval_remove": "Remove question",
    "eval_run": "Run the set now (live index)",
    "eval_history": "Scores, newest first",
    "eval_enter_question": "enter a question",
    "eval_choose_file": "choose the file that answers the question",
    "eval_choose_question": "choose a question to remove",
    "eval_bad_page": "the page is a whole number from 1, or empty for any page",
    "eval_added": "Added question {id} to **{collection}**.",
    "eval_removed": "Removed question {id} from **{collection}**.",
    "eval_ran": "**{collection}**, live index: recall@5 {recall}, MRR@10 {mrr} on {questions} question(s).",
    "eval_missed": " Not in the first 5: {questions}.",
    "eval_no_runs": "No scores yet: add questions, then run the set or re-index.",
    "eval_last_run": "Last run ({when}, live index): recall@5 **{recall}**, MRR@10 **{mrr}** on {questions} question(s).",
    "eval_last_reindex": (
        "Last re-index (job {job}, {when}): recall@5 **{live}** on the live index, **{candidate}** on the new one "
        "({questions} question(s)): {verdict}."
    ),
    "eval_verdict_swapped": "the new index went live",
    "eval_verdict_kept": "the live index stayed (`kb reindex --force` puts the held one in place)",
    "eval_verdict_forced": "the new index went live anyway (--force)",
    "admin_reindex_guard": " **{collection}**: recall@5 {live} on the live index, {candidate} on the new one: {verdict}.",
    # --- the console's folder sync tab (ui/admin_sync.py)
    "admin_tab_sync": "Folder sync",
    "sync_intro": (
        "The collection mirrors a folder on the server: new files are ingested, changed ones replace their old version "
        "(a file's path in the folder is its document's name), unchanged ones are skipped. The folder must lie under "
        "MMKB_SYNC_ROOTS. At the server, `kb sync FOLDER --collection NAME --watch` follows changes as they happen."
    ),
    "sync_folder_label": "Folder on the server (an absolute path under MMKB_SYNC_ROOTS)",
    "sync_register": "Register folder",
    "sync_delete_label": "Also delete the documents of files gone from the folder",
    "sync_run": "Sync now",
    "sync_files_label": "Files the last sync changed, could not read or found gone",
    "sync_none": "No folder is registered for this collection yet.",
    "sync_registered_info": "Mirrors **{path}** (registered by {user}, {when}).",
    "sync_never": " Not synced yet.",
    "sync_last": " Last sync {when}: {summary}.",
    "sync_unfinished": " A sync started {when} has not finished: it is running, or it was stopped (the next sync completes its work).",
    "sync_summary": "{added} added, {replaced} replaced, {deleted} deleted, {unchanged} unchanged, {failed} failed",
    "sync_missing": "; {missing} gone from the folder but kept (tick the delete box to remove their documents)",
    "sync_renamed": "; {renamed} moved or renamed",
    "sync_registered": "**{collection}** now mirrors {path}; sync it to bring its files in.",
    "sync_enter_folder": "enter a folder on the server",
    "sync_running": "Syncing **{collection}**: {stage} {done}/{total}",
    "sync_stage_hash": "checking files",
    "sync_stage_ingest": "ingesting",
    "sync_done": "Synced **{collection}**: {summary}.",
    "change_added": "added",
    "change_replaced": "replaced",
    "change_renamed": "moved or renamed",
    "change_deleted": "deleted",
    "change_missing": "gone, kept",
    "change_failed": "failed",
    "col_change": "change",
    # values shown in tables and choices (the stored value stays English)
    "role_reader": "reader",
    "role_editor": "editor",
    "role_admin": "admin",
    "status_ready": "ready",
    "status_unchanged": "unchanged",
    "status_failed": "failed",
    "status_processing": "processing",
    "status_pending": "pending",
    "status_queued": "queued",
    "status_running": "running",
    "status_done": "done",
    "status_interrupted": "interrupted",
    "status_held": "held",
    "verdict_swapped": "swapped",
    "verdict_kept": "kept",
    "verdict_forced": "forced",
    "index_live": "live",
    "index_candidate": "new (candidate)",
    "job_ingest": "ingest",
    "job_reindex": "reindex",
    # a finished job's summary, as app.ingestion / app.reindex store it (in English)
    "job_message_ingest": "{ingested} ingested, {unchanged} unchanged, {failed} failed",
    "job_message_reindex": "{rebuilt} re-indexed, {failed} failed",
    "job_message_kept": " (kept their previous chunks)",
    "model_text_embedder": "text embedder",
    "model_image_embedder": "image embedder",
    "model_reranker": "reranker",
    "model_generator": "generator",
    "package_local path": "local path",
    "package_built in (no weights)": "built in (no weights)",
    "package_not packaged": "not packaged",
    "package_OpenAI-compatible server": "OpenAI-compatible server",
    "package_more": "{first} and {more} more parts",
    # table headers (on screen; downloaded CSV files keep the English ones)
    "col_collection": "collection",
    "col_documents": "documents",
    "col_ready": "ready",
    "col_failed": "failed",
    "col_chunks": "chunks",
    "col_embedder": "text embedder",
    "col_user": "user",
    "col_role": "role",
    "col_id": "id",
    "col_file": "file",
    "col_status": "status",
    "col_pages": "pages",
    "col_size (KB)": "size (KB)",
    "col_error": "error",
    "col_updated": "updated",
    "col_figures": "figures",
    "col_index on disk": "index on disk",
    "col_job": "job",
    "col_kind": "kind",
    "col_files": "files",
    "col_message": "message",
    "col_started": "started",
    "col_finished": "finished",
    "col_model": "model",
    "col_package": "package",
    "col_loaded": "loaded",
    "col_question": "question",
    "col_page": "page",
    "col_added by": "added by",
    "col_added": "added",
    "col_when": "when",
    "col_index": "index",
    "col_recall@5": "recall@5",
    "col_MRR@10": "MRR@10",
    "col_questions": "questions",
    "col_verdict": "verdict",
    # Admin console: directory groups (ui/admin_directory.py).
    "dir_title": "### Directory groups",
    "dir_intro": "Members of a directory (LDAP) group get a role in this collection at their next sign-in. Give a group by its name (e.g. its cn) or its full DN. Once the collection maps any group, the memberships of its directory users follow their groups.",
    "dir_no_directory": "No directory (MMKB_LDAP_*) is configured on this server: mappings are kept and apply once one is.",
    "dir_groups_label": "Mapped directory groups",
    "dir_group": "Directory group (name or DN)",
    "dir_map": "Map group to role",
    "dir_remove": "Remove mapping",
    "dir_enter_group": "enter a directory group's name or DN",
    "dir_choose_role": "choose a role",
    "dir_mapped": "Members of **{group}** get {role} of **{collection}** at their next sign-in.",
    "dir_removed": "**{group}** is no longer mapped in **{collection}**.",
    "col_group": "group",
}

ZH: dict[str, str] = {
    "language": "语言",
    "signed_in": "已登录：**{user}**。",
    "warning": "⚠️ {message}",
    "chat_intro": "## mmkb\n提出问题；回答会注明出处的文件和页码。点击引用即可打开该页。",
    "chat_all_collections": "全部资料集",
    "chat_queued": "⏳ 排队中：服务器正在回答其他问题，空闲后立即开始回答您的问题。",
    "chat_no_collection": "您还不能读取任何资料集；请向管理员申请权限。",
    "chat_logged_out": "您的登录已过期或已退出：请刷新页面并重新登录。",
    "chat_sources": "来源",
    "chat_no_sources_yet": "回答出来后，来源显示在这里",
    "chat_no_sources_found": "未找到来源",
    "chat_writing": "正在撰写回答…",
    "chat_searching": "正在检索文档…",
    "chat_extractive": "摘自来源（模型未给出有依据的回答）：",
    "chat_sources_line": "来源：{refs}",
    "chat_waiting_one": "⏳ 等待模型：您前面还有 {ahead} 个回答。",
    "chat_waiting_many": "⏳ 等待模型：您前面还有 {ahead} 个回答。",
    "chat_cited": "已引用",
    "chat_retrieved": "已检索",
    "chat_figure_kind": "图 · ",
    "chat_score": "得分",
    "chat_model_missing": "⚠️ 服务器上缺少回答所需的模型：{error}。需要管理员安装或配置。",
    "chat_nothing_to_search": "⚠️ 暂无可检索的内容：{error}。",
    "chat_conversation_gone": "⚠️ 该对话已不存在；请开始新对话。",
    "chat_failed": "⚠️ 回答失败：{error}",
    "chat_source_gone": "_该来源已不可用。_",
    "chat_source_refused": "⚠️ {label}：{error}",
    "chat_in_text_quote": "{title} — 引文所在的原文：",
    "chat_in_text_passage": "{title} — 段落所在的原文：",
    "chat_page_quote": "{title} — 已高亮引文",
    "chat_page_passage": "{title} — 已高亮引用的段落",
    "chat_figure": "{title} — 图",
    "chat_only_stored": "_只能评价已保存的回答。_",
    "chat_rated_helpful": "谢谢：已评为有帮助。如愿意，可在下方添加评论。",
    "chat_rated_unhelpful": "谢谢：已评为没有帮助。如愿意，可在下方添加评论。",
    "chat_rate_first": "_请先用 👍 或 👎 评价一个回答；评论将附在该评价上。_",
    "chat_comment_stored": "谢谢：您的评论已与评价一同保存。",
    "chat_new_chat": "新对话",
    "chat_past": "历史对话",
    "token_title": "API 访问",
    "token_intro": (
        "API 令牌让脚本、OpenAI 客户端（`/v1`）或 MCP 客户端以您的身份和权限提问。令牌只显示一次：请立即复制。它在 90 天后过期。"
    ),
    "token_create": "创建 API 令牌",
    "token_label": "您的新 API 令牌（只显示一次）",
    "token_needs_account": "API 令牌属于账户：请先用 `kb admin create` 创建账户。",
    "chat_collection": "资料集",
    "chat_chat": "对话",
    "chat_placeholder": "就您的文档提问…",
    "chat_ask": "提问",
    "chat_question": "问题",
    "chat_comment": "评论",
    "chat_comment_placeholder": "对您的 👍/👎 评价的评论（可选）…",
    "chat_send_comment": "发送评论",
    "chat_pick_source": "选择一个来源，在对话旁打开。",
    "chat_cited_source": "引用的来源",
    "chat_figures": "图片",
    "admin_intro": "## mmkb 管理控制台\n资料集、成员、上传以及知识库的内容。[打开对话](../)",
    "admin_not_allowed": (
        "### 无权访问\n"
        "您以 **{user}** 身份登录，该用户不管理任何资料集。管理控制台供全局管理员和资料集管理员使用。"
        "请向管理员申请某个资料集的管理员角色，或使用[对话](../)提问。"
    ),
    "admin_please_log_in": "请先登录",
    "admin_signed_in": "已登录：**{user}**（{role}）。",
    "admin_global_admin": "全局管理员",
    "admin_collection_admin": "资料集管理员",
    "admin_choose_collection": "请先选择一个资料集",
    "admin_choose_embedder": "请先选择文本向量模型",
    "admin_choose_or_create": "请先选择或新建一个资料集",
    "admin_add_files": "请先添加要上传的文件（拖到上传框中）",
    "admin_confirm_delete": "请勾选复选框，确认删除 {collection} 及其全部文档",
    "admin_enter_user": "请输入用户名",
    "admin_choose_document": "请选择要删除的文档",
    "admin_created": "已新建资料集 **{collection}**。",
    "admin_renamed": "已将 **{old}** 重命名为 **{new}**。",
    "admin_deleted_collection": "已删除资料集 **{collection}**：{documents} 个文档、{chunks} 个片段、{files} 个存储文件。",
    "admin_member_set": "**{user}** 现在是 **{collection}** 的{role}。",
    "admin_member_removed": "**{user}** 已不再是 **{collection}** 的成员。",
    "admin_deleted_document": "已删除文档 {document}（{chunks} 个片段）。",
    "admin_no_failed": "**{collection}** 中没有失败的文档。",
    "admin_failed_count": "**{collection}** 中有 {count} 个失败的文档。",
    "admin_starting": "正在开始…",
    "admin_finishing": "正在收尾",
    "admin_progress_unit": "个文件",
    "admin_swapping": "正在换上新索引",
    "admin_ingesting": "正在导入 **{collection}**：已完成 {done}/{total} 个文件…",
    "admin_job_done": "任务 {job} 已在 **{collection}** 中完成：{ready} 个就绪，{unchanged} 个未变，{failed} 个失败。",
    "admin_job_errors": "错误信息见表格及下方的报告。",
    "admin_reindexing": "正在重建 **{collection}** 的索引：已完成 {done}/{total} 个文档…",
    "admin_reindexed": "已重建 **{collection}** 的索引：{rebuilt} 个已重建，{resumed} 个从中断处继续，{failed} 个失败",
    "admin_reindex_kept": "（保留了原有片段：{failures}）",
    "admin_embedder_changed": "。**{collection}** 现在使用文本向量模型 **{embedder}**",
    "admin_embedder_kept": "。**{collection}** 保留原有的文本向量模型和索引：有文档重建失败，无法换用 **{embedder}**；请修复或删除这些文档（见“文档”页）后再试",
    "admin_totals": (
        "**{documents}** 个文档 · **{chunks}** 个片段 · **{figures}** 张图 · 索引占用磁盘 **{size}** · **{collections}** 个资料集"
    ),
    "admin_yes": "是",
    "admin_not_yet": "尚未",
    "admin_refresh": "刷新",
    "admin_tab_collections": "资料集",
    "admin_new_collection": "新资料集",
    "admin_name_placeholder": "名称",
    "admin_create": "新建",
    "admin_embedder": "文本向量模型（留空：服务器默认）",
    "admin_change_embedder_to": "所选资料集的文本向量模型",
    "admin_change_embedder": "更换向量模型（重建全部文档的索引）",
    "admin_rename_to": "将所选资料集重命名为",
    "admin_rename": "重命名",
    "admin_delete_confirm_label": "删除所选资料集及其全部文档",
    "admin_delete_collection": "删除资料集",
    "admin_tab_members": "成员",
    "admin_user_name": "用户名",
    "admin_role": "角色",
    "admin_set_member": "添加成员或更改角色",
    "admin_remove_member": "移除成员",
    "admin_tab_upload": "上传",
    "admin_files": "文件（可拖放；PDF、图片、DOCX、PPTX、HTML、Markdown、文本，或包含它们的 .zip）",
    "admin_ingest": "导入到所选资料集",
    "admin_ingest_report": "导入报告（CSV，含每个失败文件的错误）",
    "admin_tab_documents": "文档",
    "admin_document": "文档",
    "admin_delete_document": "删除文档",
    "admin_failed_button": "下载失败文档的错误信息",
    "admin_failed_report": "失败的文档（CSV）",
    "admin_tab_dashboard": "概览",
    "admin_last_jobs": "最近的任务",
    "admin_models": "使用中的模型",
    "admin_refresh_dashboard": "刷新概览",
    "admin_reindex": "重建所选资料集的索引",
    "admin_reindex_force": "即使资料集的评测集在新索引上表现更差也换上新索引（已暂缓的重建将直接换上，无需重新构建）",
    "admin_tab_evaluation": "评测",
    "eval_intro": (
        "问题及其答案所在的文件和页码。`kb reindex` 在换上新索引之前先用它们评测；召回率@5 下降超过 "
        "MMKB_REINDEX_GUARD_MARGIN 时保留现有索引（`kb reindex --force` 可强制替换）。"
    ),
    "eval_questions_label": "评测问题",
    "eval_question": "问题",
    "eval_file": "答案所在文件",
    "eval_page": "页码（留空：任意页）",
    "eval_add": "添加问题",
    "eval_to_remove": "要删除的问题",
    "eval_remove": "删除问题",
    "eval_run": "立即评测（现有索引）",
    "eval_history": "评测记录（最新在前）",
    "eval_enter_question": "请输入问题",
    "eval_choose_file": "请选择答案所在的文件",
    "eval_choose_question": "请选择要删除的问题",
    "eval_bad_page": "页码须为从 1 开始的整数，或留空表示任意页",
    "eval_added": "已向 **{collection}** 添加问题 {id}。",
    "eval_removed": "已从 **{collection}** 删除问题 {id}。",
    "eval_ran": "**{collection}** 现有索引：召回率@5 {recall}，平均倒数排名@10 {mrr}，共 {questions} 个问题。",
    "eval_missed": "前 5 名中未找到：{questions}。",
    "eval_no_runs": "尚无评测结果：先添加问题，再运行评测或重建索引。",
    "eval_last_run": "最近一次评测（{when}，现有索引）：召回率@5 **{recall}**，平均倒数排名@10 **{mrr}**，共 {questions} 个问题。",
    "eval_last_reindex": (
        "最近一次重建索引（任务 {job}，{when}）：现有索引召回率@5 **{live}**，新索引 **{candidate}**"
        "（{questions} 个问题）：{verdict}。"
    ),
    "eval_verdict_swapped": "已换上新索引",
    "eval_verdict_kept": "保留了现有索引（`kb reindex --force` 可换上暂存的新索引）",
    "eval_verdict_forced": "仍换上了新索引（--force）",
    "admin_reindex_guard": "**{collection}**：现有索引召回率@5 {live}，新索引 {candidate}：{verdict}。",
    "admin_tab_sync": "文件夹同步",
    "sync_intro": (
        "资料集与服务器上的一个文件夹保持一致：新文件会被导入，修改过的文件替换其旧版本（文件在文件夹中的路径即文档名），"
        "未变的文件跳过。文件夹须位于 MMKB_SYNC_ROOTS 之下。在服务器上，`kb sync 文件夹 --collection 名称 --watch` 可随时跟踪变化。"
    ),
    "sync_folder_label": "服务器上的文件夹（MMKB_SYNC_ROOTS 下的绝对路径）",
    "sync_register": "登记文件夹",
    "sync_delete_label": "同时删除文件夹中已不存在的文件所对应的文档",
    "sync_run": "立即同步",
    "sync_files_label": "上次同步中有变化、无法读取或已不存在的文件",
    "sync_none": "此资料集尚未登记文件夹。",
    "sync_registered_info": "同步自 **{path}**（由 {user} 于 {when} 登记）。",
    "sync_never": "尚未同步。",
    "sync_last": "上次同步 {when}：{summary}。",
    "sync_unfinished": "{when} 开始的同步尚未完成：它正在运行，或已被中断（下次同步会完成其余工作）。",
    "sync_summary": "{added} 个新增，{replaced} 个替换，{deleted} 个删除，{unchanged} 个未变，{failed} 个失败",
    "sync_missing": "；{missing} 个已从文件夹中移除但文档保留（勾选删除选项可删除这些文档）",
    "sync_renamed": "；{renamed} 个已移动或改名",
    "sync_registered": "**{collection}** 现在同步自 {path}；同步一次即可导入其中的文件。",
    "sync_enter_folder": "请输入服务器上的文件夹",
    "sync_running": "正在同步 **{collection}**：{stage} {done}/{total}",
    "sync_stage_hash": "检查文件",
    "sync_stage_ingest": "导入",
    "sync_done": "**{collection}** 已同步：{summary}。",
    "change_added": "新增",
    "change_replaced": "替换",
    "change_renamed": "已移动或改名",
    "change_deleted": "删除",
    "change_missing": "已移除（保留）",
    "change_failed": "失败",
    "col_change": "变化",
    "role_reader": "读者",
    "role_editor": "编辑",
    "role_admin": "管理员",
    "status_ready": "就绪",
    "status_unchanged": "未变",
    "status_failed": "失败",
    "status_processing": "处理中",
    "status_pending": "等待中",
    "status_queued": "排队中",
    "status_running": "运行中",
    "status_done": "完成",
    "status_interrupted": "已中断",
    "status_held": "已暂缓",
    "verdict_swapped": "已替换",
    "verdict_kept": "已保留",
    "verdict_forced": "强制替换",
    "index_live": "现有",
    "index_candidate": "新（候选）",
    "job_ingest": "导入",
    "job_reindex": "重建索引",
    "job_message_ingest": "{ingested} 个已导入，{unchanged} 个未变，{failed} 个失败",
    "job_message_reindex": "{rebuilt} 个已重建索引，{failed} 个失败",
    "job_message_kept": "（保留了原有片段）",
    "model_text_embedder": "文本向量模型",
    "model_image_embedder": "图像向量模型",
    "model_reranker": "重排序模型",
    "model_generator": "生成模型",
    "package_local path": "本地路径",
    "package_built in (no weights)": "内置（无权重）",
    "package_not packaged": "未打包",
    "package_OpenAI-compatible server": "OpenAI 兼容服务器",
    "package_more": "{first} 及另外 {more} 个部分",
    "col_collection": "资料集",
    "col_documents": "文档",
    "col_ready": "就绪",
    "col_failed": "失败",
    "col_chunks": "片段",
    "col_embedder": "文本向量模型",
    "col_user": "用户",
    "col_role": "角色",
    "col_id": "编号",
    "col_file": "文件",
    "col_status": "状态",
    "col_pages": "页数",
    "col_size (KB)": "大小 (KB)",
    "col_error": "错误",
    "col_updated": "更新时间",
    "col_figures": "图",
    "col_index on disk": "索引磁盘占用",
    "col_job": "任务",
    "col_kind": "类型",
    "col_files": "文件",
    "col_message": "信息",
    "col_started": "开始",
    "col_finished": "结束",
    "col_model": "模型",
    "col_package": "软件包",
    "col_loaded": "已加载",
    "col_question": "问题",
    "col_page": "页码",
    "col_added by": "添加者",
    "col_added": "添加时间",
    "col_when": "时间",
    "col_index": "索引",
    "col_recall@5": "召回率@5",
    "col_MRR@10": "平均倒数排名@10",
    "col_questions": "问题数",
    "col_verdict": "结果",
    # Admin console: directory groups (ui/admin_directory.py).
    "dir_title": "### 目录组",
    "dir_intro": "目录（LDAP）组的成员在下次登录时获得本资料集中的角色。填写组名（例如其 cn）或完整的 DN。资料集一旦映射了任何组，其目录用户的成员身份便随所在的组而定。",
    "dir_no_directory": "此服务器未配置目录（MMKB_LDAP_*）：映射会保留，配置目录后生效。",
    "dir_groups_label": "已映射的目录组",
    "dir_group": "目录组（组名或 DN）",
    "dir_map": "将组映射到角色",
    "dir_remove": "移除映射",
    "dir_enter_group": "请输入目录组的组名或 DN",
    "dir_choose_role": "请选择角色",
    "dir_mapped": "**{group}** 的成员下次登录时成为 **{collection}** 的{role}。",
    "dir_removed": "**{group}** 已不再映射到 **{collection}**。",
    "col_group": "组",
}

TABLE = {"en": EN, "zh-CN": ZH}
I18N = gr.I18n(**TABLE)


def t(key: str, lang: str | None = DEFAULT, **params) -> str:
    """The text of `key` in `lang` (English when the locale lacks it), with its values filled in."""
    text = TABLE.get(lang or DEFAULT, EN).get(key) or EN[key]
    return text.format(**params) if params else text


def columns(names: list[str], lang: str) -> list[str]:
    """Table headers on screen."""
    return [t(f"col_{name}", lang) for name in names]


def value(word: str, lang: str, kind: str = "status") -> str:
    """A stored English value (a status, a role) as shown; unknown values as they are."""
    key = f"{kind}_{word}"
    return t(key, lang) if key in EN else word


def supported(tag: str | None) -> str | None:
    """The table's locale for a BCP 47 tag or None: any Chinese is zh-CN, any English en."""
    tag = (tag or "").strip().lower()
    if tag.startswith("zh"):
        return "zh-CN"
    if tag.startswith("en"):
        return "en"
    return None


def from_accept_language(header: str | None) -> str:
    """The best supported locale of an Accept-Language header, by its q values."""
    ranked = []
    for position, part in enumerate((header or "").split(",")):
        tag, _, weight = part.strip().partition(";q=")
        try:
            quality = float(weight) if weight else 1.0
        except ValueError:
            quality = 0.0
        ranked.append((-quality, position, tag))
    for _, _, tag in sorted(ranked):
        if locale := supported(tag):
            return locale
    return DEFAULT


def language(request: gr.Request | None) -> str:
    """The language of this page: the switch's choice (its cookie), else the browser's."""
    if request is None:
        return DEFAULT
    headers = getattr(request, "headers", None) or {}
    cookies = getattr(request, "cookies", None) or {}
    chosen = cookies.get(COOKIE) if hasattr(cookies, "get") else None
    if chosen in LOCALES:
        return chosen
    return from_accept_language(headers.get("accept-language") if hasattr(headers, "get") else None)


class Refusal(ValueError):
    """Bad input found by the UI: str() is the English text (for logs and other callers);
    `localized` shows it in the page's language."""

    def __init__(self, key: str, **params) -> None:
        super().__init__(t(key, DEFAULT, **params))
        self.i18n_key, self.i18n_params = key, params


def localized(exc: BaseException, lang: str) -> str:
    """An error's message in `lang` where the UI made it; the service's own messages are English."""
    key = getattr(exc, "i18n_key", None)
    return t(key, lang, **getattr(exc, "i18n_params", {})) if key else str(exc)


def switch() -> gr.Radio:
    """The language switch; its value is set by the page's load handler, `SWITCH_SCRIPT`
    follows it."""
    return gr.Radio(
        choices=LANGUAGE_NAMES, value=None, label=I18N("language"), elem_id="lang-switch", container=False, scale=0, min_width=180
    )


# Gradio's `changeLocale` lives in its `core-*.js` module, which the page has already loaded:
# importing the same URL again returns that very module (an ES module loads once per URL), so
# the call changes the locale store Gradio's components read, as its Settings panel does.
# The radio is followed (not only its clicks), so a value the server sets on load applies too.
# CSP note: this is an inline <script> in the head, not an event's `js=` (that one needs eval).
SWITCH_SCRIPT = (
    """
<script>
(() => {
  const COOKIE = "%s";
  let applied = null;
  let gradio = null;
  const remember = (lang) => {
    document.cookie = `${COOKIE}=${lang}; path=/; max-age=31536000; SameSite=Lax`;
  };
  const gradioCore = () => {
    if (!gradio) {
      const urls = performance.getEntriesByType("resource").map((entry) => entry.name)
        .concat([...document.querySelectorAll('link[rel="modulepreload"]')].map((link) => link.href));
      const url = urls.find((name) => /\\/assets\\/core-[^/?#]+\\.js(?:[?#]|$)/.test(name));
      gradio = url ? import(url).catch(() => null) : Promise.resolve(null);
    }
    return gradio;
  };
  // A click: remember it before Gradio sends the event, so its handler's request carries it.
  document.addEventListener("change", (event) => {
    const input = event.target;
    if (input && input.closest && input.closest("#lang-switch") && input.value) remember(input.value);
  }, true);
  setInterval(async () => {
    const checked = document.querySelector('#lang-switch input[type="radio"][aria-checked="true"], #lang-switch input:checked');
    const wanted = checked && checked.value;
    if (!wanted || wanted === applied) return;
    applied = wanted;
    remember(wanted);
    if (document.documentElement.lang === wanted) return;
    const core = await gradioCore();
    if (core && core.changeLocale) core.changeLocale(wanted);
    else console.warn("mmkb: Gradio's changeLocale was not found; labels keep the browser's language");
  }, 200);
})();
</script>
"""  # noqa: UP031 - the braces inside are JavaScript
    % COOKIE
)
