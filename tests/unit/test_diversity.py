"""Diversity repeats and the list's phrase search agree: a repeat's text, searched as a
phrase, finds every conversation the repeat counts."""

from __future__ import annotations

from chalicelib.domain.models import Conversation, Tier, Turn
from chalicelib.domain.search import matches_all, parse_query, searchable
from chalicelib.quality.diversity import Item, analyze

# Written alike, punctuated and spaced differently, with a word outside ASCII.
OPENERS = [
    "Hi—I'm Zoë, I run the café on Main Street and need help.",
    "Hi, I\u2019m Zoë; I run the café on Main Street, so help me.",
    "hi i'm ZOË - i run the Café on main street today.",
    "Hi I\u2019m Zoë... I run the café on Main Street? Please.",
]


def item(cid: str, first_user: str) -> Item:
    conversation = Conversation(
        tenant_id="t",
        dataset_id="ds",
        conversation_id=cid,
        persona="Owner",
        emotion="Calm",
        topic="Hours",
        intent="Ask",
        tone="Warm",
        tier=Tier.TEMPLATE,
    )
    turns = [
        Turn(turn_number=1, role="user", content=first_user),
        Turn(turn_number=2, role="assistant", content=f"Answer number {cid} about hours."),
    ]
    return Item(conversation, turns)


def test_an_openers_text_finds_every_conversation_it_counts_as_a_phrase_search() -> None:
    items = [item(f"c{i}", text) for i, text in enumerate(OPENERS)]
    items += [item(f"other{i}", f"Something else entirely, case {i}.") for i in range(4)]
    report = analyze(items)
    [opener] = report["openers"]["user"]
    assert opener["count"] == len(OPENERS)
    assert opener["text"] == "Hi—I'm Zoë, I run"  # as the first one wrote it
    terms = parse_query(f'"{opener["text"]}"')
    found = {it.id for it in items if matches_all(terms, searchable(it.turns[0].content))}
    assert found == set(opener["conversation_ids"]) == {f"c{i}" for i in range(len(OPENERS))}


def test_a_repeated_phrase_finds_every_conversation_it_counts() -> None:
    texts = [f"Case {i}. " + OPENERS[i % len(OPENERS)] for i in range(12)]
    items = [item(f"c{i}", t) for i, t in enumerate(texts)]
    for phrase in report_phrases(items):
        terms = parse_query(f'"{phrase["text"]}"')
        found = {it.id for it in items if matches_all(terms, searchable(it.turns[0].content))}
        assert set(phrase["conversation_ids"]) <= found, phrase
    assert report_phrases(items)


def report_phrases(items: list[Item]) -> list[dict[str, object]]:
    phrases: list[dict[str, object]] = analyze(items)["phrases"]["user"]
    return phrases
