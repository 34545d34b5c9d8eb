"""The REST API fuzzed from its own OpenAPI document (schemathesis): no request gets a
5xx, a rejected request (4xx) changes nothing, and every reply matches the schema the
document derives for it.

Routes that take server-side file paths (import, export, backups) are left out: random
paths would make the server write files wherever they point; so are the mesh routes,
whose random URLs would dial out. The change feed streams forever and the msgpack op
routes have no generated bodies; other tests cover all of these.
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import response_schema_conformance

from pluresdb_lab.server.openapi import document
from tests.server.conftest import TOKEN

AUTH = {"Authorization": f"token {TOKEN}"}

schema = schemathesis.openapi.from_dict(document("/")).exclude(
    path_regex="^/(import|export|backups|changes|ops|mesh)"
)
schema.config.phases.coverage.enabled = False  # random cases only, within the time budget


def state(base: str) -> tuple[dict[str, int], int]:
    """What any accepted write changes: the version vector and the node count."""
    with httpx.Client(base_url=base, headers=AUTH, timeout=30) as http:
        vv = http.get("version-vector").json()["version_vector"]
        count = http.get("nodes/count").json()["count"]
    return vv, count


@pytest.fixture(scope="module")
def base(serve_url: str) -> str:
    return serve_url.removesuffix("/pluresdb/api/") + "/pluresdb/api"


@schema.parametrize()
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    derandomize=True,
)
def test_no_5xx_and_rejections_change_nothing(case: schemathesis.Case, base: str) -> None:
    before = state(base + "/")
    response = case.call(base_url=base, headers=AUTH, timeout=30)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert state(base + "/") == before, (case.method, case.path, response.text)
    case.validate_response(response, checks=[response_schema_conformance])
