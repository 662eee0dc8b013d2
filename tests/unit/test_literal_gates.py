"""The literal gates: a gated search finds exactly what the plain regex finds."""

from __future__ import annotations

import re

import pytest

from chalicelib.quality import defects
from chalicelib.quality.literal_gates import (
    GatedAlternation,
    GatedPattern,
    GateSet,
    gated,
    required_literals,
)
from tests.corpus_texts import turn_texts

TEXTS = turn_texts()
LOWERED = [text.lower() for text in TEXTS]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"\bas an? (?:ai|a\.i\.|artificial intelligence)\b", {"as a"}),
        (r"guaranteed? (?:returns?|profit)", {"guarantee"}),
        (r"(?:refund|money back) (?:within|in) \d+ days", {"refund", "money back"}),
        (r"(?:foo)?barbaz", {"barbaz"}),  # an optional group gives no gate
        (r"x{2,}yyy", {"yyy"}),
        (r"(?i)Hello World", {"hello world"}),  # folded when the pattern ignores case
        (r"(?<=\$)\d+ (?:fee|charge)s?", {"fee", "charge"}),
        # a character prose seldom has is selective on its own
        (r"\bX{3,}\b|\$X+", {"X"}),
        (r"_{3,}|\{\{\w+\}\}", {"_", "{{"}),
    ],
)
def test_a_gate_is_a_set_every_match_contains_one_of(pattern: str, expected: set[str]) -> None:
    assert required_literals(re.compile(pattern)) == expected


@pytest.mark.parametrize(
    "pattern",
    [
        r"\d+%",
        r"[a-z]+in?g",
        r"(?:ab|cd)",
        r"a{3,}",
        r"(?:yes|no|maybe)?",
        r"(?x) verbose  words",
        r".*",
    ],
)
def test_a_pattern_without_a_usable_gate_is_always_searched(pattern: str) -> None:
    assert required_literals(re.compile(pattern)) is None
    assert gated(pattern).possible("anything at all")
    assert gated(pattern).findall("12% of 3 things, ab") == re.findall(
        pattern, "12% of 3 things, ab"
    )


def test_a_gated_pattern_skips_text_without_its_literals_and_finds_the_rest() -> None:
    pattern = gated(r"\bmoney[- ]back guarantee\b")
    assert pattern.gate is not None
    assert not pattern.possible("we refund within thirty days")
    assert pattern.search("we refund within thirty days") is None
    match = pattern.search("our money-back guarantee holds")
    assert match is not None and match.group(0) == "money-back guarantee"


def test_an_alternation_falls_back_to_its_ungated_alternatives() -> None:
    alternation = GatedAlternation([r"\bwe guarantee\b", r"\b\d{2,}% off\b"])
    for text in ("save 20% off today", "we guarantee 20% off", "nothing here", "we guarantee it"):
        plain = alternation.regex.search(text)
        found = alternation.search(text)
        assert (found and found.span()) == (plain and plain.span()), text
    with pytest.raises(ValueError):
        GatedAlternation([r"abc"], re.IGNORECASE)


def _checks_patterns() -> list[tuple[str, GatedPattern | GatedAlternation]]:
    """Every gated pattern the defect checks search with."""
    found: list[tuple[str, GatedPattern | GatedAlternation]] = []
    for name, value in vars(defects).items():
        if isinstance(value, defects.Patterns):
            found.append((name, value.combined))
        elif isinstance(value, GatedPattern):
            found.append((name, value))
        elif isinstance(value, tuple | dict):
            items = value.values() if isinstance(value, dict) else value
            for index, item in enumerate(items):
                parts = item if isinstance(item, tuple) else (item,)
                found += [(f"{name}[{index}]", p) for p in parts if isinstance(p, GatedPattern)]
    return found


CHECK_PATTERNS = _checks_patterns()


def test_the_checks_search_through_gates() -> None:
    gated_patterns = [p for _, p in CHECK_PATTERNS if isinstance(p, GatedPattern)]
    assert len(CHECK_PATTERNS) > 40 and len(gated_patterns) > 20
    # the phrase lists are what the gates exist for: most of them have one
    assert sum(p.gate is not None for p in gated_patterns) > len(gated_patterns) * 0.6


def test_most_check_patterns_match_some_corpus_turn() -> None:
    """Equality over texts that none of a pattern's matches are in would prove little."""
    matching = [n for n, p in CHECK_PATTERNS if any(p.regex.search(t) for t in LOWERED)]
    assert len(matching) > len(CHECK_PATTERNS) * 0.8


@pytest.mark.parametrize(("name", "pattern"), CHECK_PATTERNS, ids=[n for n, _ in CHECK_PATTERNS])
def test_a_gated_check_pattern_finds_what_its_regex_finds_over_the_corpora(
    name: str, pattern: GatedPattern | GatedAlternation
) -> None:
    # the checks search lower-cased text, except the case-sensitive placeholder patterns
    texts = TEXTS + LOWERED if pattern.regex.pattern.lower() != pattern.regex.pattern else LOWERED
    for text in texts:
        plain = pattern.regex.search(text)
        found = pattern.search(text)
        assert (found and found.span()) == (plain and plain.span()), (name, text[:120])
        if isinstance(pattern, GatedPattern):
            assert pattern.findall(text) == pattern.regex.findall(text), (name, text[:120])


def test_a_gate_set_finds_what_each_of_its_patterns_finds_over_the_corpora() -> None:
    for patterns in (
        [p for p, _ in defects._BUSINESS_SIDE],
        [p for p, _ in defects._CLIENT_SIDE],
        [p for _, p, _ in defects._CLAIMS],
    ):
        gates = GateSet(patterns)
        for text in LOWERED:
            expected = [i for i, p in enumerate(patterns) if p.regex.search(text)]
            assert gates.matching(text) == expected, text[:80]


def test_a_gate_set_opens_ungated_patterns_and_refuses_mixed_case_rules() -> None:
    gates = GateSet([gated(r"refund"), gated(r"\d+%"), gated(r"money back")])
    assert gates.open("a 5% fee") == [1]
    assert gates.open("money back or a refund") == [0, 1, 2]
    with pytest.raises(ValueError, match="fold case"):
        GateSet([gated("abc"), gated("abc", re.IGNORECASE)])
