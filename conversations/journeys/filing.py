"""Filing a customer request (facilities, prepaid, callback): one reference, one record and one
audit entry, all in the turn's transaction, so the customer is told the reference only once the
request is on disk with the rest of the turn."""

from __future__ import annotations

from typing import Any

from ..flow import Turn

# The reference's prefix per kind: DF-2026-000123.
PREFIX = {
    "deferral": "DF",
    "instalment": "IN",
    "prepaid_advance": "PP",
    "prepaid_visit": "PV",
    "callback": "CB",
    "connection": "BR",  # branchement: a new meter (issue 24)
    "transfer": "MU",  # mutation: a subscription taken over (issue 24)
}
# Kinds that may replace a pending request of the same kind: their audit entry says which (or none).
REPLACING = frozenset({"deferral", "instalment", "prepaid_advance", "prepaid_visit"})


async def file_request(
    t: Turn,
    kind: str,
    *,
    contract: str | None,
    replaces: str | None = None,
    recorded: str | None = None,
    **fields: Any,
) -> str:
    """Number, record and audit a request of `kind` (fields as `add_request` takes them); say
    `recorded` (a catalog key given the reference) if told. Returns the reference. Marking the
    replaced request is the journey's: each decides what a request decided meanwhile means."""
    reference = await t.tx.next_reference(PREFIX[kind], t.today.year)
    await t.tx.add_request(
        reference=reference,
        kind=kind,
        contract=contract,
        channel=t.channel,
        user_id=t.user_id,
        lang=t.lang,
        now=t.now,
        **fields,
    )
    audit: dict[str, Any] = {"reference": reference, "kind": kind}
    if kind in REPLACING:
        audit["replaces"] = replaces
    await t.tx.audit("request_filed", channel=t.channel, user_id=t.user_id, contract=contract, details=audit, now=t.now)
    if recorded is not None:
        t.say(recorded, reference=t.tr.ltr(reference))
    return reference
