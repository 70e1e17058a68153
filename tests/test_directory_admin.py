"""Directory (LDAP) group -> collection role mappings through the REST API and the admin
console's panel, and the dashboard's per-collection text embedder. Real accounts, a real
SQLite database; nothing is ingested, so no model is loaded."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from app.models import Role
from app.service import AccessDenied, KnowledgeBase, NotFound
from tests.conftest import make_settings
from ui.admin_directory import group_rows, map_group, unmap_group
from ui.admin_format import DASHBOARD_COLUMNS, dashboard_views
from ui.i18n import Refusal, t
from ui.server import create_app

# A DN with the characters that break naive paths: '=', ',', a space, an escaped comma and a '/'.
DN = r"cn=R/D Admins\, North,ou=groups,dc=example,dc=org"
E5 = "multilingual-e5-small-q4"


def groups_path(collection: str, group: str | None = None) -> str:
    path = f"/api/collections/{collection}/directory-groups"
    return path if group is None else f"{path}/{quote(group, safe='')}"


@pytest.fixture(scope="module")
def site(tmp_path_factory, models):
    kb = KnowledgeBase(make_settings(tmp_path_factory.mktemp("directory-admin-data")), models=models)
    kb.accounts.create_user("alice", "alice-password", is_admin=True)
    for name in ("bob", "carol", "eve"):
        kb.accounts.create_user(name, f"{name}-password")
    root = kb.system_user()
    kb.create_collection(root, "plant")
    kb.manage_member(root, "plant", "bob", Role.reader)
    kb.manage_member(root, "plant", "carol", Role.admin)  # a collection admin, not a global one
    client = TestClient(create_app(kb, mount_ui=False))

    def token(name: str) -> dict:
        response = client.post("/api/tokens", json={"username": name, "password": f"{name}-password"})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    yield {"client": client, "kb": kb, **{name: token(name) for name in ("alice", "bob", "carol", "eve")}}
    kb.close()


def test_an_admin_maps_lists_changes_and_removes_a_dn_group(site):
    client, alice = site["client"], site["alice"]
    mapped = client.put(groups_path("plant", DN), json={"role": "editor"}, headers=alice)
    assert mapped.status_code == 200, mapped.text
    assert mapped.json() == {"collection": "plant", "group": DN, "role": "editor"}
    assert client.put(groups_path("plant", "plant-readers"), json={"role": "reader"}, headers=alice).status_code == 200
    listed = client.get(groups_path("plant"), headers=alice)
    assert listed.status_code == 200
    assert listed.json() == [{"group": DN, "role": "editor"}, {"group": "plant-readers", "role": "reader"}]

    # Mapping it again (names match without case) changes its role, not a second row.
    assert client.put(groups_path("plant", DN.upper()), json={"role": "admin"}, headers=alice).status_code == 200
    assert site["kb"].directory_groups(site["kb"].user("alice"), "plant")[0] == (DN, Role.admin)

    removed = client.delete(groups_path("plant", DN), headers=alice)
    assert removed.status_code == 200 and removed.json() == {"collection": "plant", "deleted_group": DN}
    assert client.get(groups_path("plant"), headers=alice).json() == [{"group": "plant-readers", "role": "reader"}]
    assert client.delete(groups_path("plant", DN), headers=alice).status_code == 404  # no longer mapped
    assert client.delete(groups_path("plant", "plant-readers"), headers=alice).status_code == 200


def test_who_may_map_groups_follows_the_collection_admin_rule(site):
    client = site["client"]
    # The collection's own admin may; its reader is refused; a non-member is not told it exists.
    assert client.put(groups_path("plant", "night-shift"), json={"role": "reader"}, headers=site["carol"]).status_code == 200
    for method, body in (("get", None), ("put", {"role": "admin"}), ("delete", None)):
        path = groups_path("plant") if method == "get" else groups_path("plant", "night-shift")
        kwargs = {"json": body} if body else {}
        refused = getattr(client, method)(path, headers=site["bob"], **kwargs)
        assert refused.status_code == 403 and refused.json()["code"] == "access_denied", refused.text
        assert getattr(client, method)(path, headers=site["eve"], **kwargs).status_code == 404
        assert getattr(client, method)(path, **kwargs).status_code == 401
    assert client.get(groups_path("no-such-collection"), headers=site["alice"]).json()["code"] == "not_found"
    assert client.put(groups_path("plant", "night-shift"), json={"role": "owner"}, headers=site["alice"]).status_code == 422
    assert client.put(groups_path("plant", "  "), json={"role": "reader"}, headers=site["alice"]).status_code == 400
    assert site["kb"].directory_groups(site["kb"].system_user(), "plant") == [("night-shift", Role.reader)]  # unchanged
    assert client.delete(groups_path("plant", "night-shift"), headers=site["carol"]).status_code == 200


def test_the_console_panel_maps_and_removes_through_the_service(site):
    kb = site["kb"]
    carol, bob = kb.user("carol"), kb.user("bob")
    assert map_group(kb, carol, "plant", f"  {DN} ", "editor", "en") == (
        f"Members of **{DN}** get editor of **plant** at their next sign-in."
    )
    assert group_rows(kb.directory_groups(carol, "plant"), "zh-CN") == [[DN, t("role_editor", "zh-CN")]]
    with pytest.raises(Refusal, match="enter a directory group"):
        map_group(kb, carol, "plant", " ", "reader", "en")
    with pytest.raises(Refusal, match="choose a role"):
        map_group(kb, carol, "plant", DN, None, "en")
    with pytest.raises(AccessDenied):
        map_group(kb, bob, "plant", "bobs-friends", "admin", "en")
    assert unmap_group(kb, carol, "plant", DN, "en") == f"**{DN}** is no longer mapped in **plant**."
    with pytest.raises(NotFound):
        unmap_group(kb, carol, "plant", DN, "en")
    assert kb.directory_groups(carol, "plant") == []


def test_the_dashboard_names_each_collections_text_embedder(site):
    kb = site["kb"]
    root = kb.system_user()
    kb.create_collection(root, "world", text_embedder=E5)
    board = kb.dashboard(root)
    assert {c.name: c.text_embedder for c in board.collections} == {"plant": kb.settings.text_embedder, "world": E5}
    _, table, _, _ = dashboard_views(board, "zh-CN")
    embedders = table[t("col_embedder", "zh-CN")].tolist()
    assert table.columns.tolist()[1] == t(f"col_{DASHBOARD_COLUMNS[1]}", "zh-CN") and embedders == [kb.settings.text_embedder, E5]
