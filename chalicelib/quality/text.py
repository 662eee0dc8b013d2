"""Text helpers shared by the defect checks: normalising, sentences, words, negation."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

from chalicelib.domain.models import Turn

QUOTES = str.maketrans(
    {"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"}
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])|\n+")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SPACES = re.compile(r"\s+")


# The checks look at the same turns many times over: each turn is normalised, split and
# tokenised once per scoring (the caches hold a few conversations' worth of text).
@lru_cache(maxsize=2048)
def normalise(text: str) -> str:
    """Straight quotes and dashes, single spaces: patterns are written against this."""
    return _SPACES.sub(" ", text.translate(QUOTES)).strip()


# A full stop after a title or a short form ends no sentence: "see Dr. Huang" is one.
_ABBREVIATION_END = re.compile(
    r"(?:^|\s)(?:Dr|Mr|Mrs|Ms|Mx|Prof|St|Mt|No|vs|approx|e\.g|i\.e)\.$", re.IGNORECASE
)


@lru_cache(maxsize=2048)
def _sentences(text: str) -> tuple[str, ...]:
    pieces = [s.strip() for s in _SENTENCE_END.split(normalise(text)) if s.strip()]
    out: list[str] = []
    for piece in pieces:
        if out and _ABBREVIATION_END.search(out[-1]):
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    return tuple(out)


def sentences(text: str) -> list[str]:
    return list(_sentences(text))


@lru_cache(maxsize=4096)
def _words(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(text.lower().translate(QUOTES)))


def words(text: str) -> list[str]:
    return list(_words(text))


def content_of(turn: Turn) -> str:
    content = getattr(turn, "content", "")
    return content if isinstance(content, str) else ""


def ordered(turns: Iterable[Turn]) -> list[Turn]:
    return sorted(turns, key=lambda t: t.turn_number)


def role_turns(turns: Sequence[Turn], role: str) -> list[Turn]:
    return [t for t in turns if getattr(t, "role", None) == role]


def speaker(role: str) -> str:
    return "the assistant" if role == "assistant" else "the user"


# Words that, shortly before a claim in the same sentence, turn it into its opposite
# ("no investment is risk-free", "I can't guarantee a return").
NEGATORS = frozenset(
    [
        "no",
        "not",
        "never",
        "cannot",
        "can't",
        "couldn't",
        "won't",
        "wouldn't",
        "isn't",
        "aren't",
        "wasn't",
        "weren't",
        "don't",
        "doesn't",
        "didn't",
        "nobody",
        "nothing",
        "none",
        "neither",
        "nor",
        "without",
        "hardly",
        "unlikely",
        "avoid",
        "beware",
        "wary",
        "skeptical",
        "sceptical",
        "myth",
        "false",
        "misleading",
        "unrealistic",
        "impossible",
    ]
)
# Phrases that report or warn about a claim rather than make it.
REPORTING = re.compile(
    r"\b(?:anyone|anybody|someone|somebody|people|firms?|advisors?|companies|ads?|sites?|"
    r"salesm[ae]n|products?) (?:who|that|which)? ?(?:promises?|claims?|offers?|tells? you|"
    r"says?|guarantees?)\b|\bred flags?\b|\bbe (?:careful|cautious|wary)\b|\bif (?:someone|"
    r"anyone|a firm|an advisor|it) (?:promises|claims|says|guarantees)\b|\bno such thing\b|"
    r"\bthere(?:'s| is| are) no (?:way|such)\b(?! (?:you|anyone|it)\b)|\b(?:is|are|sounds?) too good to be true\b"
    r"|\bdon't exist\b|\bdoes not exist\b|\bdoesn't exist\b",
    re.IGNORECASE,
)


def negated_before(sentence: str, start: int, window: int = 7) -> bool:
    """A negator among the ``window`` words before ``start`` in ``sentence``."""
    before = words(sentence[:start])[-window:]
    return any(w in NEGATORS for w in before)


def reported(sentence: str) -> bool:
    return bool(REPORTING.search(sentence))


def short(text: str, limit: int = 80) -> str:
    text = normalise(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"
