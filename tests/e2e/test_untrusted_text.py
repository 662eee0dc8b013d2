"""Untrusted text (chunks, taxonomy names, model output) comes back verbatim as JSON text.

The API never HTML-escapes or strips text: it is data, and the browser renders it as text
nodes (frontend tests). What the API guarantees is that such text only ever travels as a
JSON string with ``Content-Type: application/json`` and ``X-Content-Type-Options: nosniff``.
CSV formula injection is neutralised by the CSV writer (tests/unit/test_export_formats.py).
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from typing import Any

import pytest

from tests.conftest import Api

pytestmark = pytest.mark.e2e

SCRIPT = '<script>alert("owned")</script>'
IMG = "<img src=x onerror=alert(1)>"
TAG = "<script>steal</script>"  # a taxonomy name the simulator writes into the dialogue


def raw_get(api: Api, path: str) -> tuple[bytes, dict[str, str]]:
    req = urllib.request.Request(api.base + path, headers={"Authorization": f"Bearer {api.token}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.read(), dict(resp.headers)


def assert_json_text(headers: dict[str, str]) -> None:
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_script_in_chunks_and_model_output_comes_back_verbatim(api: Api) -> None:
    status, ds, _ = api.post("/api/datasets", {"name": f"Untrusted {IMG}", "budget_usd": 5})
    assert status == 201 and ds["name"] == f"Untrusted {IMG}"
    dsid = ds["dataset_id"]
    persona = f"{TAG} Investor"
    taxonomy = {
        "personas": [{"name": persona, "description": IMG}],
        **{
            k: [{"name": "Plain", "description": "plain"}]
            for k in ("emotions", "topics", "intents", "tones")
        },
    }
    status, body, _ = api.put(f"/api/datasets/{dsid}/taxonomy", taxonomy)
    assert status == 200, body
    chunk_text = f"Our advisory fee is one percent a year. {SCRIPT} {IMG} It covers planning."
    status, body, _ = api.post(
        f"/api/datasets/{dsid}/chunks",
        [{"chunk_id": "c1", "document_id": "d1", "text": chunk_text}],
    )
    assert status == 201, body

    raw, headers = raw_get(api, f"/api/datasets/{dsid}/chunks")
    assert_json_text(headers)
    assert json.loads(raw)["items"][0]["text"] == chunk_text
    assert SCRIPT.replace('"', '\\"').encode() in raw  # a JSON string, not HTML-escaped

    status, plan, _ = api.post(
        f"/api/datasets/{dsid}/plan",
        {"count": 1, "tier_distribution": {"template": 1, "scenario": 0, "edge_case": 0}},
    )
    assert status == 201, plan
    cid = plan["conversation_ids"][0]
    status, accepted, _ = api.post("/api/conversations/generate", {"conversation_id": cid})
    assert status == 202, accepted
    deadline = time.time() + 60
    while time.time() < deadline:
        status, conv, _ = api.get(f"/api/conversations/{cid}")
        if conv["status"] in ("generated", "failed"):
            break
        time.sleep(0.2)
    assert conv["status"] == "generated", conv
    assert conv["persona"] == persona
    # The model (here the simulator, which writes the persona's name into the dialogue)
    # produced markup; it is stored and returned exactly as written.
    used = [g["template_id"] for g in conv.get("generation_logs", []) if g.get("template_id")]
    template = api.get(f"/api/templates/{used[-1]}")[1] if used else None
    assert any(TAG in t["content"] for t in conv["turns"]), (template, conv["turns"][:2])
    raw, headers = raw_get(api, f"/api/conversations/{cid}")
    assert_json_text(headers)
    detail: dict[str, Any] = json.loads(raw)
    assert detail["turns"] == conv["turns"]

    notes = f"{SCRIPT}{IMG} looks fine"
    status, saved, _ = api.patch(
        f"/api/conversations/{cid}",
        {"status": "approved", "reviewer_notes": notes, "version": conv["version"]},
    )
    assert status == 200 and saved["reviewer_notes"] == notes, saved
    raw, headers = raw_get(api, f"/api/conversations?dataset_id={dsid}&q=Investor")
    assert_json_text(headers)
    assert json.loads(raw)["items"][0]["reviewer_notes"] == notes
    status, preview, _ = api.get(f"/api/export/preview?format=openai&dataset_id={dsid}")
    assert status == 200
    assert any(TAG in m["content"] for m in preview["records"][0]["messages"])


def test_errors_echoing_input_are_json_too(api: Api) -> None:
    status, body, headers = api.get(f"/api/conversations/{urllib.parse.quote(IMG)}")
    assert status in (400, 404)
    assert headers["Content-Type"] == "application/json"
    assert isinstance(body, dict) and "error" in body
