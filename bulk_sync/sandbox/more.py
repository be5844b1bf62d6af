"""Sandbox, more: SIRO's endpoints besides the engagement sync, with the same token check, limiter,
injected faults and schema validation: its users (``GET /v1/core/users``, paged by ``cursor``),
the mirror's ``POST .../soft-delete-removed`` and ``DELETE .../engagements/{id}``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
from typing import Any

from aiohttp import web

from .schema import validator_for, zod_issues


def user_record(
    email: str, first: str = "", last: str = "", disabled: bool = False, n: int = 0
) -> dict[str, Any]:
    """A SIRO User (siro-openapi-more.yaml) for the sandbox's list."""
    return {
        "id": f"usr_{n:06d}",
        "email": email,
        "organizationId": "org_sandbox",
        "phoneNumber": None,
        "firstName": first or None,
        "lastName": last or None,
        "memberTeamId": None,
        "coachTeamIds": [],
        "externalId": None,
        "createdAt": "2024-01-01T00:00:00.000Z",
        "disabled": disabled,
        "billable": True,
    }


class Extras:
    """The handlers; they share the sandbox's state, token and faults."""

    def __init__(self, sandbox: Any) -> None:  # app.Sandbox (app imports this module)
        self.sb = sandbox
        # faults of their own: these calls leave the sync endpoints' (seeded) fault sequence as it was
        self._rng = random.Random(sandbox.faults.seed)
        self._soft_delete = validator_for("SoftDeleteRemovedRequest")

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/core/users", self.users)
        app.router.add_post("/v1/integrations/sync/engagements/soft-delete-removed", self.soft_delete_removed)
        app.router.add_delete("/v1/integrations/engagements/{id}", self.delete)

    async def _gate(self, request: web.Request, path: str) -> web.StreamResponse | None:
        """What the sync endpoints check first: the token, the limiter, an injected fault."""
        state = self.sb.state
        state.calls[path] += 1
        refused: web.StreamResponse | None = (
            self.sb._auth(request) or self.sb._limited() or self.sb._injected(self.sb._pick_fault(self._rng))
        )
        if refused is not None:
            state.responses[refused.status] += 1
        return refused

    async def users(self, request: web.Request) -> web.StreamResponse:
        if (refused := await self._gate(request, "users")) is not None:
            return refused
        users = self.sb.users
        if users is None:
            return web.json_response({"error": "Not found"}, status=404)
        try:
            start = int(request.query.get("cursor") or 0)
        except ValueError:
            return web.json_response({"error": "Invalid cursor"}, status=400)
        page = users[start : start + self.sb.faults.users_page]
        after = start + len(page)
        return web.json_response({"data": page, "cursor": str(after) if after < len(users) else None})

    async def soft_delete_removed(self, request: web.Request) -> web.StreamResponse:
        if (refused := await self._gate(request, "soft-delete-removed")) is not None:
            return refused
        try:
            body = json.loads(await request.read())
        except ValueError:
            return web.json_response({"error": "Invalid JSON body"}, status=400)
        errors = list(self._soft_delete.iter_errors(body))
        if errors:
            return web.json_response({"name": "ZodError", "issues": zod_issues(errors)}, status=422)
        low, high = _instant(body["fromTime"]), _instant(body["toTime"])
        keep = set(body["validExternalIds"])
        state = self.sb.state
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        for ext, item in state.records.items():
            start = item.get("startTime")
            if ext in keep or ext in state.soft_deleted or not isinstance(start, str):
                continue
            if low <= _instant(start) <= high:
                state.soft_deleted[ext] = now
        state.soft_delete_calls.append(body)
        return web.json_response({"data": {"success": True}})

    async def delete(self, request: web.Request) -> web.StreamResponse:
        if (refused := await self._gate(request, "delete")) is not None:
            return refused
        key = request.match_info["id"]
        state = self.sb.state
        if request.query.get("idType") == "external":
            ext: str | None = key
        else:
            ext = next((e for e, i in state.ids.items() if i == key), None)
        if ext is None or ext not in state.records:
            return web.json_response(False)
        del state.records[ext]
        state.deleted.append(ext)
        if self.sb.faults.delete_latency:  # deleted, not yet said: a client killed now never hears it
            await asyncio.sleep(self.sb.faults.delete_latency)
        return web.json_response(True)


def _instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
