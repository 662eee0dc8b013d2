"""Figure patterns searched only near digits find exactly what a whole-text search finds."""

from __future__ import annotations

import pytest

from chalicelib.quality import grounding
from chalicelib.quality.grounding import DIGIT_REACH, digit_windows, finditer_near
from chalicelib.quality.text import normalise
from tests.corpus_texts import chunk_texts, turn_texts

FIGURE_PATTERNS = [
    (kind, pattern)
    for kind, pattern in grounding._PATTERNS
    if kind not in grounding._WITHOUT_FIGURES
] + [("product_number", grounding._PRODUCT_NUMBER)]

# Shapes at a window's edges: a code or a sign before the figure, long units after it,
# figures far apart and close together, a figure at the very start and end of a text.
EDGE_TEXTS = [
    "5",
    "GH\u20b5 1,200",
    "The fee is USD 1,500 and the rest follows. " + "word " * 30 + "then 3 business days.",
    "x" * 200 + " about 12 working appointments " + "y" * 200,
    "0475 38 21 90 or +32 2 555 12 12, open 9am to 5:30 p.m. on March 3rd, 15%.",
    "1.290,00 \u20ac" + " a" * 25 + " 4000 \u00a324.60",
    "Form 1099 and room 12, then 3 million dollars, 2 thousand and 60.000 COP.",
]


TEXTS = [normalise(text) for text in turn_texts() + chunk_texts()] + EDGE_TEXTS


@pytest.mark.parametrize(("kind", "pattern"), FIGURE_PATTERNS, ids=[k for k, _ in FIGURE_PATTERNS])
def test_searching_near_digits_finds_what_the_whole_text_search_finds(kind, pattern) -> None:
    found_any = 0
    for text in TEXTS:
        plain = [m.span() for m in pattern.finditer(text)]
        near = [m.span() for m in finditer_near(pattern, text, digit_windows(text))]
        assert near == plain, (kind, text)
        found_any += bool(plain)
    assert found_any > 10  # the comparison ran on texts the pattern matches


def test_windows_cover_each_digit_with_its_reach_and_merge_when_close() -> None:
    text = "a" * 100 + "12" + "b" * 10 + "3" + "c" * 200 + "45"
    assert digit_windows(text) == [
        (100 - DIGIT_REACH, 113 + DIGIT_REACH),
        (313 - DIGIT_REACH, len(text)),
    ]
    assert digit_windows("no figures here") == []
