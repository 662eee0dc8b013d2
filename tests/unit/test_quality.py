"""Quality package: validators, scoring caps and flags, duplicate detection, stats."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.models import (
    FLAG_THRESHOLD,
    Conversation,
    ConversationStatus,
    QualityReport,
    Taxonomy,
    TaxonomyEntry,
    Tier,
    Turn,
)
from chalicelib.quality import duplicates as d
from chalicelib.quality import validators as v
from chalicelib.quality.scoring import (
    CAPS,
    CHECK_WEIGHTS,
    CONTENT_CHECKS,
    score_conversation,
    weighted_score,
)
from chalicelib.quality.stats import bucket_of, quality_stats
from devstack import synthetic as syn

ROOT = Path(__file__).resolve().parents[2]


TAXONOMY = Taxonomy(
    personas=[TaxonomyEntry(name="Anxious Investor", description="Worried saver with a 401k")],
    emotions=[TaxonomyEntry(name="Fear", description="Scared of losing money")],
    topics=[
        TaxonomyEntry(
            name="Retirement Planning",
            description="401k contributions, IRA rollovers, Social Security timing",
        )
    ],
)


def conv(**kw: object) -> Conversation:
    base: dict[str, object] = {
        "tenant_id": "t1",
        "dataset_id": "ds1",
        "persona": "Anxious Investor",
        "emotion": "Fear",
        "topic": "Retirement Planning",
        "intent": "get_advice",
        "tone": "warm",
        "tier": Tier.TEMPLATE,
    }
    base.update(kw)
    return Conversation.model_validate(base)


def make_turns(n: int = 12) -> list[Turn]:
    """``n`` well-formed turns, an anxious investor asking about retirement (synthetic,
    deterministic; odd ``n`` ends on a user turn)."""
    persona, emotion, topic = syn.PERSONAS[0], syn.EMOTIONS[0], syn.TOPICS[0]
    assert (persona.name, emotion.name, topic.name) == (
        "Anxious Investor",
        "Fear",
        "Retirement Planning",
    )
    turns = syn.generate_turns(random.Random(n), persona, emotion, topic, n + n % 2)
    return turns[:n]


def raw_turn(**fields: Any) -> Turn:
    """A turn that skipped validation, as legacy rows or model_construct() produce."""
    return Turn.model_construct(**fields)


def set_content(turns: list[Turn], number: int, content: str) -> list[Turn]:
    return [
        t.model_copy(update={"content": content}) if t.turn_number == number else t for t in turns
    ]


# --------------------------------------------------------------------------- turn count


@pytest.mark.parametrize(
    ("n", "passed", "score"),
    [
        (12, True, 1.0),
        (8, True, 1.0),
        (16, True, 1.0),
        (6, True, 0.75),
        (4, True, 0.5),
        (3, False, 0.0),
        (0, False, 0.0),
        (23, True, 0.5),
        (30, False, 0.0),
    ],
)
def test_turn_count(n: int, passed: bool, score: float) -> None:
    check = v.check_turn_count(make_turns(n))
    assert (check.passed, check.score) == (passed, score)
    assert check.name == "turn_count"


def test_turn_count_decreases_outside_optimal() -> None:
    scores = [v.turn_count_score(n) for n in range(4, 31)]
    inside = [v.turn_count_score(n) for n in range(8, 17)]
    assert all(s == 1.0 for s in inside)
    assert scores[:5] == sorted(scores[:5])  # rising towards 8
    assert scores[12:] == sorted(scores[12:], reverse=True)  # falling after 16


# --------------------------------------------------------------------------- alternation


def test_alternation_passes_and_ignores_storage_order() -> None:
    turns = make_turns(10)
    assert v.check_alternation(list(reversed(turns))).passed


@pytest.mark.parametrize(
    ("kind", "needle"),
    [
        ("double_user", "same role twice"),
        ("starts_assistant", "starts with assistant"),
        ("ends_user", "ends with user"),
        ("numbering_gap", "not contiguous"),
    ],
)
def test_alternation_failures(kind: str, needle: str) -> None:
    turns = syn.break_alternation(make_turns(12), random.Random(1), kind)
    check = v.check_alternation(turns)
    assert not check.passed
    assert needle in check.detail
    assert check.score <= 0.5


def test_alternation_no_turns() -> None:
    assert not v.check_alternation([]).passed


# --------------------------------------------------------------------------- length


def test_length_within_range() -> None:
    check = v.check_length(make_turns(8))
    assert check.passed and check.score == 1.0


def test_length_out_of_range_ratio() -> None:
    turns = set_content(make_turns(8), 1, "Hi.")  # user, 1 word: well below 5
    check = v.check_length(turns)
    assert check.passed  # 1/8 turns is tolerated
    assert check.score == pytest.approx(1 - 1 / 8)
    assert "turn 1 (user) 1w" in check.detail
    long = " ".join(["word"] * 600)
    for n in (2, 4, 6):
        turns = set_content(turns, n, long)  # assistant > 350 words
    check = v.check_length(turns)
    assert not check.passed and check.score == pytest.approx(1 - 4 / 8)


def test_length_slightly_out_counts_half() -> None:
    turns = set_content(make_turns(8), 2, " ".join(["word"] * 17))  # assistant min 20
    assert v.check_length(turns).score == pytest.approx(1 - 0.5 / 8)


# --------------------------------------------------------------------------- empty / repeated


def test_empty_turns() -> None:
    assert v.check_empty_turns(make_turns(8)).passed
    check = v.check_empty_turns(set_content(make_turns(8), 4, "  \n\t"))
    assert not check.passed and "[4]" in check.detail and check.score < 1


def test_repeated_turns_identical_and_near_identical() -> None:
    assert v.check_repeated_turns(make_turns(12)).passed
    turns = make_turns(12)
    dup = set_content(turns, 6, turns[1].content)  # assistant 6 == assistant 2
    check = v.check_repeated_turns(dup)
    assert not check.passed and "6=2" in check.detail
    first, rest = turns[1].content.split(" ", 1)
    near = set_content(turns, 6, f"{first}{first} {rest}")  # one word differs
    check = v.check_repeated_turns(near)
    assert not check.passed and "6~2" in check.detail


def test_repeated_turns_short_turns_need_exact_match() -> None:
    turns = set_content(set_content(make_turns(8), 3, "ok thanks a lot"), 5, "ok thanks so much")
    assert v.check_repeated_turns(turns).passed
    turns = set_content(turns, 5, "OK, thanks a lot!")
    assert not v.check_repeated_turns(turns).passed


# --------------------------------------------------------------------------- structure


def test_structure_clean() -> None:
    check = v.check_structure(make_turns(8))
    assert check.passed and check.score == 1.0


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"role": "assistant", "content": "hi"}', "JSON artefact"),
        ('Sure. "turns": [1, 2]', "JSON artefact"),
        ("```json\nhello there\n```", "markdown fence"),
        ("Assistant: Here is the plan for your savings account.", "role label"),
        ("<|im_start|>assistant here is the plan", "chat-template token"),
    ],
)
def test_structure_artefacts(content: str, problem: str) -> None:
    check = v.check_structure(set_content(make_turns(8), 2, content))
    assert not check.passed
    assert problem in check.detail
    assert check.score == pytest.approx(1 - v.STRUCTURE_PENALTY)


def test_structure_invalid_role_and_content() -> None:
    turns = make_turns(8)
    turns[2] = raw_turn(turn_number=3, role="system", content="hello there")
    turns[3] = raw_turn(turn_number=4, role="assistant", content=None)
    check = v.check_structure(turns)
    assert "invalid role 'system'" in check.detail and "not text" in check.detail
    assert v.invalid_turns(turns) == [3, 4]


# --------------------------------------------------------------------------- adherence


def test_topic_adherence_uses_name_and_description() -> None:
    turns = [
        Turn(turn_number=1, role="user", content="Should I move my old 401k into an IRA?"),
        Turn(turn_number=2, role="assistant", content="A rollover keeps the money invested."),
    ]
    check = v.check_topic_adherence(conv(), turns, TAXONOMY)
    assert check.passed and check.score == 1.0
    assert "401k" in check.detail and "ira" in check.detail and "rollov" in check.detail
    # the same words without the description: only the name's keywords count, none match
    assert not v.check_topic_adherence(conv(), turns, None).passed


def test_topic_adherence_off_topic() -> None:
    turns = [
        Turn(turn_number=1, role="user", content="What is a good recipe for banana bread?"),
        Turn(turn_number=2, role="assistant", content="Mash three ripe bananas with butter."),
    ]
    check = v.check_topic_adherence(conv(), turns, TAXONOMY)
    assert not check.passed and check.score == 0.0
    assert "0/" in check.detail


def test_topic_adherence_without_taxonomy_uses_name() -> None:
    check = v.check_topic_adherence(conv(topic="Retirement Planning"), make_turns(8), None)
    assert check.passed and "retir" in check.detail


def test_emotion_adherence() -> None:
    check = v.check_emotion_adherence(conv(emotion="Anxiety"), make_turns(8), None)
    assert check.passed and check.score == 1.0
    turns = [
        Turn(turn_number=1, role="user", content="I'm terrified of running out of money."),
        Turn(turn_number=2, role="assistant", content="Worried? Let's look at your numbers."),
        Turn(turn_number=3, role="user", content="My pension starts at 62."),
        Turn(turn_number=4, role="assistant", content="Then we plan around that date."),
    ]
    check = v.check_emotion_adherence(conv(emotion="Fear"), turns, TAXONOMY)
    assert check.passed and "terrified" in check.detail and "1/2 user turns" in check.detail
    calm = turns[1:2] + turns[2:]  # assistant fear words do not count
    check = v.check_emotion_adherence(conv(emotion="Fear"), calm, TAXONOMY)
    assert not check.passed and check.score == 0.0


def test_emotion_description_adds_signals_and_neutral_is_skipped() -> None:
    signals, ok = v.emotion_signals("Pressure", "feels overwhelmed and behind")
    assert ok and "overwhelmed" in signals and "urgent" in signals
    check = v.check_emotion_adherence(conv(emotion="Neutral"), make_turns(8), None)
    assert check.weight == 0.0 and check.passed


def test_persona_adherence() -> None:
    check = v.check_persona_adherence(conv(), make_turns(8), TAXONOMY)
    assert check.passed and check.score == 1.0
    check = v.check_persona_adherence(conv(persona="Marathon Runner"), make_turns(8), None)
    assert not check.passed and check.score == 0.0


def test_stem_matches_word_forms() -> None:
    assert v.stem("investing") == v.stem("investor") == v.stem("investments")
    assert v.stem("planning") == v.stem("plans") == v.stem("planned")
    assert v.stem("retirement") == v.stem("retiring")


# --------------------------------------------------------------------------- scoring


def test_well_formed_conversation_scores_high() -> None:
    report = score_conversation(conv(), make_turns(12), TAXONOMY)
    assert report.score >= 8 and not report.flagged and report.duplicate_of is None
    shape = [c for c in report.checks if c.kind == "structure"]
    assert {c.name for c in shape} == set(CHECK_WEIGHTS)
    assert all(c.weight == CHECK_WEIGHTS[c.name] for c in shape)
    content = [c for c in report.checks if c.kind == "content"]
    assert len(content) == len(CONTENT_CHECKS)
    assert all(c.passed for c in content), [c.reasons for c in content if not c.passed]
    assert report.reasons == [] and report.flag_turns == []


def test_synthetic_clean_conversations_score_high() -> None:
    taxonomy = syn.synthetic_taxonomy()
    for c, turns in syn.synthetic_dataset(20, seed=3):
        report = score_conversation(c, turns, taxonomy)
        assert report.score >= 8, [(k.name, k.detail) for k in report.checks if not k.passed]


def test_weighted_score_math() -> None:
    report = score_conversation(conv(), make_turns(12), TAXONOMY)
    checks = [c for c in report.checks if c.weight]
    expected = 1 + 9 * sum(c.weight * c.score for c in checks) / sum(c.weight for c in checks)
    assert weighted_score(checks) == pytest.approx(expected)
    assert weighted_score([]) == 1.0


@pytest.mark.parametrize(
    ("turns", "cap"),
    [
        (make_turns(2), CAPS["too_few_turns"]),
        (syn.break_alternation(make_turns(12), random.Random(0), "double_user"), 4.0),
        (set_content(make_turns(12), 5, ""), CAPS["empty_turns"]),
    ],
)
def test_caps_flag(turns: list[Turn], cap: float) -> None:
    report = score_conversation(conv(), turns, TAXONOMY)
    assert report.score <= cap
    assert report.flagged and report.score < FLAG_THRESHOLD
    assert any("caps score at" in c.detail for c in report.checks)


def test_no_turns_scores_one() -> None:
    report = score_conversation(conv(), [], TAXONOMY)
    assert report.score == 1.0 and report.flagged


def test_invalid_structure_caps() -> None:
    turns = make_turns(12)
    turns[3] = raw_turn(turn_number=4, role="assistant", content=None)
    assert score_conversation(conv(), turns).score <= CAPS["invalid_structure"]


def test_near_duplicate_caps_and_sets_duplicate_of() -> None:
    report = score_conversation(conv(), make_turns(12), TAXONOMY, duplicate_of=("conv_a", 0.93))
    assert report.duplicate_of == "conv_a"
    assert report.score <= CAPS["near_duplicate"] and report.flagged
    dup = next(c for c in report.checks if c.name == "near_duplicate")
    assert not dup.passed and dup.score == pytest.approx(0.07) and "conv_a" in dup.detail


def test_an_ai_self_reference_flags_with_its_turn() -> None:
    turns = make_turns(12)
    turns = set_content(turns, 4, "As an AI language model, " + turns[3].content)
    report = score_conversation(conv(), turns, TAXONOMY)
    assert report.flagged and report.score <= 3.0
    assert report.flag_turns == [4]
    assert report.reasons[0].startswith("turn 4: the assistant refuses or speaks as an AI model")


def test_soft_problems_lower_but_do_not_flag() -> None:
    turns = make_turns(12)
    # an assistant turn that reuses half of an earlier one: doubtful, not a defect
    earlier = turns[1].content
    turns = set_content(turns, 6, earlier.split(".")[0] + ". " + turns[5].content)
    report = score_conversation(conv(), turns, TAXONOMY)
    clean = score_conversation(conv(), make_turns(12), TAXONOMY)
    assert FLAG_THRESHOLD <= report.score <= clean.score


# --------------------------------------------------------------------------- duplicates


def _text(seed: int, n_turns: int = 12) -> str:
    _, turns = syn.synthetic_conversation(random.Random(seed), seed, n_turns=n_turns)
    return d.conversation_text(turns)


def _shingles(text: str) -> set[tuple[str, ...]]:
    w = d.tokens(text)
    return set(zip(w, w[1:], w[2:], strict=False))


def test_signature_identical_and_deterministic() -> None:
    text = _text(1)
    a, b = d.minhash_signature(text), d.minhash_signature(text)
    assert len(a) == d.NUM_PERM and d.estimate_similarity(a, b) == 1.0
    assert d.minhash_signature("") == () and d.estimate_similarity((), a) == 0.0
    # a fresh interpreter with another string-hash seed computes the same signature
    code = (
        "from chalicelib.quality.duplicates import minhash_signature as m;"
        "print(hash(m('the quick brown fox jumps over the lazy dog')))"
    )
    out = {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(out) == 1


def test_estimate_tracks_exact_jaccard() -> None:
    rng = random.Random(5)
    _, turns = syn.synthetic_conversation(rng, 0, n_turns=12)
    base = d.conversation_text(turns)
    for kind in ("swaps", "sentence", "all"):
        edited = d.conversation_text(syn.light_edit_copy(turns, rng, "Retirement Planning", kind))
        sa, sb = _shingles(base), _shingles(edited)
        exact = len(sa & sb) / len(sa | sb)
        est = d.estimate_similarity(d.minhash_signature(base), d.minhash_signature(edited))
        assert abs(est - exact) < 0.12, (kind, est, exact)


def test_index_finds_light_edit_copy_not_distinct() -> None:
    rng = random.Random(11)
    c, turns = syn.synthetic_conversation(rng, 0)
    index = d.NearDuplicateIndex()
    index.add("orig", d.conversation_text(turns))
    for seed in range(1, 6):
        index.add(f"other{seed}", _text(100 + seed))
    copy = syn.light_edit_copy(turns, rng, c.topic, "all")
    hits = index.query(d.conversation_text(copy))
    assert [h[0] for h in hits] == ["orig"] and hits[0][1] >= d.NEAR_DUPLICATE_THRESHOLD
    assert index.query(_text(999)) == []
    assert len(index) == 6 and "orig" in index
    index.remove("orig")
    assert index.query(d.conversation_text(copy)) == [] and len(index) == 5


def test_index_query_is_exact_wrt_estimate() -> None:
    """Banding never drops a pair the estimator accepts (band_layout's guarantee)."""
    rng = random.Random(3)
    base = [syn.synthetic_conversation(rng, i, n_turns=8)[1] for i in range(6)]
    texts = {}
    for i, turns in enumerate(base):
        texts[f"b{i}"] = d.conversation_text(turns)
        for k in range(4):  # copies drifting further and further away
            edited = turns
            for _ in range(k + 1):
                edited = syn.light_edit_copy(edited, rng, "Tax Planning", "all")
            texts[f"b{i}e{k}"] = d.conversation_text(edited)
    sigs = {key: d.minhash_signature(t) for key, t in texts.items()}
    for threshold in (0.5, 0.6, 0.8, 0.9):
        index = d.NearDuplicateIndex(threshold)
        for key, s in sigs.items():
            index.add_signature(key, s)
        for s in sigs.values():
            brute = {o for o, so in sigs.items() if d.estimate_similarity(s, so) >= threshold}
            assert {h[0] for h in index.query_signature(s)} == brute


def test_band_layout_guarantees_a_shared_band() -> None:
    for t in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95):
        bands, rows = d.band_layout(t)
        assert bands * rows == d.NUM_PERM
        assert d.min_band_hits(t, bands) >= 1
    assert d.band_layout(0.8) == (32, 4)
    with pytest.raises(ValueError):
        d.NearDuplicateIndex(0)


def test_find_near_duplicates_marks_later_one() -> None:
    rng = random.Random(21)
    c, turns = syn.synthetic_conversation(rng, 0)
    copy = d.conversation_text(syn.light_edit_copy(turns, rng, c.topic, "swaps"))
    items = [("a", d.conversation_text(turns)), ("b", _text(50)), ("c", copy), ("e", "")]
    found = d.find_near_duplicates(items)
    assert list(found) == ["c"] and found["c"][0] == "a" and found["c"][1] >= 0.8


def test_cell_duplicates_use_lower_threshold_within_cell_only() -> None:
    rng = random.Random(8)
    _, turns = syn.synthetic_conversation(rng, 0, n_turns=12)
    # a heavier rewrite: edit rounds until it falls below the dataset-wide bar
    a, rewrite, sim = d.conversation_text(turns), turns, 1.0
    while sim >= d.NEAR_DUPLICATE_THRESHOLD:
        rewrite = syn.light_edit_copy(rewrite, rng, "Tax Planning", "all")
        b = d.conversation_text(rewrite)
        sim = d.estimate_similarity(d.minhash_signature(a), d.minhash_signature(b))
    assert d.CELL_DUPLICATE_THRESHOLD <= sim < d.NEAR_DUPLICATE_THRESHOLD
    cell, other = ("P", "E", "T"), ("P", "E", "X")
    assert d.find_near_duplicates([("x", a), ("y", b)]) == {}
    assert d.find_cell_duplicates([("x", cell, a), ("y", other, b)]) == {}
    found = d.find_cell_duplicates([("x", cell, a), ("y", cell, b)])
    assert found == {"y": ("x", pytest.approx(sim, abs=1e-4))}
    assert d.find_dataset_duplicates([("x", cell, a), ("y", cell, b)])["y"][0] == "x"


def test_distinct_synthetic_conversations_are_not_duplicates() -> None:
    rows = [
        (c.conversation_id, d.cell_of(c), d.conversation_text(t))
        for c, t in syn.synthetic_dataset(60, seed=9)
    ]
    assert d.find_dataset_duplicates(rows) == {}


# --------------------------------------------------------------------------- stats


def _scored(score: float | None, status: ConversationStatus, **kw: object) -> Conversation:
    return conv(quality_score=score, status=status, **kw)


def test_quality_stats_math() -> None:
    a, r, g = ConversationStatus.APPROVED, ConversationStatus.REJECTED, ConversationStatus.GENERATED
    convs = [
        _scored(9.5, a, tier=Tier.TEMPLATE, template_id="tpl1", template_version=1),
        _scored(8.0, a, tier=Tier.TEMPLATE, template_id="tpl1", template_version=2),
        _scored(7.2, r, tier=Tier.SCENARIO, template_id="tpl1", template_version=2),
        _scored(5.9, r, tier=Tier.SCENARIO, persona="Busy Parent"),
        _scored(4.0, g, tier=Tier.EDGE_CASE, persona="Busy Parent"),
        _scored(10.0, a, tier=Tier.EDGE_CASE, persona="Busy Parent"),
        _scored(None, ConversationStatus.NOT_GENERATED, tier=Tier.EDGE_CASE),
    ]
    convs.append(
        conv(
            status=g,
            quality=QualityReport(score=4.5, flagged=True, duplicate_of="x"),
        )
    )
    s = quality_stats(convs)
    scores = [9.5, 8.0, 7.2, 5.9, 4.0, 10.0, 4.5]
    assert s["count"] == 8 and s["scored"] == 7
    assert s["mean"] == pytest.approx(round(sum(scores) / 7, 2))
    assert s["median"] == 7.2
    assert s["share_high_quality"] == pytest.approx(round(3 / 7, 4))
    assert s["flagged"] == 3  # 5.9, 4.0, 4.5
    assert s["duplicates"] == 1
    assert s["histogram"] == {
        "1": 0,
        "2": 0,
        "3": 0,
        "4": 2,
        "5": 1,
        "6": 0,
        "7": 1,
        "8": 1,
        "9": 1,
        "10": 1,
    }
    assert sum(s["histogram"].values()) == s["scored"]
    assert s["by_status"]["approved"] == 3 and s["by_status"]["rejected"] == 2
    assert s["by_status"]["generated"] == 2 and s["by_status"]["failed"] == 0
    assert s["approval_rate"] == pytest.approx(3 / 5)
    tiers = s["approval_by_tier"]
    assert tiers["template"]["approval_rate"] == 1.0
    assert tiers["scenario"]["approval_rate"] == 0.0
    assert tiers["edge_case"] == {"total": 3, "approved": 1, "rejected": 0, "approval_rate": 1.0}
    templates = s["approval_by_template"]
    assert templates["tpl1@v1"]["approval_rate"] == 1.0
    assert templates["tpl1@v2"]["approval_rate"] == 0.5
    assert set(templates) == {"tpl1@v1", "tpl1@v2"}
    personas = s["approval_by_persona"]
    assert personas["Busy Parent"]["approval_rate"] == 0.5
    assert personas["Anxious Investor"]["approval_rate"] == pytest.approx(round(2 / 3, 4))


def test_quality_stats_empty_and_buckets() -> None:
    s = quality_stats([])
    assert s["count"] == 0 and s["mean"] is None and s["approval_rate"] is None
    assert set(s["approval_by_tier"]) == {"template", "scenario", "edge_case"}
    assert [bucket_of(x) for x in (1.0, 1.99, 5.99, 6.0, 9.99, 10.0)] == [1, 1, 5, 6, 9, 10]
