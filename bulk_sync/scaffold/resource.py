"""init-mapping, resource: a starter for SIRO opportunities (``--resource opportunities``): the
headers matched as for engagements, then kept only where an opportunity has the field, under its
name there (``opportunity.amount`` is an opportunity's ``amount``, the rep its ``opportunityUsers``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .match import norm

RESOURCES = ("engagements", "opportunities")


# an engagement target the matcher places -> the opportunity's name for it (a prefix ends in ".")
OPPORTUNITY_NAMES = {
    "externalId": "externalId",
    "opportunity.name": "name",
    "opportunity.amount": "amount",
    "opportunity.closedAt": "closedAt",
    "opportunity.disposition": "disposition",
    "remoteCreatedAt": "remoteCreatedAt",
    "lastActivityAt": "lastActivityAt",
    "account.": "account.",
    "engagementUsers[0].": "opportunityUsers[0].",
    "contact.": "opportunityContacts[0].",
}


LAST_ACTIVITY = ("last activity", "last activity date", "last activity at", "last activity time")


def opportunity_name(target: str) -> str | None:
    """The opportunity field an engagement target stands for (None: an opportunity has none)."""
    if target in OPPORTUNITY_NAMES:
        return OPPORTUNITY_NAMES[target]
    prefix = next((p for p in OPPORTUNITY_NAMES if p.endswith(".") and target.startswith(p)), None)
    return None if prefix is None else OPPORTUNITY_NAMES[prefix] + target[len(prefix) :]


def keep_for_opportunities(matched: dict[str, str], headers: Sequence[str]) -> None:
    """``matched`` (target -> header, engagement names) cut to what an opportunity has, in place:
    the opportunity's own id is the record's id; a "Last Activity" column its lastActivityAt."""
    if "opportunity.externalId" in matched:
        matched["externalId"] = matched.pop("opportunity.externalId")
    last = next((h for h in headers if norm(h) in LAST_ACTIVITY), None)
    if last is not None:
        for target in [t for t, h in matched.items() if h == last]:
            del matched[target]
        matched["lastActivityAt"] = last
    for target in [t for t in matched if opportunity_name(t) is None]:
        del matched[target]


_KEY = re.compile(r"^  ([^\s:#][^:]*):")


def renamed(lines: list[str]) -> list[str]:
    """The starter's field lines with each target under its opportunity name."""
    out = []
    for line in lines:
        m = _KEY.match(line)
        name = opportunity_name(m.group(1)) if m else None
        out.append(f"  {name}:{line[m.end() :]}" if m and name else line)
    return out
