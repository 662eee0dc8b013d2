"""The learned word models: training, the shipped file, and the defect checks that read
them (a role flip, a refusal and a dropped close worded as no phrase list words them)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from chalicelib.quality import defects as d
from chalicelib.quality import style_model as sm
from tests.unit.test_defects import CLEAN, run, turns_of, with_turn

ROOT = Path(__file__).resolve().parents[2]


def _trainer() -> ModuleType:
    """bench/style_models.py, the script that writes the shipped file."""
    path = ROOT / "bench" / "style_models.py"
    spec = importlib.util.spec_from_file_location("bench_style_models", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_features_are_words_and_word_pairs_without_figures() -> None:
    assert sm.features("We can book you in at 9:30, can't we?") == [
        "we",
        "can",
        "book",
        "you",
        "in",
        "at",
        "can't",
        "we",
        "?",
        "we can",
        "can book",
        "book you",
        "you in",
        "in at",
        "at can't",
        "can't we",
        "we ?",
    ]


def test_training_learns_each_labels_words_and_drops_words_of_too_few_texts() -> None:
    positive = [f"we can offer you a slot on day {i}" for i in range(6)] + ["zebra zebra " * 5]
    negative = [f"my knee hurts and i am worried about day {i}" for i in range(6)]
    model = sm.train("t", "business", "customer", positive, negative)
    assert model.weights["we can"] > 0 > model.weights["my knee"]
    # five occurrences, all in one text: that text's subject, not the label's way of writing
    assert "zebra" not in model.weights
    assert model.lean("we can offer you a slot") > 0 > model.lean("my knee hurts")
    assert model.evidence("we can offer you a slot")[0] in model.weights


def test_a_short_text_leans_less_than_a_long_one_of_the_same_words() -> None:
    model = sm.train("t", "a", "b", ["we can help you"] * 6, ["i need help"] * 6)
    assert 0 < model.lean("we can") < model.lean("we can we can we can we can we can")


def test_the_file_round_trips_and_refuses_another_format() -> None:
    model = sm.train("speaker", "assistant", "user", ["we can"] * 6, ["i am"] * 6)
    parsed = sm.parse(sm.dump([model], {"trained_on": []}))
    assert parsed["speaker"] == model
    body = json.loads(sm.dump([model], {}))
    body["format"] = 99
    with pytest.raises(ValueError, match="format 99"):
        sm.parse(json.dumps(body))


def test_using_swaps_the_tables_for_a_while() -> None:
    shipped = sm.model("speaker")
    other = sm.train("speaker", "assistant", "user", ["we can"] * 6, ["i am"] * 6)
    with sm.using({"speaker": other}):
        assert sm.model("speaker") is other
    assert sm.model("speaker") is shipped


def test_the_shipped_models_are_what_the_trainer_makes_of_the_corpora_they_name() -> None:
    """A corpus added or edited without retraining would leave the checks on stale tables:
    run ``bench/style_models.py --write``."""
    trainer = _trainer()
    shipped = json.loads(sm.MODELS_PATH.read_text(encoding="utf-8"))
    names = shipped["meta"]["trained_on"]
    corpora = {k: v for k, v in trainer.load_corpora().items() if k in names}
    assert sorted(corpora) == names
    models = trainer.train_models([c for convs in corpora.values() for c in convs])
    assert sm.parse(sm.dump(models, {})) == sm.parse(json.dumps(shipped))


def test_a_customer_offering_the_businesss_services_is_a_role_flip() -> None:
    text = (
        "That sounds good. And you are welcome to bring your spouse along to the review, or we "
        "can do it by video call if that is easier for you, and we will send the paperwork "
        "beforehand."
    )
    check = run(d.check_role_confusion, with_turn(7, text))
    assert not check.passed and check.turns == [7]
    assert "read like the business's" in check.reasons[0]


def test_the_clean_base_leans_each_way_it_should() -> None:
    speaker = sm.model("speaker")
    for number, turn in enumerate(CLEAN, start=1):
        lean = speaker.lean(turn)
        assert (lean > 0) == (number % 2 == 0), (number, lean)
    assert run(d.check_role_confusion, turns_of(CLEAN)).passed


def test_a_refusal_in_words_no_pattern_has_is_found_by_the_refusal_model() -> None:
    text = (
        "I'm afraid questions like this fall outside what I'm set up to help with here, so "
        "I'm not able to go into your particular accounts."
    )
    assert sm.model("refusal").lean(text) >= d.REFUSAL_FLAG
    check = run(d.check_ai_refusal, with_turn(6, text))
    assert not check.passed and check.turns == [6]


def test_the_clean_answers_do_not_read_like_refusals() -> None:
    refusal = sm.model("refusal")
    answers = CLEAN[1::2]
    assert all(refusal.lean(a) < d.REFUSAL_SUSPECT for a in answers)
    assert run(d.check_ai_refusal, turns_of(CLEAN)).passed


def test_a_conversation_that_stops_on_a_middle_answer_has_no_close() -> None:
    # Ends on the assistant's answer about distributions: nobody wraps up.
    check = run(d.check_ending, turns_of(CLEAN[:8]))
    assert not check.passed and check.turns == [8]
    assert "reads like the middle" in check.reasons[0]


def test_the_same_answer_with_a_close_passes() -> None:
    texts = [*CLEAN[:7], CLEAN[7] + " Thanks for the questions, and good luck with the plan!"]
    assert run(d.check_ending, turns_of(texts)).passed
    assert run(d.check_ending, turns_of(CLEAN)).passed


def test_a_last_question_for_the_bookings_details_after_a_wrap_up_is_only_a_doubt() -> None:
    wrap_up = (
        "That works well. The review takes about an hour, and you can bring your partner "
        "along too. Could you send me your full name and a phone number for the booking?"
    )
    check = run(d.check_ending, turns_of([*CLEAN[:7], wrap_up]))
    assert check.passed and check.suspicion == 0.5
    asks = "Required minimum distributions start at 73. What is your current marginal tax rate?"
    check = run(d.check_ending, turns_of([*CLEAN[:7], asks]))
    assert not check.passed and "information that never comes" in check.reasons[0]


_COASTAL_DRIFT = [
    "Makes sense. We're thinking of spending the first winter of retirement on the coast, "
    "somewhere warm with a beach and good restaurants.",
    "That sounds lovely. The coast in winter is quiet and beautiful, the little towns have "
    "great seafood restaurants, and the old harbour villages are famous for their cliff walks.",
    "My wife says the ferry to the islands is the best part, and the markets in town on Saturdays.",
    "She's right, the ferry ride is beautiful in the morning light, and the Saturday market in "
    "the old town is famous for local cheese, fresh bread and flowers. Enjoy the trip!",
]


def test_closing_turns_about_the_coast_read_like_a_drift_and_the_plan_does_not() -> None:
    drift = sm.model("drift")
    lean, start = d.drift_lean(drift, [*CLEAN[:6], *_COASTAL_DRIFT])
    assert lean >= d.DRIFT_LEAN_FLAG and start >= 6
    lean, _ = d.drift_lean(drift, CLEAN)
    assert lean < d.DRIFT_LEAN_SUSPECT
    assert d._lean_points(lean) < 0  # an ending on the plan takes points away


def test_the_drift_model_alone_finds_a_drift_the_word_counts_miss(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(d, "drift_evidence", lambda ctx: None)  # no run leaves the plan
    check = run(d.check_topic_drift, turns_of([*CLEAN[:6], *_COASTAL_DRIFT]))
    assert not check.passed and check.turns[0] >= 7
    assert "reads like a drift" in check.reasons[0] and '"' in check.reasons[0]
    assert run(d.check_topic_drift, turns_of(CLEAN)).passed


def test_a_conversation_too_short_to_have_a_middle_is_not_read_for_a_drift() -> None:
    assert run(d.check_topic_drift, turns_of(_COASTAL_DRIFT)).passed
