"""Review decisions and their undo tokens.

A decision (one PATCH, one bulk call, one turn's feedback, one undo) is an audit record
``review.decision`` listing, per conversation, the key of that conversation's own audit
record; each of those carries ``details.undo``: the version the decision left and what
its undo writes back. The token is the decision record's key, so the undo reads it with
one strongly consistent GetItem (an index would lag just when a reviewer presses Undo).
The tenant is part of every read: another tenant's token finds nothing.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from typing import Any

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.models import AuditRecord, utcnow

DECISION_ACTION = "review.decision"
TOKEN_PREFIX = "u1."
_KEY = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.+-]+#aud_[0-9a-f]{20}$")


def encode_token(record: AuditRecord) -> str:
    raw = record.sort_key.encode()
    return TOKEN_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> str:
    """The decision record's key; a 400 for anything that is not a token."""
    bad = ValidationError("invalid undo_token", {"field": "undo_token"})
    if not token.startswith(TOKEN_PREFIX):
        raise bad
    body = token[len(TOKEN_PREFIX) :]
    try:
        key = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as e:
        raise bad from e
    if not _KEY.match(key):
        raise bad
    return key


def new_decision(tenant_id: str, actor: str, action: str, kind: str) -> AuditRecord:
    """The decision's record, built before its writes (they name its id) and written
    after them with the items that applied."""
    record = AuditRecord(
        tenant_id=tenant_id,
        actor=actor,
        action=DECISION_ACTION,
        entity_type="decision",
        entity_id="",
        details={"kind": kind, "action": action},
        at=utcnow(),
    )
    return record.model_copy(update={"entity_id": record.audit_id})


def with_items(decision: AuditRecord, applied: Iterable[tuple[str, AuditRecord]]) -> AuditRecord:
    """The decision with its items: (conversation id, that conversation's audit record)."""
    items = [{"id": cid, "audit": audit.sort_key} for cid, audit in applied]
    details = {**decision.details, "items": items, "count": len(items)}
    return decision.model_copy(update={"details": details})


def token_fields(decision: AuditRecord | None) -> dict[str, Any]:
    """``decision_id`` and ``undo_token`` of a response (null when nothing applied)."""
    if decision is None:
        return {"decision_id": None, "undo_token": None}
    return {"decision_id": decision.audit_id, "undo_token": encode_token(decision)}
