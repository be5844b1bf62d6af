"""The SIRO sandbox behaves like the API: token check, Zod-style 422s, upsert, batch, limits."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from helpers import TOKEN, Sandbox

from bulk_sync.sandbox import Faults, SandboxServer

ONE = "/v1/integrations/sync/engagements"
BATCH = "/v1/integrations/sync/batch/engagements"


def client(server: SandboxServer, token: str = TOKEN) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_token_is_checked(sandbox: Sandbox) -> None:
    server = sandbox()
    with client(server, "nope") as c:
        r = c.put(ONE, json={"externalId": "A"})
        assert (r.status_code, r.json()) == (401, {"error": "Unauthorized"})
        assert c.get("/v1/core/auth/caller-identity").status_code == 401
    with client(server) as c:
        assert c.get("/v1/core/auth/caller-identity").json()["data"]["organizationId"] == "org_sandbox"
    assert server.state.records == {}


@pytest.mark.parametrize(
    ("body", "issue"),
    [
        ({}, {"code": "invalid_type", "path": ["externalId"], "message": "Required"}),
        ({"externalId": "A", "direction": "SIDEWAYS"}, {"code": "invalid_enum_value", "path": ["direction"]}),
        (
            {"externalId": "A", "account": {"addresses": [{"city": "X"}]}},
            {"code": "invalid_type", "path": ["account", "addresses", 0, "country"], "message": "Required"},
        ),
        ({"externalId": "A", "engagementUsers": None}, {"code": "invalid_type", "path": ["engagementUsers"]}),
        ({"externalId": "A", "deletedAt": "yesterday"}, {"code": "invalid_string", "path": ["deletedAt"]}),
        (
            {"externalId": "A", "engagementType": {"name": "x"}},
            {"code": "invalid_type", "path": ["engagementType", "activityType"]},
        ),
        ({"externalId": 7}, {"code": "invalid_type", "path": ["externalId"]}),
    ],
)
def test_invalid_bodies_get_zod_style_422(
    sandbox: Sandbox, body: dict[str, Any], issue: dict[str, Any]
) -> None:
    server = sandbox()
    with client(server) as c:
        r = c.put(ONE, json=body)
    assert r.status_code == 422
    data = r.json()
    assert data["name"] == "ZodError"
    assert any(issue.items() <= i.items() for i in data["issues"]), data["issues"]
    assert server.state.records == {}


def test_valid_nulls_and_upsert(sandbox: Sandbox) -> None:
    server = sandbox()
    with client(server) as c:
        r1 = c.put(ONE, json={"externalId": "A", "subject": "one", "direction": None, "account": None})
        r2 = c.put(ONE, json={"externalId": "A", "subject": "two"})
        listed = c.get("/v1/integrations/engagements", params={"externalId": "A"}).json()
    assert r1.status_code == r2.status_code == 200
    assert r1.json()["data"]["id"] == r2.json()["data"]["id"]
    assert server.state.records == {"A": {"externalId": "A", "subject": "two"}}
    assert server.state.writes["A"] == 2
    assert listed["data"][0]["subject"] == "two"


def test_batch_is_validated_whole_with_index_paths(sandbox: Sandbox) -> None:
    server = sandbox()
    with client(server) as c:
        bad = c.put(BATCH, json=[{"externalId": "A"}, {"externalId": "B", "direction": "UP"}])
        good = c.put(BATCH, json=[{"externalId": "A"}, {"externalId": "B"}])
        not_array = c.put(BATCH, json={"externalId": "A"})
    assert bad.status_code == 422 and bad.json()["issues"][0]["path"] == [1, "direction"]
    assert [e["externalId"] for e in good.json()["data"]] == ["A", "B"]
    assert not_array.status_code == 400
    assert set(server.state.records) == {"A", "B"} and server.state.writes["A"] == 1


def test_rate_limit_and_body_cap(sandbox: Sandbox) -> None:
    server = sandbox(Faults(rate_per_min=3, max_body_bytes=2000))
    with client(server) as c:
        codes = [c.put(ONE, json={"externalId": str(i)}).status_code for i in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    server2 = sandbox(Faults(max_body_bytes=2000))
    with client(server2) as c:
        assert c.put(ONE, json={"externalId": "A", "content": "x" * 5000}).status_code == 413


def test_fault_injection(sandbox: Sandbox) -> None:
    server = sandbox(Faults(throttle=1.0, retry_after=7))
    with client(server) as c:
        r = c.put(ONE, json={"externalId": "A"})
    assert (r.status_code, r.headers["Retry-After"]) == (429, "7")
    server = sandbox(Faults(drop_after=1.0))
    with client(server) as c, pytest.raises(httpx.RemoteProtocolError):
        c.put(ONE, json={"externalId": "A"})
    assert server.state.records == {"A": {"externalId": "A"}}  # stored, then the answer was lost
    server = sandbox(Faults(drop_before=1.0))
    with client(server) as c, pytest.raises(httpx.RemoteProtocolError):
        c.put(ONE, json={"externalId": "A"})
    assert server.state.records == {}
