"""Literal gates for the checks' long regular expressions.

Python's ``re`` tries every branch of an alternation at every position of the text, so
the phrase lists (hundreds of branches) cost most of a conversation's scoring time
although almost no sentence matches them. A pattern's *gate* is a set of plain strings
of which every match must contain at least one, read from the pattern's parse tree; a
text containing none of them cannot match, and one substring test per string (done in C)
rules it out. The gate is sound by construction: it only ever skips a search that would
have found nothing, and a pattern for which no such set is found is always searched.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

# The parser ``re`` itself compiles with (read, never patched); the Lambda runtime and
# the project both run Python 3.11+, where it has this name.
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

# A gate of strings shorter than this rules out almost nothing ("a", " s")...
MIN_LITERAL = 3
# ... unless the string is made of characters prose seldom has (a placeholder's "X" or
# "_", a template's "{" or "<").
RARE_CHARACTERS = frozenset("XQZ_{}<>[]|\\^~#@=*")
# Past this many strings the substring tests cost about what the search saves.
MAX_LITERALS = 120


def _literals(items: Any, max_literals: int = MAX_LITERALS) -> set[str] | None:
    """Strings of which every match of the parsed sequence ``items`` contains one, or
    None. Of the sequence's mandatory parts (literal runs, groups, alternations, repeats
    of at least one), the most selective gate is kept: any one of them is sound."""
    candidates: list[set[str]] = []
    run: list[str] = []

    def close_run() -> None:
        if run:
            candidates.append({"".join(run)})
            run.clear()

    for op, av in items:
        name = str(op)
        if name == "LITERAL":
            run.append(chr(av))
            continue
        if name in ("AT", "ASSERT", "ASSERT_NOT"):
            continue  # zero width: the text on both sides is contiguous
        close_run()
        if name == "SUBPATTERN":
            add_flags, del_flags = av[1], av[2]
            if (add_flags | del_flags) & re.IGNORECASE:
                continue  # case rules change inside: no gate from this group
            inner = _literals(av[3], max_literals)
            if inner is not None:
                candidates.append(inner)
        elif name == "BRANCH":
            union: set[str] = set()
            for alternative in av[1]:
                inner = _literals(alternative, max_literals)
                if inner is None:
                    union = set()
                    break
                union |= inner
            if union:
                candidates.append(union)
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, _high, inner_items = av
            if low >= 1:
                inner = _literals(inner_items, max_literals)
                if inner is not None:
                    candidates.append(inner)
        # anything else (character classes, any, backreferences) ends the run
    close_run()
    usable = [c for c in candidates if c and len(c) <= max_literals and all(map(_selective, c))]
    if not usable:
        return None
    # The gate that rules out most: long strings, few of them (a rare character counts
    # as a string of MIN_LITERAL).
    return max(usable, key=lambda c: (min(max(len(x), _rarity(x)) for x in c), -len(c)))


def _rarity(literal: str) -> int:
    return MIN_LITERAL if literal and set(literal) <= RARE_CHARACTERS else 0


def _selective(literal: str) -> bool:
    return len(literal) >= MIN_LITERAL or (bool(literal) and set(literal) <= RARE_CHARACTERS)


def required_literals(
    pattern: re.Pattern[str], max_literals: int = MAX_LITERALS
) -> frozenset[str] | None:
    """The gate of ``pattern``: case-folded when it ignores case; None when none is found."""
    if pattern.flags & re.VERBOSE:
        return None
    try:
        found = _literals(sre_parse.parse(pattern.pattern, pattern.flags), max_literals)
    except Exception:  # a parse tree this reader does not know: search always (sound)
        return None
    if found is None:
        return None
    if pattern.flags & re.IGNORECASE:
        return frozenset(s.casefold() for s in found)
    return frozenset(found)


class GatedPattern:
    """A compiled pattern that skips texts its gate rules out; same results as the
    pattern for ``search``, ``finditer`` and ``findall``."""

    __slots__ = ("_fold", "gate", "pattern", "regex")

    def __init__(self, regex: re.Pattern[str], max_literals: int = MAX_LITERALS) -> None:
        self.regex = regex
        self.pattern = regex.pattern
        self.gate = required_literals(regex, max_literals)
        self._fold = bool(regex.flags & re.IGNORECASE)

    def possible(self, text: str) -> bool:
        if self.gate is None:
            return True
        haystack = text.casefold() if self._fold else text
        # map() over the bound method runs the substring tests without a Python frame each
        return any(map(haystack.__contains__, self.gate))

    def search(self, text: str) -> re.Match[str] | None:
        return self.regex.search(text) if self.possible(text) else None

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        return self.regex.finditer(text) if self.possible(text) else iter(())

    def findall(self, text: str) -> list[Any]:
        return self.regex.findall(text) if self.possible(text) else []


def gated(
    pattern: str | re.Pattern[str], flags: int = 0, max_literals: int = MAX_LITERALS
) -> GatedPattern:
    regex = re.compile(pattern, flags) if isinstance(pattern, str) else pattern
    return GatedPattern(regex, max_literals)


class GatedAlternation:
    """Alternative patterns searched as one (``a|b|c``: the leftmost match, earlier
    alternatives first), skipping the ones whose gates rule the text out.

    Each branch a text's gates leave open is searched on its own, and the leftmost match
    wins (the earlier branch on a tie), as in the whole alternation; a closed branch
    cannot match. A common word in one branch's gate ("the ") then costs that branch's
    search, not the whole alternation's."""

    __slots__ = ("_gates", "gate", "pattern", "regex")

    def __init__(self, patterns: list[str] | tuple[str, ...], flags: int = 0) -> None:
        if flags & re.IGNORECASE:
            raise ValueError("gate alternations of lower-cased text instead of IGNORECASE")
        self.pattern = "|".join(f"(?:{p})" for p in patterns)
        self.regex = re.compile(self.pattern, flags)
        # the branches in the alternation's order; a branch without a gate is always open
        self._gates = GateSet([GatedPattern(re.compile(p, flags)) for p in patterns])
        self.gate = frozenset(s for p in self._gates.patterns if p.gate for s in p.gate)

    def search(self, text: str) -> re.Match[str] | None:
        best: re.Match[str] | None = None
        branches = self._gates.patterns
        for i in self._gates.open(text):
            found = branches[i].regex.search(text)
            if found is not None and (best is None or found.start() < best.start()):
                best = found
                if not best.start():
                    break  # nothing starts further left
        return best


class GateSet:
    """The gates of many patterns tested against one text at once.

    A phrase list of a hundred patterns would test each pattern's gate in turn, a Python
    call apiece; here every distinct string of all the gates is tested in one C-level
    pass, and only the patterns one of whose strings the text holds are searched."""

    __slots__ = ("_always", "_fold", "_index", "_literals", "patterns")

    def __init__(self, patterns: Sequence[GatedPattern]) -> None:
        if len({p._fold for p in patterns}) > 1:
            raise ValueError("a gate set's patterns must all fold case or none")
        self.patterns = tuple(patterns)
        self._fold = bool(patterns) and patterns[0]._fold
        index: dict[str, list[int]] = {}
        always: list[int] = []
        for i, pattern in enumerate(self.patterns):
            if pattern.gate is None:
                always.append(i)
                continue
            for literal in pattern.gate:
                index.setdefault(literal, []).append(i)
        self._always = tuple(always)
        self._index = index
        self._literals = tuple(sorted(index))

    def open(self, text: str) -> list[int]:
        """Indices (in order) of the patterns the text's gates leave open."""
        if self._fold:
            text = text.casefold()
        found = set(self._always)
        index = self._index
        for literal in filter(text.__contains__, self._literals):
            found.update(index[literal])
        return sorted(found)

    def matching(self, text: str) -> list[int]:
        """Indices (in order) of the patterns that match ``text``."""
        patterns = self.patterns
        return [i for i in self.open(text) if patterns[i].regex.search(text)]
