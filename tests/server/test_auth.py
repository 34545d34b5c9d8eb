"""Jupyter's auth guards every route: no token -> 403; cookie writes need the XSRF token."""

from __future__ import annotations

from typing import Any

from pluresdb_lab.server.routes import SEGMENT, TABLE

METHODS = ("get", "post", "put", "delete")
ROUTES = [
    (SEGMENT.sub("x", entry.path), method.upper())
    for entry in TABLE
    for method in METHODS
    if method.upper() in entry.serves or method in vars(entry.handler)
]


def test_every_handler_method_is_listed() -> None:
    assert len(ROUTES) >= 30
    assert ("nodes", "POST") in ROUTES
    assert ("node/x", "DELETE") in ROUTES


async def test_no_token_is_refused_on_every_route(api: Any, served_db: Any) -> None:
    admitted = []
    for route, method in ROUTES:
        for auth in ("", "token wrong-token"):
            status, body = await api(method, route, {}, headers={"Authorization": auth})
            if status != 403 or not body["message"]:
                admitted.append((method, route, auth, status))
    assert admitted == []
    assert served_db.count() == 0


async def test_cookie_post_without_xsrf_is_refused(api: Any, jp_fetch: Any, served_db: Any) -> None:
    response = await jp_fetch("pluresdb", "api", "nodes/count")
    cookies = [c.split(";", 1)[0] for c in response.headers.get_list("Set-Cookie")]
    login = next(c for c in cookies if c.startswith("username-"))
    only_cookie = {"Authorization": "", "Cookie": login}
    status, body = await api("GET", "nodes/count", headers=only_cookie)
    assert (status, body) == (200, {"count": 0})
    status, body = await api("PUT", "node/x", {"data": {"a": 1}}, headers=only_cookie)
    assert status == 403
    assert "_xsrf" in body["message"]
    assert served_db.count() == 0
