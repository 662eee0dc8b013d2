"""Near-duplicate detection inside a dataset: MinHash signatures + LSH banding.

Text -> lower-cased words -> 3-word shingles -> one 64-bit hash per shingle. The
signature is a *one-permutation* MinHash (Li, Owen & Zhang 2012): the hash range is cut
into ``NUM_PERM`` equal bins and each bin keeps its smallest hash; bins a short text
leaves empty borrow from the next filled bin to the right, shifted by the distance
("rotation densification", Shrivastava & Li 2014), so every slot is still an LSH
function. That needs one hash per shingle instead of ``NUM_PERM``, which is what makes
pure Python fast enough (10,000 conversations index in a few seconds, see
``bench/quality.py``). The share of equal slots estimates the Jaccard similarity of the
two shingle sets.

LSH banding is laid out so that it never misses a pair whose estimate reaches the
threshold (see :func:`band_layout`): a query returns exactly the indexed items the
estimator accepts, and bands only save comparisons.

Hashing is deterministic across processes: each distinct word gets a blake2b-derived
64-bit id (cached), and a shingle's hash is CPython's hash of the tuple of those ints
(xxHash-based, not salted, unlike ``hash(str)``).
"""

from __future__ import annotations

import bisect
import hashlib
import math
import threading
from collections import Counter
from collections.abc import Iterable
from typing import Protocol

from chalicelib.domain.models import Conversation, Turn

# Estimated Jaccard of 3-word shingle sets at which two conversations anywhere in a
# dataset count as the same. Measured by bench/quality.py over 20 seeds (800 planted
# light-edit copies: word swaps, a changed sentence, a reordered turn pair, or all
# three): copies score 0.70 and up against their source (median ~0.94), 95.8% reach 0.8;
# the most similar pair of distinct clean conversations scored 0.32.
NEAR_DUPLICATE_THRESHOLD = 0.8
# Lower bar inside one (persona, emotion, topic) cell: conversations generated from the
# same prompt are the ones that collapse into each other, so a heavier rewrite still
# counts there. All 800 copies reach 0.6; same-cell clean pairs stay below 0.33.
CELL_DUPLICATE_THRESHOLD = 0.6

SHINGLE_SIZE = 3
_SLOT_BITS = 7
NUM_PERM = 1 << _SLOT_BITS  # 128 slots; estimate std-dev sqrt(J(1-J)/128) ~= 0.035 at J=0.8
_SHIFT = 64 - _SLOT_BITS  # the top bits of a shingle hash pick its slot
_HALF = 1 << 63
# ASCII punctuation plus the typographic marks LLM text is full of become spaces;
# curly apostrophes (U+2019) become straight ones so both spellings are one word.
_PUNCT = str.maketrans(
    {c: " " for c in '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\u2014\u2013\u2026\u201c\u201d\u00ab\u00bb'}
    | {"\u2019": "'", "\u2018": "'"}
)
_WORD_IDS: dict[str, int] = {}
_WORD_ID_CACHE_MAX = 500_000

Signature = tuple[int, ...]
Cell = tuple[str, str, str]  # (persona, emotion, topic)


def _word_ids(words: list[str]) -> list[int]:
    """Stable 64-bit id per word (blake2b), cached: most words repeat across texts."""
    try:
        return list(map(_WORD_IDS.__getitem__, words))  # C loop; misses are rare
    except KeyError:
        missing = set(words).difference(_WORD_IDS)
        if len(_WORD_IDS) + len(missing) > _WORD_ID_CACHE_MAX:
            _WORD_IDS.clear()  # bound memory on open vocabularies; ids are recomputable
            missing = set(words)
        for w in missing:
            digest = hashlib.blake2b(w.encode(), digest_size=8).digest()
            _WORD_IDS[w] = int.from_bytes(digest, "little")
        return list(map(_WORD_IDS.__getitem__, words))


def tokens(text: str) -> list[str]:
    """Lower-cased words; punctuation separates words (translate+split beats a regex 2x)."""
    return text.lower().translate(_PUNCT).split()


def shingle_hashes(text: str) -> set[int]:
    """Distinct signed 64-bit hashes of the text's 3-word shingles."""
    words = tokens(text)
    if not words:
        return set()
    ids = _word_ids(words)
    if len(ids) < SHINGLE_SIZE:
        return {hash(tuple(ids))}
    # tuple hashing runs in C; this line and the sort below are most of the cost
    return set(map(hash, zip(ids, ids[1:], ids[2:], strict=False)))


def signature_from_hashes(hashes: Iterable[int]) -> Signature:
    """One-permutation MinHash with rotation densification."""
    # descending order: the dict keeps the last (= smallest) hash seen per slot
    mins = {h >> _SHIFT: h for h in sorted(hashes, reverse=True)}
    if not mins:
        return ()
    half = NUM_PERM // 2  # slot keys of signed hashes run -half..half-1
    slots = [mins.get(b) for b in range(-half, half)]
    if len(mins) == NUM_PERM:
        return tuple(v + _HALF for v in slots if v is not None)
    filled = [i for i, v in enumerate(slots) if v is not None]
    out: list[int] = []
    for i, v in enumerate(slots):
        if v is not None:
            out.append(v + _HALF)
            continue
        k = bisect.bisect_left(filled, i)
        src = filled[k] if k < len(filled) else filled[0]
        distance = (src - i) % NUM_PERM
        # offset above the 64-bit range so a borrowed value never equals a real one
        out.append(slots[src] + _HALF + (distance << 64))  # type: ignore[operator]
    return tuple(out)


def minhash_signature(text: str) -> Signature:
    """MinHash signature of ``text``; empty for text without words."""
    return signature_from_hashes(shingle_hashes(text))


def estimate_similarity(a: Signature, b: Signature) -> float:
    """Share of equal slots: estimates the Jaccard similarity of the two shingle sets."""
    if not a or not b:
        return 0.0
    return sum(1 for x, y in zip(a, b, strict=True) if x == y) / NUM_PERM


def band_layout(threshold: float) -> tuple[int, int]:
    """(bands, rows) for an index at ``threshold``.

    A pair whose estimate reaches the threshold differs in at most
    ``floor(NUM_PERM * (1 - threshold))`` slots, and each differing slot spoils at most
    one band; with more bands than that, the pair shares at least one band *for sure*.
    So the index never misses a pair the estimate would accept (no LSH false negatives),
    and the most rows per band that keeps this guarantee gives the fewest candidates.
    """
    bands, rows = NUM_PERM, 1
    for r in (2, 4, 8, 16, 32, 64):
        if NUM_PERM % r == 0 and min_band_hits(threshold, NUM_PERM // r) >= 1:
            bands, rows = NUM_PERM // r, r
    return bands, rows


def min_band_hits(threshold: float, bands: int) -> int:
    """Fewest shared bands a pair at or above ``threshold`` can have (see band_layout)."""
    need = math.ceil(threshold * NUM_PERM - 1e-9)  # equal slots needed
    return bands - (NUM_PERM - need)


class NearDuplicateIndex:
    """LSH index of MinHash signatures; ``query`` returns ids at or above ``threshold``."""

    def __init__(self, threshold: float = NEAR_DUPLICATE_THRESHOLD) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")
        self.threshold = threshold
        self.bands, self.rows = band_layout(threshold)
        self.min_hits = min_band_hits(threshold, self.bands)
        self._signatures: dict[str, Signature] = {}
        self._order: dict[str, int] = {}
        self._seq = 0
        # bucket value: one id (str) or, once a band collides, a list of ids; nearly all
        # buckets hold one id, and not allocating a list for each keeps GC work low
        self._buckets: list[dict[int, str | list[str]]] = [{} for _ in range(self.bands)]

    def __len__(self) -> int:
        return len(self._signatures)

    def __contains__(self, conversation_id: object) -> bool:
        return conversation_id in self._signatures

    def _band_keys(self, sig: Signature) -> list[int]:
        r = self.rows
        return [hash(sig[b * r : (b + 1) * r]) for b in range(self.bands)]

    def add(self, conversation_id: str, text: str) -> None:
        self.add_signature(conversation_id, minhash_signature(text))

    def add_signature(
        self, conversation_id: str, sig: Signature, keys: list[int] | None = None
    ) -> None:
        if conversation_id in self._signatures:
            self.remove(conversation_id)
        if not sig:
            return  # nothing to compare: wordless texts are never duplicates
        self._signatures[conversation_id] = sig
        self._order[conversation_id] = self._seq
        self._seq += 1
        for bucket, key in zip(self._buckets, keys or self._band_keys(sig), strict=True):
            held = bucket.get(key)
            if held is None:
                bucket[key] = conversation_id
            elif isinstance(held, str):
                bucket[key] = [held, conversation_id]
            else:
                held.append(conversation_id)

    def remove(self, conversation_id: str) -> None:
        sig = self._signatures.pop(conversation_id, None)
        if sig is None:
            return
        self._order.pop(conversation_id, None)
        for bucket, key in zip(self._buckets, self._band_keys(sig), strict=True):
            held = bucket.get(key)
            if held == conversation_id:
                del bucket[key]
            elif isinstance(held, list) and conversation_id in held:
                held.remove(conversation_id)
                if len(held) == 1:
                    bucket[key] = held[0]

    def query(self, text: str) -> list[tuple[str, float]]:
        return self.query_signature(minhash_signature(text))

    def query_signature(
        self, sig: Signature, keys: list[int] | None = None
    ) -> list[tuple[str, float]]:
        """Indexed ids with estimated similarity >= threshold, most similar (then
        earliest added) first."""
        if not sig:
            return []
        shared: Counter[str] = Counter()
        for bucket, key in zip(self._buckets, keys or self._band_keys(sig), strict=True):
            held = bucket.get(key)
            if held is None:
                continue
            if isinstance(held, str):
                shared[held] += 1
            else:
                shared.update(held)
        hits = []
        for cid, bands in shared.items():
            if bands < self.min_hits:
                continue  # cannot reach the threshold: skip the slot-by-slot comparison
            sim = estimate_similarity(sig, self._signatures[cid])
            if sim >= self.threshold:
                hits.append((cid, round(sim, 4)))
        hits.sort(key=lambda h: (-h[1], self._order[h[0]]))
        return hits

    def check_in(self, conversation_id: str, sig: Signature) -> list[tuple[str, float]]:
        """Query, then add: what a single pass over a dataset does per item (band keys
        computed once)."""
        if not sig:
            return []
        keys = self._band_keys(sig)
        hits = self.query_signature(sig, keys)
        self.add_signature(conversation_id, sig, keys)
        return hits


def find_near_duplicates(
    items: Iterable[tuple[str, str]], threshold: float = NEAR_DUPLICATE_THRESHOLD
) -> dict[str, tuple[str, float]]:
    """``{id: (dup_of_id, similarity)}`` over ``(id, text)`` pairs.

    In input order, each item is compared with everything before it; the later one is
    the duplicate and points at its most similar predecessor. Duplicates stay in the
    index so a chain of copies is caught even when it drifts from the original.
    """
    index = NearDuplicateIndex(threshold)
    found: dict[str, tuple[str, float]] = {}
    for cid, text in items:
        hits = index.check_in(cid, minhash_signature(text))
        if hits:
            found[cid] = hits[0]
    return found


def find_cell_duplicates(
    items: Iterable[tuple[str, Cell, str]], threshold: float = CELL_DUPLICATE_THRESHOLD
) -> dict[str, tuple[str, float]]:
    """Like :func:`find_near_duplicates` but only within each (persona, emotion, topic)
    cell, at the lower cell threshold. Items are ``(id, cell, text)``."""
    indexes: dict[Cell, NearDuplicateIndex] = {}
    found: dict[str, tuple[str, float]] = {}
    for cid, cell, text in items:
        index = indexes.get(cell)
        if index is None:
            index = indexes[cell] = NearDuplicateIndex(threshold)
        hits = index.check_in(cid, minhash_signature(text))
        if hits:
            found[cid] = hits[0]
    return found


def find_dataset_duplicates(
    items: Iterable[tuple[str, Cell, str]],
    threshold: float = NEAR_DUPLICATE_THRESHOLD,
    cell_threshold: float = CELL_DUPLICATE_THRESHOLD,
) -> dict[str, tuple[str, float]]:
    """Both detectors in one pass: dataset-wide at ``threshold`` and same-cell at
    ``cell_threshold``; each text is hashed once. The more similar match wins."""
    dataset_index = NearDuplicateIndex(threshold)
    cell_indexes: dict[Cell, NearDuplicateIndex] = {}
    found: dict[str, tuple[str, float]] = {}
    for cid, cell, text in items:
        sig = minhash_signature(text)
        cell_index = cell_indexes.get(cell)
        if cell_index is None:
            cell_index = cell_indexes[cell] = NearDuplicateIndex(cell_threshold)
        hits = dataset_index.check_in(cid, sig) + cell_index.check_in(cid, sig)
        if hits:
            found[cid] = max(hits, key=lambda h: h[1])
    return found


def conversation_text(turns: Iterable[Turn]) -> str:
    """Turn contents in turn order, joined: what the duplicate detectors compare."""
    ordered = sorted(turns, key=lambda t: t.turn_number)
    return "\n".join(t.content for t in ordered if isinstance(t.content, str))


def cell_of(conversation: Conversation) -> Cell:
    return (conversation.persona, conversation.emotion, conversation.topic)


class ConversationTexts(Protocol):
    """The read model's view of a dataset: (conversation, turn text) of each generated one."""

    def texts(
        self, tenant_id: str, dataset_id: str, max_age: float = 0.0
    ) -> list[tuple[Conversation, str]]: ...


# A view up to this old is fine for near-duplicate checks: this container adds every
# conversation it scores at once, others show up within 10 s. Refreshing more often
# re-reads the overlap window of recent changes on every item.
DUPLICATE_VIEW_MAX_AGE_SECONDS = 10.0


class DatasetDuplicates:
    """The most similar other conversation of a dataset: >= NEAR_DUPLICATE_THRESHOLD
    estimated Jaccard anywhere, or >= CELL_DUPLICATE_THRESHOLD within the same persona x
    emotion x topic cell (where conversations collapse into each other). The MinHash
    index is kept per dataset (one per container) and grows incrementally."""

    def __init__(self, source: ConversationTexts) -> None:
        self._source = source
        self._lock = threading.RLock()
        self._indexes: dict[tuple[str, str], NearDuplicateIndex] = {}

    def find(
        self, tenant_id: str, dataset_id: str, conversation_id: str, text: str
    ) -> tuple[str, float] | None:
        key = (tenant_id, dataset_id)
        others = self._source.texts(tenant_id, dataset_id, max_age=DUPLICATE_VIEW_MAX_AGE_SECONDS)
        signature = minhash_signature(text)
        with self._lock:
            index = self._indexes.setdefault(key, NearDuplicateIndex(CELL_DUPLICATE_THRESHOLD))
            cells = {c.conversation_id: cell_of(c) for c, _ in others}
            fresh = [
                (c.conversation_id, t)
                for c, t in others
                if c.conversation_id not in index and c.conversation_id != conversation_id
            ]
        # Hashing outside the lock: other threads' checks go on meanwhile.
        signatures = [(cid, minhash_signature(t)) for cid, t in fresh]
        with self._lock:
            for cid, sig in signatures:
                index.add_signature(cid, sig)
            mine = cells.get(conversation_id)
            matches = [
                (cid, sim)
                for cid, sim in index.query_signature(signature)
                if cid != conversation_id
                and (
                    sim >= NEAR_DUPLICATE_THRESHOLD or (mine is not None and cells.get(cid) == mine)
                )
            ]
            index.add_signature(conversation_id, signature)
        return matches[0] if matches else None
