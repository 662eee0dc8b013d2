"""Near-verbatim turns shared between conversations: grouped into one split, or reported.

Generated datasets repeat text on purpose (an edge-case tier reuses canned prompts, a
persona's opener recurs), and a turn that appears on both sides of a split lets a model
score on validation what it memorised in training. Each turn long enough to matter
(``MIN_WORDS``) is normalised (case, punctuation and spacing ignored) and fingerprinted;
conversations sharing a fingerprint are linked so ``assign_splits`` keeps them together,
as long as the group this makes stays small enough for the ratios to remain reachable
(``max_group``). Text shared more widely than that (a stock phrase in a large share of
the dataset) cannot be kept on one side without emptying the others: it is reported in
the manifest (which turns, which conversations, which splits) instead.

Memory is compact: two parallel arrays (the fingerprint; the conversation index, turn
number and role packed in one integer), 16 bytes per turn, and a fixed 2 MiB bitmap that
flags repeats as they come. Fingerprints use Python's string hash: they are compared
only within one export run, where it is stable.
"""

from __future__ import annotations

import string
from array import array
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from chalicelib.export.formats import TurnLike

MIN_WORDS: Final = 8  # shorter turns ("Thanks, that helps!") are harmless when repeated
GROUP_SHARE: Final = 0.1  # a link may not build a group larger than 10% of the export
MIN_GROUP_CAP: Final = 4
REPORT_LIMIT: Final = 50  # shared turns listed individually in the manifest
_PUNCTUATION: Final = string.punctuation.encode()
_SPACES: Final = bytes.maketrans(b"\t\n\r\x0b\x0c", b"     ")  # all whitespace -> " "
_ROLE_CODES: Final = {"user": 0, "assistant": 1}
_ROLE_NAMES: Final = ("user", "assistant", "other")


def normalised(text: str) -> bytes:
    """Case, ASCII punctuation and spacing folded: near-verbatim copies compare equal.
    Bytes, not str: ``bytes.translate`` deletes punctuation several times faster, and
    this runs on every turn of a split export."""
    key = text.lower().encode("utf-8", "surrogatepass").translate(_SPACES, _PUNCTUATION)
    if b"  " in key:
        key = b" ".join(key.split())
    return key.strip()


def _enough_words(key: bytes) -> bool:
    return key.count(b" ") + 1 >= MIN_WORDS


_SEEN_BITS: Final = 1 << 24  # a 2 MiB bitmap of fingerprints seen so far
_TURN_SEPARATOR: Final = "\x1e"  # ASCII record separator
_TURN_SEPARATOR_BYTES: Final = b"\x1e"


@dataclass(slots=True)
class TurnFingerprints:
    conversation_ids: list[str] = field(default_factory=list)
    _fp: array[int] = field(default_factory=lambda: array("q"))
    _place: array[int] = field(default_factory=lambda: array("q"))  # see add()
    # Fingerprints possibly seen before (a bit already set in ``_seen``): every shared
    # turn is among them, plus a few false alarms; finding the shared ones then needs no
    # sort of every fingerprint (an int object each: 8 MiB at 10,000 conversations).
    _seen: bytearray = field(default_factory=lambda: bytearray(_SEEN_BITS // 8))
    _maybe_shared: set[int] = field(default_factory=set)

    def add(self, conversation_id: str, turns: Sequence[TurnLike]) -> None:
        index = len(self.conversation_ids)
        self.conversation_ids.append(conversation_id)
        # normalised(), for all turns at once: case, encoding and punctuation are folded
        # over the joined text in three C calls instead of three per turn (the
        # separator is neither whitespace nor punctuation, so it survives as is).
        joined = _TURN_SEPARATOR.join([t.content for t in turns])
        folded = joined.lower().encode("utf-8", "surrogatepass").translate(_SPACES, _PUNCTUATION)
        keys = folded.split(_TURN_SEPARATOR_BYTES)
        if len(keys) != len(turns):  # a turn holds the separator itself
            keys = [normalised(t.content) for t in turns]
        seen, maybe_shared = self._seen, self._maybe_shared
        fps, places = self._fp.append, self._place.append
        codes = _ROLE_CODES
        spaces = MIN_WORDS - 1
        base = index << 18
        for t, key in zip(turns, keys, strict=True):
            if b"  " in key:
                key = b" ".join(key.split())
            key = key.strip()
            if key.count(b" ") < spaces:
                continue
            fp = hash(key)
            bit = fp & (_SEEN_BITS - 1)
            mask = 1 << (bit & 7)
            if seen[bit >> 3] & mask:
                maybe_shared.add(fp)
            else:
                seen[bit >> 3] |= mask
            fps(fp)
            # conversation index, turn number (< 65,536) and role in one integer
            places(base | (t.turn_number & 0xFFFF) << 2 | codes.get(t.role, 2))

    def _shared(self) -> list[list[int]]:
        """Positions of each fingerprint seen in two or more conversations."""
        candidates = self._maybe_shared
        runs: dict[int, list[int]] = {}
        for pos, fp in enumerate(self._fp):
            if fp in candidates:
                runs.setdefault(fp, []).append(pos)
        place = self._place
        return [run for run in runs.values() if len({place[p] >> 18 for p in run}) > 1]

    def analyse(self, total: int | None = None) -> SharedTurns:
        """Which shared turns to group (links) and which are too widespread to."""
        n = len(self.conversation_ids) if total is None else total
        cap = max(MIN_GROUP_CAP, int(n * GROUP_SHARE))
        ids = self.conversation_ids
        runs = self._shared()
        # Smallest sharing first, ties by the conversations' ids: deterministic whatever
        # the hash values are, and the narrowest (most clearly copied) text wins the cap.
        keyed = []
        for run in runs:
            convs = sorted({ids[self._place[p] >> 18] for p in run})
            keyed.append((len(convs), convs, run))
        keyed.sort(key=lambda k: (k[0], k[1]))
        parent: dict[str, str] = {}
        size: dict[str, int] = defaultdict(lambda: 1)

        def find(x: str) -> str:
            parent.setdefault(x, x)
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        links: list[tuple[str, str]] = []
        widespread: list[SharedTurn] = []
        grouped = 0
        for _, convs, run in keyed:
            roots = {find(c) for c in convs}
            merged = sum(size[r] for r in roots)
            occurrences = [(ids[self._place[p] >> 18], self._place[p] >> 2 & 0xFFFF) for p in run]
            role = _ROLE_NAMES[self._place[run[0]] & 3]
            if merged > cap:
                widespread.append(SharedTurn(role, occurrences))
                continue
            grouped += 1
            first = min(roots)
            for r in roots:
                if r != first:
                    parent[r] = first
            size[first] = merged
            links += [(convs[0], c) for c in convs[1:]]
        return SharedTurns(links=links, grouped=grouped, widespread=widespread, cap=cap)


@dataclass(slots=True, frozen=True)
class SharedTurn:
    role: str
    occurrences: list[tuple[str, int]]  # (conversation id, turn number)


@dataclass(slots=True)
class SharedTurns:
    links: list[tuple[str, str]]
    grouped: int
    widespread: list[SharedTurn]
    cap: int

    def report(self, assignments: Mapping[str, str]) -> dict[str, Any]:
        """The manifest's shared-turn section: what was grouped, and every shared turn
        that still appears in more than one split (counted by role, the first few listed
        with their conversations and splits)."""
        across: list[dict[str, Any]] = []
        by_role: dict[str, int] = defaultdict(int)
        for turn in self.widespread:
            placed = [
                (cid, n, assignments[cid]) for cid, n in turn.occurrences if cid in assignments
            ]
            splits = sorted({s for _, _, s in placed})
            if len(splits) < 2:
                continue
            by_role[turn.role] += 1
            if len(across) < REPORT_LIMIT:
                across.append(
                    {
                        "role": turn.role,
                        "splits": splits,
                        "conversations": len({cid for cid, _, _ in placed}),
                        "occurrences": [
                            {"conversation_id": cid, "turn_number": n, "split": s}
                            for cid, n, s in placed[:20]
                        ],
                    }
                )
        return {
            "method": (
                f"turns of at least {MIN_WORDS} words, compared with case, punctuation and"
                " spacing ignored"
            ),
            "grouped_turns": self.grouped,
            "group_cap": self.cap,
            "across_splits": dict(sorted(by_role.items())),
            "across_splits_total": sum(by_role.values()),
            "examples": across,
        }
