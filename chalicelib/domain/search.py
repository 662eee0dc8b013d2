"""Text search rules of the conversation list (``q``), as pure functions.

- Text is compared as words: runs of letters and digits, case-folded. Punctuation and
  spacing do not count ("Pre-Retiree" is the words "pre retiree").
- An unquoted word matches a word that starts with it ("retire" finds "retirement",
  "7" finds "7" and "70", never a digit inside another word). A word written with
  punctuation inside ("pre-retiree", "401(k)") matches those words side by side.
- A quoted phrase (``"topic 7"``) matches those whole words side by side, in order.
- Every term must match (AND), anywhere in the metadata or the turns.
- An id matches whole: a term equal to the conversation id finds that conversation;
  ids are not part of the searched words, so a digit never matches inside a hex id.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

_WORD = re.compile(r"[^\W_]+")
# ASCII punctuation (and the typographic quotes and dashes models write) -> spaces: the
# fast path of ``words`` for ASCII text, identical to the regular expression there.
_SEPARATORS = {
    ord(c): " " for c in string.punctuation + "\u2018\u2019\u201c\u201d\u2013\u2014\u2026"
}
_TERM = re.compile(r'"([^"]*)"?|(\S+)')
_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"'})


def words(text: str) -> list[str]:
    """The words of ``text``, case-folded."""
    folded = text.casefold()
    if folded.isascii():
        return folded.translate(_SEPARATORS).split()
    return _WORD.findall(folded)


def searchable(text: str) -> str:
    """``text`` as the search compares it: its words, one space between and around."""
    found = words(text)
    return f" {' '.join(found)} " if found else " "


@dataclass(frozen=True)
class SearchTerm:
    words: tuple[str, ...]
    phrase: bool  # quoted: whole words only
    raw: str  # as typed, case-folded: compared whole with ids

    @property
    def needle(self) -> str:
        """The substring of ``searchable`` text that means a match: starting at a word,
        ending at one for a phrase, anywhere in the last word otherwise (a prefix)."""
        joined = " " + " ".join(self.words)
        return joined + " " if self.phrase else joined

    def key(self) -> str:
        return ("p:" if self.phrase else "w:") + " ".join(self.words) + "|" + self.raw


def parse_query(q: str | None) -> list[SearchTerm]:
    """``q`` as terms: quoted phrases and words. A lone quote runs to the end of ``q``;
    a term without letters or digits (``-``, ``""``) is left out."""
    terms: list[SearchTerm] = []
    for match in _TERM.finditer((q or "").translate(_QUOTES)):
        quoted, word = match.group(1), match.group(2)
        text = quoted if quoted is not None else word
        found = tuple(words(text))
        if found:
            terms.append(SearchTerm(found, quoted is not None, text.strip().casefold()))
    return terms


def term_matches(term: SearchTerm, text: str, ids: tuple[str, ...] = ()) -> bool:
    """``text`` is ``searchable`` output; ``ids`` are the row's case-folded ids."""
    return term.raw in ids or term.needle in text


def matches_all(terms: list[SearchTerm], text: str, ids: tuple[str, ...] = ()) -> bool:
    return all(term.raw in ids or term.needle in text for term in terms)
