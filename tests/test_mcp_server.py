"""`kb mcp` through the MCP SDK's own client: streamable HTTP (served by uvicorn on loopback, with
real accounts and API tokens) and stdio (`kb mcp --user bob` as a subprocess over the same data).

One answer is generated (`ask` over HTTP); every other check is retrieval, or a question refused
before the model writes."""

from __future__ import annotations

import subprocess

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from app.mcp_server import http_app
from app.service import KnowledgeBase
from tests.conftest import ROOT, SAMPLES, make_settings
from tests.servers import KB, kb_env, serving

EXPENSES_QUESTION = "How long after a trip do employees have to hand in their expense claim?"  # samples/questions.json, p. 4
FAN_QUESTION = "What is the part number of the replacement cooling fan for the SX-400?"  # only in the manual, p. 5
FAN_PART = "HX-FAN-77"
MANUAL = "solar-inverter-manual.pdf"


@pytest.fixture(scope="module")
def site(tmp_path_factory, models):
    """bob reads `travel` (the travel policy); `manual` (the inverter manual) is alice's alone."""
    data = tmp_path_factory.mktemp("mcp-data")
    kb = KnowledgeBase(make_settings(data), models=models)
    kb.accounts.create_user("alice", "alice-password", is_admin=True)
    kb.accounts.create_user("bob", "bob-password")
    for name, pdf in (("travel", "employee-travel-policy.pdf"), ("manual", MANUAL)):
        report = kb.ingest(kb.system_user(), name, paths=[SAMPLES / pdf])
        assert not report.failed, report.failed
    kb.grant("bob", "travel")
    tokens = {name: kb.accounts.issue_token(kb.user(name), "mcp") for name in ("alice", "bob")}
    # Open without accounts, as on loopback: accounts exist, so a token is needed all the same.
    with serving(http_app(kb, "127.0.0.1", open_without_accounts=True)) as url:
        yield {"kb": kb, "url": f"{url}/mcp", "tokens": tokens, "data": data}
    kb.close()


def over_http(site, user: str) -> Client:
    headers = {"Authorization": f"Bearer {site['tokens'][user]}"}
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=900))
    return Client(streamable_http_client(site["url"], http_client=http))


async def call(client: Client, tool: str, **arguments):
    result = await client.call_tool(tool, arguments)
    if result.is_error:
        return result.content[0].text
    return result.structured_content


def run(check) -> None:
    anyio.run(check)


def refusal_reads_as_missing(forbidden: str, missing: str) -> None:
    assert isinstance(forbidden, str) and isinstance(missing, str)  # tool errors, not results
    assert forbidden.replace("manual", "X") == missing.replace("no-such-collection", "X")


async def permission_checks(client: Client) -> None:
    """bob's view through any transport: his collection only; the manual's text never comes back."""
    assert {t.name for t in (await client.list_tools()).tools} >= {"search", "ask", "collections"}
    assert (await call(client, "collections"))["collections"] == ["travel"]
    passages = (await call(client, "search", query=FAN_QUESTION, k=10))["passages"]
    assert passages and all(p["collection"] == "travel" and p["file"] != MANUAL for p in passages)
    assert not any(FAN_PART in p["text"] for p in passages)
    refusal_reads_as_missing(
        await call(client, "search", query=FAN_QUESTION, collection="manual"),
        await call(client, "search", query=FAN_QUESTION, collection="no-such-collection"),
    )


def test_http_refuses_requests_without_a_valid_token(site):
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    headers = {"Accept": "application/json, text/event-stream"}
    for authorization in (None, "Bearer mmkb_forged", f"Basic {site['tokens']['bob']}"):
        sent = headers | ({"Authorization": authorization} if authorization else {})
        response = httpx.post(site["url"], json=initialize, headers=sent)
        assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
        assert "API token" in response.json()["error_description"]


def test_http_without_accounts_acts_as_the_local_administrator_until_the_first_account(tmp_path, models):
    kb = KnowledgeBase(make_settings(tmp_path / "data"), models=models)
    kb.get_or_create_collection("notes")
    try:
        with serving(http_app(kb, "127.0.0.1", open_without_accounts=True)) as url:

            async def anonymous_collections():
                async with Client(f"{url}/mcp") as client:
                    return await call(client, "collections")

            assert anyio.run(anonymous_collections) == {"collections": ["notes"]}  # the single-user local app
            kb.accounts.create_user("alice", "alice-password", is_admin=True)
            refused = httpx.post(
                f"{url}/mcp",
                json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}},
                headers={"Accept": "application/json, text/event-stream"},
            )
            assert refused.status_code == 401  # at once, without a restart
    finally:
        kb.close()


def test_http_search_sees_only_the_callers_collections(site):
    async def check():
        async with over_http(site, "bob") as bob:
            await permission_checks(bob)
        async with over_http(site, "alice") as alice:  # the part number is there, for its reader
            passages = (await call(alice, "search", query=FAN_QUESTION, collection="manual"))["passages"]
            assert any(FAN_PART in p["text"] and p["file"] == MANUAL and p["page"] == 5 for p in passages)
            assert all(set(p) >= {"file", "page", "score", "text"} for p in passages)

    run(check)


def test_http_ask_gives_a_cited_answer_and_nothing_from_a_forbidden_collection(site):
    async def check():
        async with over_http(site, "bob") as bob:
            answer = await call(bob, "ask", question=EXPENSES_QUESTION, collection="travel")
            assert answer["supported"] is True and "30" in answer["answer"], answer
            assert answer["quote"]["page"] == 4 and "30 calendar days" in answer["quote"]["text"]
            sources = answer["sources"]
            assert any(s["file"] == "employee-travel-policy.pdf" and s["page"] == 4 for s in sources)
            assert all(f"[{s['number']}]" in answer["answer"] for s in sources)
            # Refused before the model writes: nothing of the manual in bob's documents.
            everything = await call(bob, "ask", question=FAN_QUESTION)
            assert everything["supported"] is False and FAN_PART not in str(everything) and MANUAL not in str(everything)
            refusal_reads_as_missing(
                await call(bob, "ask", question=FAN_QUESTION, collection="manual"),
                await call(bob, "ask", question=FAN_QUESTION, collection="no-such-collection"),
            )

    run(check)


def test_stdio_runs_as_the_user_it_is_started_for(site, tmp_path):
    server = StdioServerParameters(command=str(KB), args=["mcp", "--user", "bob"], env=kb_env(site["data"]), cwd=str(ROOT))

    async def check():
        with (tmp_path / "kb-mcp.log").open("w") as log:
            async with Client(stdio_client(server, errlog=log), read_timeout_seconds=600) as bob:
                await permission_checks(bob)

    run(check)


@pytest.mark.slow  # the CLI in a process of its own: real models, or the app's start
def test_kb_mcp_refuses_an_open_network_address_and_an_unknown_user(tmp_path):
    def kb_mcp(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(KB), "mcp", *args],
            env=kb_env(tmp_path / "data"),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )

    exposed = kb_mcp("--transport", "http", "--host", "0.0.0.0", "--port", "1")
    assert exposed.returncode == 1 and "kb admin create NAME" in exposed.stderr and "--insecure-no-auth" in exposed.stderr
    stranger = kb_mcp("--user", "nobody")
    assert stranger.returncode == 1 and "no user 'nobody'" in stranger.stderr and "kb admin create nobody" in stranger.stderr
