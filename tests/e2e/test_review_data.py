"""Review and data rules over HTTP: edits send a review back, regenerations keep their
earlier versions, coverage follows the list filters, search by words / phrases / ids,
model names, the trash, unique template names, dataset archive and delete.

Each test makes its own dataset (or uses the module's) and computes what it expects
from the API itself, so tests can run in any order on the shared stack.
"""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

import pytest

pytestmark = pytest.mark.e2e


def qs(**params: Any) -> str:
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if v is not None:
                pairs.append((key, str(v).lower() if isinstance(v, bool) else str(v)))
    return urllib.parse.urlencode(pairs)


def assert_error(status: int, body: Any, expected_status: int, code: str | None = None) -> None:
    assert status == expected_status, body
    assert set(body) == {"error"}, body
    assert {"code", "message", "details"} <= set(body["error"]), body
    if code is not None:
        assert body["error"]["code"] == code, body


def wait_job(api: Any, job_id: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status, job, _ = api.get(f"/api/jobs/{job_id}")
        assert status == 200, job
        if job["status"] in ("completed", "failed", "cancelled", "paused"):
            return job
        time.sleep(0.25)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def list_all(api: Any, dsid: str, **params: Any) -> list[dict[str, Any]]:
    params.setdefault("page_size", 100)
    status, body, _ = api.get(f"/api/conversations?{qs(dataset_id=dsid, **params)}")
    assert status == 200, body
    items = list(body["items"])
    while body["next_cursor"]:
        status, body, _ = api.get(
            f"/api/conversations?{qs(dataset_id=dsid, cursor=body['next_cursor'], **params)}"
        )
        assert status == 200, body
        items += body["items"]
    return items


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [i["conversation_id"] for i in items]


def detail(api: Any, cid: str) -> dict[str, Any]:
    status, body, _ = api.get(f"/api/conversations/{cid}")
    assert status == 200, body
    return body


def audit_of(api: Any, entity_id: str) -> list[dict[str, Any]]:
    status, body, _ = api.get(f"/api/audit?{qs(entity_id=entity_id)}")
    assert status == 200, body
    return list(reversed(body["items"]))


def patch(api: Any, cid: str, **changes: Any) -> dict[str, Any]:
    version = detail(api, cid)["version"]
    status, body, _ = api.patch(f"/api/conversations/{cid}", {**changes, "version": version})
    assert status == 200, body
    return body


def generate(api: Any, cids: list[str]) -> dict[str, Any]:
    status, accepted, _ = api.post(
        "/api/conversations/generate-batch",
        {"conversation_ids": cids, "confirm": True, "max_concurrency": 8},
    )
    assert status == 202, accepted
    job = wait_job(api, accepted["job_id"])
    assert job["status"] == "completed", job
    return job


def new_sample(api: Any, count: int, generated: int) -> dict[str, Any]:
    status, dataset, _ = api.post("/api/datasets/sample")
    assert status == 201, dataset
    dsid = dataset["dataset_id"]
    status, plan, _ = api.post(f"/api/datasets/{dsid}/plan", {"count": count})
    assert status == 201, plan
    planned = plan["conversation_ids"]
    chosen = planned[:: max(1, count // max(generated, 1))][:generated]
    if chosen:
        generate(api, chosen)
    return {"id": dsid, "generated": chosen, "planned": [c for c in planned if c not in chosen]}


@pytest.fixture(scope="module")
def ds(api: Any) -> dict[str, Any]:
    """40 planned conversations of the sample dataset, 8 of them generated."""
    return new_sample(api, 40, 8)


# ---------------------------------------------------------------------------- edits


def other_value(api: Any, dsid: str, dim: str, current: str) -> str:
    status, dataset, _ = api.get(f"/api/datasets/{dsid}")
    assert status == 200
    names = [e["name"] for e in dataset["taxonomy"][dim + "s"]]
    return next(n for n in names if n != current)


@pytest.mark.parametrize(
    "field", ["persona", "emotion", "topic", "intent", "tone", "tier", "title"]
)
def test_editing_a_reviewed_conversations_labels_sends_it_back_for_review(
    api: Any, ds: dict[str, Any], field: str
) -> None:
    cid = ds["generated"][0]
    for decision in ("approved", "rejected"):
        patch(api, cid, status=decision, reviewer_notes="looked fine")
        before = detail(api, cid)
        assert before["status"] == decision
        if field == "tier":
            value = next(t for t in ("template", "scenario", "edge_case") if t != before["tier"])
        elif field == "title":
            value = f"{before['title']} (edited)"
        else:
            value = other_value(api, ds["id"], field, before[field])
        saved = patch(api, cid, **{field: value})
        assert saved[field] == value
        assert saved["status"] == "generated", saved
        for name in ("approved_by", "approved_at", "reviewed_by", "reviewed_at"):
            assert saved[name] is None, (name, saved)
        assert saved["reviewer_notes"] == "looked fine"
        after = detail(api, cid)
        assert after["status"] == "generated" and after["approved_by"] is None
        edit = audit_of(api, cid)[-1]
        assert edit["action"] == "conversation.edit"
        assert edit["details"]["returned_to_review"] is True
        assert edit["details"]["changed"] == [field]
        assert edit["before"]["status"] == decision and edit["after"]["status"] == "generated"
        assert edit["before"][field] == before[field] and edit["after"][field] == value
        # It is no longer approved, so it is not exported with its new labels unreviewed.
        assert cid not in ids(list_all(api, ds["id"], status="approved"))


def test_notes_or_an_unchanged_value_keep_the_review(api: Any, ds: dict[str, Any]) -> None:
    cid = ds["generated"][1]
    patch(api, cid, status="approved")
    current = detail(api, cid)
    saved = patch(api, cid, reviewer_notes="a note only")
    assert saved["status"] == "approved" and saved["approved_by"] == current["approved_by"]
    saved = patch(api, cid, persona=current["persona"], title=current["title"])
    assert saved["status"] == "approved" and saved["approved_at"] == current["approved_at"]


def test_an_edit_with_a_decision_applies_the_decision(api: Any, ds: dict[str, Any]) -> None:
    cid = ds["generated"][2]
    patch(api, cid, status="approved")
    current = detail(api, cid)
    value = other_value(api, ds["id"], "persona", current["persona"])
    saved = patch(api, cid, persona=value, status="approved")
    assert saved["status"] == "approved" and saved["persona"] == value
    assert saved["approved_by"]


# ---------------------------------------------------------------------------- model names


def test_dataset_model_must_be_a_priced_model_and_null_clears_it(api: Any) -> None:
    from chalicelib.bootstrap import get_container

    known = sorted(get_container().settings.prices)
    status, body, _ = api.post("/api/datasets", {"name": "Models", "model": "claude-nope-1"})
    assert_error(status, body, 400, "validation_error")
    assert body["error"]["details"]["allowed"] == known
    status, ds, _ = api.post("/api/datasets", {"name": "Models", "model": known[0]})
    assert status == 201 and ds["model"] == known[0], ds
    dsid = ds["dataset_id"]
    status, body, _ = api.patch(f"/api/datasets/{dsid}", {"model": "claude-audit-nonexistent"})
    assert_error(status, body, 400, "validation_error")
    assert body["error"]["details"]["field"] == "model"
    assert body["error"]["details"]["allowed"] == known
    status, got, _ = api.get(f"/api/datasets/{dsid}")
    assert got["model"] == known[0] and got["version"] == ds["version"]
    status, body, _ = api.patch(f"/api/datasets/{dsid}", {"model": known[-1]})
    assert status == 200 and body["model"] == known[-1], body
    status, body, _ = api.patch(f"/api/datasets/{dsid}", {"model": None})
    assert status == 200 and body["model"] is None, body
    assert api.get(f"/api/datasets/{dsid}")[1]["model"] is None
    last = audit_of(api, dsid)[-1]
    assert last["action"] == "dataset.update"
    assert (last["before"]["model"], last["after"]["model"]) == (known[-1], None)


# ---------------------------------------------------------------------------- template names


def new_template(api: Any, name: str) -> tuple[int, Any]:
    # Inactive: a name-only template must not take part in other tests' generations.
    status, body, _ = api.post(
        "/api/templates",
        {"name": name, "tier": "template", "text": "Persona: {persona}", "is_active": False},
    )
    return status, body


def test_template_names_are_unique_per_tenant_ignoring_case(api: Any, api_b: Any) -> None:
    suffix = str(time.time_ns())
    status, first = new_template(api, f"audit-tpl-A {suffix}")
    assert status == 201, first
    for again in (f"audit-tpl-A {suffix}", f"AUDIT-tpl-a {suffix}", f"  audit-tpl-A   {suffix} "):
        status, body = new_template(api, again)
        assert_error(status, body, 409, "conflict")
        assert body["error"]["details"]["existing_template_id"] == first["template_id"]
        assert body["error"]["details"]["existing_name"] == first["name"]
        assert first["name"] in body["error"]["message"]
    names = [t["name"].casefold() for t in api.get("/api/templates")[1]["items"]]
    assert names.count(f"audit-tpl-a {suffix}") == 1
    # Another tenant has its own names.
    status, body = new_template(api_b, f"audit-tpl-A {suffix}")
    assert status == 201, body


def test_renaming_onto_a_taken_name_is_409_and_frees_the_old_name(api: Any) -> None:
    suffix = str(time.time_ns())
    _, one = new_template(api, f"one {suffix}")
    _, two = new_template(api, f"two {suffix}")
    status, body, _ = api.patch(f"/api/templates/{two['template_id']}", {"name": f"ONE {suffix}"})
    assert_error(status, body, 409, "conflict")
    assert body["error"]["details"]["existing_template_id"] == one["template_id"]
    assert api.get(f"/api/templates/{two['template_id']}")[1]["name"] == f"two {suffix}"
    # A change of case of its own name is fine.
    status, body, _ = api.patch(f"/api/templates/{two['template_id']}", {"name": f"Two {suffix}"})
    assert status == 200 and body["name"] == f"Two {suffix}", body
    status, body, _ = api.patch(f"/api/templates/{two['template_id']}", {"name": f"three {suffix}"})
    assert status == 200, body
    # "two" is free again, "three" is taken.
    assert new_template(api, f"two {suffix}")[0] == 201
    status, body = new_template(api, f"Three {suffix}")
    assert_error(status, body, 409, "conflict")
    assert body["error"]["details"]["existing_template_id"] == two["template_id"]


def test_concurrent_creates_of_one_name_make_exactly_one_template(api: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    name = f"race {time.time_ns()}"
    with ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(lambda i: new_template(api, name.upper() if i % 2 else name), range(8))
        )
    statuses = sorted(s for s, _ in results)
    assert statuses == [201] + [409] * 7, results
    winner = next(b for s, b in results if s == 201)
    for status, body in results:
        if status == 409:
            assert body["error"]["details"]["existing_template_id"] == winner["template_id"]
    listed = [t for t in api.get("/api/templates")[1]["items"] if t["name"].casefold() == name]
    assert [t["template_id"] for t in listed] == [winner["template_id"]]


def test_templates_stored_before_names_were_reserved_still_hold_their_name(
    api: Any, stack: Any
) -> None:
    from chalicelib.bootstrap import get_container
    from chalicelib.domain.models import PromptTemplate, Tier
    from chalicelib.store.mapping import doc_of
    from chalicelib.store.records import TemplateRecord

    tenant = stack.demo_users[0].tenant_id
    legacy = PromptTemplate(
        tenant_id=tenant,
        name=f"Legacy {time.time_ns()}",
        tier=Tier.TEMPLATE,
        text="x {persona}",
        is_active=False,  # its prompt has no parameter lines: kept out of generations
    )
    TemplateRecord(tenant, legacy.template_id, doc=doc_of(legacy), version=1).save()
    get_container().templates._cache.clear()
    status, body = new_template(api, legacy.name.lower())
    assert_error(status, body, 409, "conflict")
    assert body["error"]["details"]["existing_template_id"] == legacy.template_id


# ---------------------------------------------------------------------------- coverage


def coverage(api: Any, dsid: str, **params: Any) -> dict[str, Any]:
    status, body, _ = api.get(
        f"/api/conversations/coverage-analysis?{qs(dataset_id=dsid, **params)}"
    )
    assert status == 200, body
    return body


def test_coverage_counts_only_the_conversations_the_filters_select(
    api: Any, ds: dict[str, Any]
) -> None:
    dsid = ds["id"]
    everything = coverage(api, dsid)
    items = list_all(api, dsid)
    assert everything["total"] == len(items) and everything["filtered"] is False
    assert everything["filters"] == {}
    persona = items[0]["persona"]
    tier = items[-1]["tier"]
    cases: list[dict[str, Any]] = [
        {"persona": persona},
        {"persona": persona, "tier": tier},
        {"status": "generated"},
        {"status": ["approved", "generated"]},
        {"tier": tier},
        {"quality_min": 1},
        {"flagged": False, "quality_max": 10},
        {"q": persona},
    ]
    for params in cases:
        got = coverage(api, dsid, **params)
        listed = list_all(api, dsid, **params)
        assert got["total"] == len(listed), params
        assert 0 < got["total"] < len(items), params
        assert got["filtered"] is True
        expected_filters = {
            k: sorted(v if isinstance(v, list) else [v])
            if k in ("persona", "tier", "status")
            else v
            for k, v in params.items()
        }
        assert got["filters"] == expected_filters, (got["filters"], params)
        assert sum(got["by_status"].values()) == len(listed)
        for dim in ("persona", "emotion", "topic", "intent", "tone"):
            counted = {r["value"]: r["total"] for r in got["dimensions"][dim]}
            for value in {i[dim] for i in listed}:
                assert counted[value] == sum(1 for i in listed if i[dim] == value), (dim, params)
    # A dimension filter measures against its own values only.
    one = coverage(api, dsid, persona=persona)
    assert [r["value"] for r in one["dimensions"]["persona"]] == [persona]
    assert one["pairs"]["persona_emotion"]["rows"] == [persona]
    assert one["target_count"] < everything["target_count"] == one["dataset_target_count"]
    by_tier = {t["tier"]: t for t in coverage(api, dsid, tier=tier)["tiers"]}
    assert by_tier[tier]["target"] == {t["tier"]: t for t in everything["tiers"]}[tier]["target"]
    assert all(t["target"] == 0 for name, t in by_tier.items() if name != tier)


def test_coverage_filters_are_checked_like_the_lists(api: Any, ds: dict[str, Any]) -> None:
    status, body, _ = api.get(
        f"/api/conversations/coverage-analysis?{qs(dataset_id=ds['id'], quality_min='x')}"
    )
    assert_error(status, body, 400, "validation_error")
    status, body, _ = api.get(f"/api/conversations/coverage-analysis?{qs(persona='A')}")
    assert_error(status, body, 400, "validation_error")


# ---------------------------------------------------------------------------- search

META = (
    "title",
    "persona",
    "emotion",
    "topic",
    "intent",
    "tone",
    "tier",
    "status",
    "arc",
    "scenario",
    "edge_case_type",
    "reviewer_notes",
    "error_message",
)


def row_words(item: dict[str, Any], turns: str = "") -> list[str]:
    import re

    meta = " ".join(str(item[f]) for f in META if item.get(f))
    return re.findall(r"[^\W_]+", f"{meta} {turns}".casefold())


def starts_at(seq: list[str], parts: list[str], prefix_last: bool) -> bool:
    n = len(parts)
    for i in range(len(seq) - n + 1):
        window = seq[i : i + n]
        if window[:-1] == parts[:-1] and (
            window[-1].startswith(parts[-1]) if prefix_last else window[-1] == parts[-1]
        ):
            return True
    return False


@pytest.fixture(scope="module")
def numbered(api: Any) -> dict[str, Any]:
    """A dataset whose topics are "Topic 1" .. "Topic 12" (the issue's case)."""
    status, dataset, _ = api.post("/api/datasets", {"name": "Numbered topics"})
    assert status == 201, dataset
    dsid = dataset["dataset_id"]
    taxonomy = {
        "personas": ["Pre-Retiree", "Young Saver"],
        "emotions": ["Calm", "Worried"],
        "topics": [f"Topic {i}" for i in range(1, 13)],
        "intents": ["Learn"],
        "tones": ["Warm"],
    }
    assert api.put(f"/api/datasets/{dsid}/taxonomy", taxonomy)[0] == 200
    status, plan, _ = api.post(f"/api/datasets/{dsid}/plan", {"count": 96})
    assert status == 201, plan
    return {"id": dsid, "items": list_all(api, dsid)}


def test_search_matches_words_phrases_and_whole_ids(api: Any, numbered: dict[str, Any]) -> None:
    dsid, items = numbered["id"], numbered["items"]
    assert len(items) == 96

    def search(q: str) -> list[str]:
        return sorted(ids(list_all(api, dsid, q=q)))

    def expect(keep: Any) -> list[str]:
        return sorted(i["conversation_id"] for i in items if keep(i))

    # Unquoted: every word, each a whole word or a word's start; never inside an id.
    got = search("Topic 7")
    assert got == expect(
        lambda i: {"topic"} <= set(row_words(i)) and any(w.startswith("7") for w in row_words(i))
    )
    assert got and set(got) == set(expect(lambda i: i["topic"] == "Topic 7"))
    # Quoted: the phrase, whole words ("Topic 1" is not "Topic 10/11/12").
    assert search('"Topic 1"') == expect(lambda i: starts_at(row_words(i), ["topic", "1"], False))
    assert search('"Topic 1"') == expect(lambda i: i["topic"] == "Topic 1")
    assert set(search("Topic 1")) == set(
        expect(lambda i: i["topic"] in ("Topic 1", "Topic 10", "Topic 11", "Topic 12"))
    )
    # A hyphenated word is its words side by side; any case.
    assert search("pre-retiree") == expect(lambda i: i["persona"] == "Pre-Retiree")
    assert search("PRE-RET") == search("pre-retiree")
    assert search('"pre-retiree" "topic 12"') == expect(
        lambda i: i["persona"] == "Pre-Retiree" and i["topic"] == "Topic 12"
    )
    # Ids: whole, not as substrings or prefixes.
    target = items[5]["conversation_id"]
    assert search(target) == [target]
    assert search(target.upper()) == [target]
    assert search(target[:-3]) == []
    assert search(target[5:12]) == []


def test_search_in_turn_text_uses_the_same_rules(api: Any, ds: dict[str, Any]) -> None:
    cid = ds["generated"][3]
    d = detail(api, cid)
    text = " ".join(t["content"] for t in d["turns"])
    seq = row_words(d, text)
    long_words = [w for w in seq if len(w) >= 8 and w.isalpha()]
    word = long_words[len(long_words) // 2]
    items = {i["conversation_id"]: i for i in list_all(api, ds["id"])}
    turns = {c: " ".join(t["content"] for t in detail(api, c)["turns"]) for c in ds["generated"]}

    def expect(parts: list[str], prefix_last: bool) -> list[str]:
        return sorted(
            c
            for c, i in items.items()
            if starts_at(row_words(i, turns.get(c, "")), parts, prefix_last)
        )

    assert sorted(ids(list_all(api, ds["id"], q=word[:5]))) == expect([word[:5]], True)
    assert cid in expect([word[:5]], True)
    # An inner piece of a word is not a match.
    inner = word[2:7]
    assert sorted(ids(list_all(api, ds["id"], q=inner))) == expect([inner], True)
    i = seq.index(word)
    phrase = seq[i - 1 : i + 1]
    got = sorted(ids(list_all(api, ds["id"], q=f'"{" ".join(phrase)}"')))
    assert cid in got and got == expect(phrase, False)


# ---------------------------------------------------------------------------- trash


def trash(api: Any, dsid: str) -> list[dict[str, Any]]:
    status, body, _ = api.get(f"/api/conversations/trash?{qs(dataset_id=dsid)}")
    assert status == 200, body
    assert body["retention_days"] == 30
    return list(body["items"])


def export_count(api: Any, dsid: str) -> int:
    status, body, _ = api.post(
        "/api/export/conversations", {"format": "openai", "filters": {"dataset_id": dsid}}
    )
    if status == 400 and "no approved conversations" in body["error"]["message"]:
        return 0
    assert status == 201, body
    return int(body["conversation_count"])


def test_delete_moves_to_a_trash_that_restores_for_30_days(api: Any) -> None:
    from datetime import UTC, datetime, timedelta

    data = new_sample(api, 12, 3)
    dsid = data["id"]
    cid = data["generated"][0]
    patch(api, cid, status="approved")
    before = detail(api, cid)
    word = max(before["turns"][1]["content"].split(), key=len).strip(".,!?;:'\"()")
    assert cid in ids(list_all(api, dsid, q=word))
    assert export_count(api, dsid) == 1
    coverage_before = api.get(f"/api/conversations/coverage-analysis?dataset_id={dsid}")[1]

    status, body, _ = api.delete(f"/api/conversations/{cid}")
    assert status == 204, body
    assert_error(*api.get(f"/api/conversations/{cid}")[:2], 404, "not_found")
    assert cid not in ids(list_all(api, dsid))
    assert cid not in ids(list_all(api, dsid, q=word))
    coverage_after = api.get(f"/api/conversations/coverage-analysis?dataset_id={dsid}")[1]
    assert coverage_after["total"] == coverage_before["total"] - 1
    assert export_count(api, dsid) == 0  # an approved conversation in the trash is not exported
    status, body, _ = api.get(f"/api/conversations/{cid}/versions")
    assert_error(status, body, 404, "not_found")

    [item] = [i for i in trash(api, dsid) if i["conversation_id"] == cid]
    assert item["status"] == "approved" and item["trashed_by"]
    purge_at = datetime.fromisoformat(item["purge_at"])
    expected = datetime.now(UTC) + timedelta(days=30)
    assert abs((purge_at - expected).total_seconds()) < 120
    assert item["days_left"] in (29, 30)
    deleted = audit_of(api, cid)[-1]
    assert deleted["action"] == "conversation.delete" and deleted["details"]["to_trash"] is True
    assert deleted["before"]["status"] == "approved"

    status, restored, _ = api.post(f"/api/conversations/{cid}/restore")
    assert status == 200, restored
    assert restored["status"] == "approved" and restored["trashed_at"] is None
    again = detail(api, cid)
    assert again["turns"] == before["turns"] and again["quality_score"] == before["quality_score"]
    assert cid in ids(list_all(api, dsid, q=word))  # turn text searchable again
    assert export_count(api, dsid) == 1
    assert cid not in ids(trash(api, dsid))
    assert audit_of(api, cid)[-1]["action"] == "conversation.restore"
    status, body, _ = api.post(f"/api/conversations/{cid}/restore")
    assert_error(status, body, 404, "not_found")


def test_bulk_delete_needs_confirm_and_bulk_restore(api: Any) -> None:
    data = new_sample(api, 10, 0)
    dsid = data["id"]
    victims = data["planned"][:4]
    status, body, _ = api.post(
        "/api/conversations/bulk-action", {"action": "delete", "ids": [*victims, "conv_nope"]}
    )
    assert_error(status, body, 400, "confirmation_required")
    assert body["error"]["details"]["would_delete"] == victims
    assert body["error"]["details"]["not_found"] == ["conv_nope"]
    assert body["error"]["details"]["count"] == 4
    assert set(victims) <= set(ids(list_all(api, dsid)))  # nothing was deleted
    assert all(a["action"] != "conversation.delete" for v in victims for a in audit_of(api, v))

    status, body, _ = api.post(
        "/api/conversations/bulk-action", {"action": "delete", "ids": victims, "confirm": True}
    )
    assert status == 200 and body["succeeded"] == victims, body
    assert sorted(ids(trash(api, dsid))) == sorted(victims)
    assert not set(victims) & set(ids(list_all(api, dsid)))
    status, body, _ = api.post(
        "/api/conversations/bulk-action",
        {"action": "restore", "ids": [*victims[:3], data["planned"][5]]},
    )
    assert status == 200 and body["succeeded"] == victims[:3], body
    assert [f["id"] for f in body["failed"]] == [data["planned"][5]]
    assert body["failed"][0]["error"]["code"] == "not_found"
    assert ids(trash(api, dsid)) == [victims[3]]
    assert set(victims[:3]) <= set(ids(list_all(api, dsid)))
    for cid in victims[:3]:
        last = audit_of(api, cid)[-1]
        assert last["action"] == "conversation.restore" and last["details"]["bulk"] is True


def test_trashed_conversations_are_not_generated(api: Any) -> None:
    data = new_sample(api, 6, 0)
    cid = data["planned"][0]
    assert api.delete(f"/api/conversations/{cid}")[0] == 204
    status, body, _ = api.post("/api/conversations/generate", {"conversation_id": cid})
    assert_error(status, body, 404, "not_found")
    status, body, _ = api.post(
        "/api/conversations/generate-all", {"dataset_id": data["id"], "confirm": True}
    )
    assert status == 202, body
    job = wait_job(api, body["job_id"])
    assert job["total"] == 5, job
    assert detail(api, data["planned"][1])["status"] == "generated"
    assert [i["status"] for i in trash(api, data["id"])] == ["not_generated"]


def test_expired_trash_never_shows_and_cannot_be_restored(api: Any, stack: Any) -> None:
    from datetime import UTC, datetime, timedelta

    from chalicelib.store.records import ConversationRecord as R

    data = new_sample(api, 4, 0)
    cid = data["planned"][0]
    assert api.delete(f"/api/conversations/{cid}")[0] == 204
    assert ids(trash(api, data["id"])) == [cid]
    # Past its purge time, DynamoDB's TTL may still take a while to remove it.
    R(stack.demo_users[0].tenant_id, cid).update(
        actions=[R.purge_at.set(datetime.now(UTC) - timedelta(minutes=1))]
    )
    assert trash(api, data["id"]) == []
    status, body, _ = api.post(f"/api/conversations/{cid}/restore")
    assert_error(status, body, 404, "not_found")
    assert cid not in ids(list_all(api, data["id"]))


def test_trash_ttl_is_on_the_tables_of_a_conversation() -> None:
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    template = json.loads((root / "infra" / "template.json").read_text())["Resources"]
    for logical in ("ConversationsTable", "TurnsTable", "ConversationVersionsTable"):
        spec = template[logical]["Properties"]["TimeToLiveSpecification"]
        assert spec == {"AttributeName": "purge_at", "Enabled": True}, logical


# ---------------------------------------------------------------------------- versions


def regenerate(api: Any, cid: str) -> None:
    status, body, _ = api.post(
        "/api/conversations/bulk-action", {"action": "regenerate", "ids": [cid], "confirm": True}
    )
    assert status == 200 and body["succeeded"] == [cid], body
    job = wait_job(api, body["job_id"])
    assert job["status"] == "completed" and job["completed"] == 1, job


def test_regenerating_keeps_every_earlier_version(api: Any) -> None:
    data = new_sample(api, 6, 1)
    cid = data["generated"][0]
    first = detail(api, cid)
    assert first["versions"]["count"] == 1 and first["versions"]["earlier"] == []
    assert first["generation_number"] == 1
    patch(api, cid, status="approved")
    regenerate(api, cid)
    second = detail(api, cid)
    assert second["generation_number"] == 2 and second["status"] == "generated"
    regenerate(api, cid)
    third = detail(api, cid)
    assert third["versions"]["count"] == 3 and third["versions"]["current"] == 3
    assert [v["number"] for v in third["versions"]["earlier"]] == [2, 1]
    assert "turns" not in third["versions"]["earlier"][0]

    status, versions, _ = api.get(f"/api/conversations/{cid}/versions")
    assert status == 200, versions
    assert versions["total"] == 3
    assert [(v["number"], v["current"]) for v in versions["items"]] == [
        (3, True),
        (2, False),
        (1, False),
    ]
    for state, version in zip((third, second, first), versions["items"], strict=True):
        assert version["turns"] == state["turns"]
        for name in (
            "quality_score",
            "model",
            "template_id",
            "template_version",
            "actual_cost_usd",
            "generated_at",
            "title",
            "turn_count",
            "input_tokens",
            "output_tokens",
        ):
            assert version[name] == state[name], (name, version["number"])
    assert versions["items"][0]["superseded_at"] is None
    assert versions["items"][1]["superseded_at"] and versions["items"][2]["superseded_at"]
    status, one, _ = api.get(f"/api/conversations/{cid}/versions/1")
    assert status == 200 and one["turns"] == first["turns"] and one["current"] is False
    for bad, code in (("9", 404), ("0", 400), ("x", 400)):
        status, body, _ = api.get(f"/api/conversations/{cid}/versions/{bad}")
        assert_error(status, body, code)


def test_a_refused_commit_writes_no_version(api: Any, stack: Any) -> None:
    """The version is written in the commit's transaction: when the commit is refused
    (the conversation is no longer being generated by that job), nothing is written."""
    from chalicelib.bootstrap import get_container
    from chalicelib.domain.models import Turn

    data = new_sample(api, 4, 1)
    cid = data["generated"][0]
    repo = get_container().conversation_repo
    tenant = stack.demo_users[0].tenant_id
    current = repo.get(tenant, cid)
    stale = current.model_copy(update={"title": "late retry", "job_id": "job_other"})
    turns = [
        Turn(turn_number=1, role="user", content="hi"),
        Turn(turn_number=2, role="assistant", content="yo"),
    ]
    assert repo.commit_generation(stale, turns, None) is False
    assert repo.versions(tenant, cid) == []
    assert repo.get_turns(tenant, cid) == [
        Turn.model_validate(t) for t in detail(api, cid)["turns"]
    ]
    assert detail(api, cid)["generation_number"] == 1


def test_trash_and_restore_carry_the_versions(api: Any, stack: Any) -> None:
    from chalicelib.store.records import ConversationVersionRecord, TurnsRecord, tenant_key

    data = new_sample(api, 4, 1)
    cid = data["generated"][0]
    regenerate(api, cid)
    tenant = stack.demo_users[0].tenant_id
    assert api.delete(f"/api/conversations/{cid}")[0] == 204
    version = ConversationVersionRecord.get(tenant_key(tenant, cid), 1, consistent_read=True)
    turns = TurnsRecord.get(tenant, cid, consistent_read=True)
    assert version.purge_at is not None and turns.purge_at is not None
    assert api.post(f"/api/conversations/{cid}/restore")[0] == 200
    version = ConversationVersionRecord.get(tenant_key(tenant, cid), 1, consistent_read=True)
    turns = TurnsRecord.get(tenant, cid, consistent_read=True)
    assert version.purge_at is None and turns.purge_at is None
    assert api.get(f"/api/conversations/{cid}/versions")[1]["total"] == 2


# ---------------------------------------------------------------------------- datasets


def running_job(stack: Any, dsid: str) -> Any:
    """A job that counts as active (as a running generation would)."""
    from chalicelib.bootstrap import get_container
    from chalicelib.domain.models import Job, JobStatus

    job = Job(
        tenant_id=stack.demo_users[0].tenant_id,
        dataset_id=dsid,
        kind="batch",
        status=JobStatus.RUNNING,
    )
    get_container().job_repo.create(job)
    return job


def finish(stack: Any, job: Any) -> None:
    from chalicelib.bootstrap import get_container
    from chalicelib.domain.models import JobStatus

    get_container().job_repo.set_status(job.tenant_id, job.job_id, JobStatus.COMPLETED)


def test_an_archived_dataset_is_read_only_listed_on_request_and_exportable(
    api: Any, stack: Any
) -> None:
    data = new_sample(api, 8, 2)
    dsid = data["id"]
    g, planned = data["generated"], data["planned"]
    patch(api, g[0], status="approved")
    job = running_job(stack, dsid)
    status, body, _ = api.post(f"/api/datasets/{dsid}/archive")
    assert_error(status, body, 409, "conflict")
    assert body["error"]["details"]["active_jobs"] == [job.job_id]
    finish(stack, job)

    status, archived, _ = api.post(f"/api/datasets/{dsid}/archive")
    assert status == 200 and archived["archived"] is True and archived["archived_at"], archived
    assert archived["archived_by"]
    assert dsid not in [d["dataset_id"] for d in api.get("/api/datasets")[1]["items"]]
    listed = api.get("/api/datasets?include_archived=true")[1]["items"]
    assert [d["archived"] for d in listed if d["dataset_id"] == dsid] == [True]
    assert api.get(f"/api/datasets/{dsid}")[1]["archived"] is True

    version = detail(api, g[1])["version"]
    refused = [
        api.patch(f"/api/datasets/{dsid}", {"name": "renamed"}),
        api.put(f"/api/datasets/{dsid}/taxonomy", {"personas": ["x"]}),
        api.post(
            f"/api/datasets/{dsid}/chunks", [{"chunk_id": "c", "document_id": "d", "text": "t"}]
        ),
        api.post(f"/api/datasets/{dsid}/plan", {"count": 3, "replace": True}),
        api.post(f"/api/datasets/{dsid}/fill-gaps"),
        api.post("/api/conversations/generate", {"conversation_id": planned[0], "confirm": True}),
        api.post("/api/conversations/generate-all", {"dataset_id": dsid, "confirm": True}),
        api.patch(f"/api/conversations/{g[1]}", {"status": "approved", "version": version}),
        api.delete(f"/api/conversations/{g[1]}"),
    ]
    for status, body, _ in refused:
        assert_error(status, body, 409, "dataset_archived")
    status, body, _ = api.post(
        "/api/conversations/bulk-action", {"action": "approve", "ids": [g[1]]}
    )
    assert status == 200 and body["succeeded"] == []
    assert body["failed"][0]["error"]["code"] == "dataset_archived"
    assert detail(api, g[1])["version"] == version and detail(api, g[1])["status"] == "generated"
    # Reading, coverage and exports stay open.
    assert len(list_all(api, dsid)) == 8
    assert coverage(api, dsid)["total"] == 8
    assert export_count(api, dsid) == 1

    status, body, _ = api.post(f"/api/datasets/{dsid}/unarchive")
    assert status == 200 and body["archived"] is False and body["archived_at"] is None
    assert patch(api, g[1], status="approved")["status"] == "approved"
    actions = [a["action"] for a in audit_of(api, dsid)]
    assert actions[-2:] == ["dataset.archive", "dataset.unarchive"]


def test_deleting_a_dataset_removes_what_it_owns_and_keeps_exports(api: Any, stack: Any) -> None:
    import urllib.request

    from chalicelib.store.records import (
        ChunkRecord,
        ConversationRecord,
        ConversationVersionRecord,
        GenerationLogRecord,
        JobItemRecord,
        JobRecord,
        TurnsRecord,
        tenant_key,
    )

    tenant = stack.demo_users[0].tenant_id
    data = new_sample(api, 8, 2)
    dsid = data["id"]
    g = data["generated"]
    regenerate(api, g[1])
    patch(api, g[0], status="approved")
    assert api.delete(f"/api/conversations/{data['planned'][0]}")[0] == 204  # in the trash
    status, export, _ = api.post(
        "/api/export/conversations", {"format": "openai", "filters": {"dataset_id": dsid}}
    )
    assert status == 201, export
    jobs = api.get(f"/api/jobs?dataset_id={dsid}")[1]["items"]
    assert jobs
    job = running_job(stack, dsid)
    status, body, _ = api.delete(f"/api/datasets/{dsid}")
    assert_error(status, body, 409, "conflict")
    assert api.get(f"/api/datasets/{dsid}")[0] == 200
    finish(stack, job)

    status, result, _ = api.delete(f"/api/datasets/{dsid}")
    assert status == 200, result
    assert result["deleted"] is True and result["status"] == "deleted"
    assert result["removed"]["conversations"] == 8  # the trashed one too
    assert result["removed"]["turns"] == 2 and result["removed"]["versions"] == 1
    assert result["removed"]["jobs"] == len(jobs) + 1
    assert result["removed"]["chunks"] > 0 and result["removed"]["generation_logs"] >= 3
    for path in (
        f"/api/datasets/{dsid}",
        f"/api/conversations?dataset_id={dsid}",
        f"/api/conversations/{g[0]}",
        f"/api/conversations/trash?dataset_id={dsid}",
        f"/api/jobs/{jobs[0]['job_id']}",
        f"/api/datasets/{dsid}/chunks",
        f"/api/conversations/coverage-analysis?dataset_id={dsid}",
    ):
        status, body, _ = api.get(path)
        assert_error(status, body, 404, "not_found")
    assert dsid not in [
        d["dataset_id"] for d in api.get("/api/datasets?include_archived=true")[1]["items"]
    ]
    status, body, _ = api.delete(f"/api/datasets/{dsid}")
    assert_error(status, body, 404, "not_found")
    # Nothing of it is left in the tables.
    key = tenant_key(tenant, dsid)
    assert list(ConversationRecord.by_dataset.query(key)) == []
    assert list(ChunkRecord.query(key)) == []
    assert list(JobRecord.by_dataset.query(key)) == []
    for cid in [*g, *data["planned"]]:
        assert list(TurnsRecord.query(tenant, TurnsRecord.conversation_id == cid)) == []
        assert list(GenerationLogRecord.query(tenant_key(tenant, cid))) == []
        assert list(ConversationVersionRecord.query(tenant_key(tenant, cid))) == []
    for j in jobs:
        assert list(JobItemRecord.query(tenant_key(tenant, j["job_id"]))) == []
    # The export made from it is kept, and still downloads.
    status, kept, _ = api.get(f"/api/exports/{export['export_id']}")
    assert status == 200 and kept["status"] == "ready" and kept["download_url"], kept
    with urllib.request.urlopen(kept["download_url"], timeout=30) as resp:
        assert resp.status == 200 and resp.read().strip()
    actions = [a["action"] for a in audit_of(api, dsid)]
    assert actions[-2:] == ["dataset.delete", "dataset.purge"]
    assert audit_of(api, dsid)[-1]["after"]["deleted"] == result["removed"]


def test_a_delete_that_runs_out_of_time_is_carried_on_by_the_next(
    api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.bootstrap import get_container
    from chalicelib.store.repositories import DynamoDatasetPurger

    data = new_sample(api, 12, 0)
    dsid = data["id"]
    monkeypatch.setattr(get_container().datasets, "delete_budget_seconds", 0.0)
    monkeypatch.setattr(DynamoDatasetPurger, "PAGE", 5)
    status, first, _ = api.delete(f"/api/datasets/{dsid}")
    assert status == 202, first
    assert first["deleted"] is False and first["status"] == "deleting"
    assert first["removed"]["conversations"] == 5
    # Hidden at once, though not yet purged.
    assert_error(*api.get(f"/api/datasets/{dsid}")[:2], 404, "not_found")
    assert_error(*api.get(f"/api/conversations?dataset_id={dsid}")[:2], 404, "not_found")
    removed = first["removed"]["conversations"]
    for _ in range(5):
        status, more, _ = api.delete(f"/api/datasets/{dsid}")
        assert status in (200, 202), more
        removed += more["removed"]["conversations"]
        if more["deleted"]:
            break
    assert status == 200 and removed == 12
    assert [a["action"] for a in audit_of(api, dsid)].count("dataset.delete") == 1
