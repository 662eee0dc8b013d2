"""Token counts of exported records: per record, per split, with the tokenizer named.

Every record is counted with a cheap, stated approximation while it is written
(``APPROXIMATION``: characters / 3.5 per message plus a few tokens of framing). When an
Anthropic key is configured, a :class:`~chalicelib.domain.ports.TokenCounter` (the
Messages API's free ``count_tokens`` endpoint) counts a deterministic sample of the
records exactly, in a few threads while the files are written, and the approximation is
calibrated by the sample's ratio. ``count_tokens`` is rate limited per minute like the
Messages API, so an export never makes one call per record: an export of up to
``SAMPLE_SIZE`` records is counted exactly, a larger one is calibrated from that many.
A counter that fails (rate limit, network) leaves the approximation in place and says so.
"""

from __future__ import annotations

import logging
import math
from array import array
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Final

from chalicelib.domain.ports import TokenCounter
from chalicelib.export.formats import TurnLike

log = logging.getLogger(__name__)

CHARS_PER_TOKEN: Final = 3.5
MESSAGE_OVERHEAD: Final = 4  # role and turn framing per message
APPROXIMATION: Final = (
    f"approximation: ceil(characters / {CHARS_PER_TOKEN}) per message"
    f" + {MESSAGE_OVERHEAD} per message (system prompt included)"
)
THRESHOLDS: Final = (2048, 4096, 8192, 16384)
SAMPLE_SIZE: Final = 24  # records counted exactly per export (count_tokens calls)
COUNT_WORKERS: Final = 4
COUNT_TIMEOUT_SECONDS: Final = 20.0


def approx_text_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD


def approx_tokens(system: str | None, turns: Sequence[TurnLike]) -> int:
    """The approximate tokens of one record: its system prompt and every turn."""
    total = approx_text_tokens(system) if system else 0
    chars = 0
    for t in turns:
        chars += len(t.content)
    # ceil per message, summed: within one token per message of summing exact ceilings.
    return total + math.ceil(chars / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD * len(turns)


def summarise(values: Sequence[int]) -> dict[str, Any]:
    """min / mean / p95 / max and how many records exceed each threshold."""
    if not values:
        return {
            "records": 0,
            "total": 0,
            "min": None,
            "mean": None,
            "p95": None,
            "max": None,
            "over": {str(t): 0 for t in THRESHOLDS},
        }
    ordered = sorted(values)
    n = len(ordered)
    # Nearest-rank percentile: the smallest value with at least 95% of records at or below.
    p95 = ordered[max(math.ceil(0.95 * n) - 1, 0)]
    return {
        "records": n,
        "total": sum(ordered),
        "min": ordered[0],
        "mean": round(sum(ordered) / n, 1),
        "p95": p95,
        "max": ordered[-1],
        "over": {str(t): n - _count_at_most(ordered, t) for t in THRESHOLDS},
    }


def _count_at_most(ordered: Sequence[int], limit: int) -> int:
    lo, hi = 0, len(ordered)
    while lo < hi:
        mid = (lo + hi) // 2
        if ordered[mid] <= limit:
            lo = mid + 1
        else:
            hi = mid
    return lo


class CompactIds:
    """Ids appended into one buffer: each costs its UTF-8 length, not a str object and a
    list slot (~90 bytes); an export of 100,000 keeps one allocation per split, not
    100,000 small objects that pin memory for the rest of the run."""

    __slots__ = ("_buffer", "_ends")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._ends: array[int] = array("L")

    def append(self, value: str) -> None:
        self._buffer += value.encode("utf-8")
        self._ends.append(len(self._buffer))

    def __len__(self) -> int:
        return len(self._ends)

    def __iter__(self) -> Iterator[str]:
        start = 0
        for end in self._ends:
            yield self._buffer[start:end].decode("utf-8")
            start = end


@dataclass(slots=True)
class TokenTally:
    """Per-record approximate counts of one export, by split (compact arrays), plus the
    exact-count sample when a counter is configured."""

    counter: TokenCounter | None = None
    sample_size: int = SAMPLE_SIZE
    ids: dict[str, CompactIds] = field(default_factory=dict)
    values: dict[str, array[int]] = field(default_factory=dict)
    _sample: list[tuple[int, Future[int]]] = field(default_factory=list)
    _pool: ThreadPoolExecutor | None = None
    _ratio: float | None = None
    _tokenizer: dict[str, Any] | None = None

    def add(
        self, split: str, conversation_id: str, system: str | None, turns: Sequence[TurnLike]
    ) -> int:
        approx = self.sample(system, turns)
        self.add_count(split, conversation_id, approx)
        return approx

    def sample(self, system: str | None, turns: Sequence[TurnLike]) -> int:
        """The record's approximate tokens; counted exactly too while the sample lasts
        (a split export counts as it reads, and files the counts once split)."""
        approx = approx_tokens(system, turns)
        if self.counter is not None and len(self._sample) < self.sample_size:
            self._submit(approx, system, turns)
        return approx

    def add_count(self, split: str, conversation_id: str, approx: int) -> None:
        self.ids.setdefault(split, CompactIds()).append(conversation_id)
        self.values.setdefault(split, array("l")).append(approx)

    def _submit(self, approx: int, system: str | None, turns: Sequence[TurnLike]) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(COUNT_WORKERS, thread_name_prefix="count-tokens")
        counter = self.counter
        assert counter is not None
        messages = [{"role": t.role, "content": t.content} for t in turns]
        self._sample.append((approx, self._pool.submit(counter.count, system, messages)))

    def per_record(self) -> dict[str, int]:
        """conversation_id -> tokens (calibrated when a sample was counted)."""
        return {cid: tokens for cid, _, tokens in self.records()}

    def records(self) -> Iterator[tuple[str, str, int]]:
        """(conversation_id, split, tokens) per record in the order written, without a
        mapping of them all (a manifest of 100,000 records streams from here)."""
        ratio = self._ratio
        for split, ids in self.ids.items():
            for cid, v in zip(ids, self.values[split], strict=True):
                yield cid, split, (v if ratio is None else max(round(v * ratio), 1))

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.values.values())

    def finish(self) -> None:
        """Collect the exact sample (bounded wait) and decide the tokenizer description."""
        total = sum(len(v) for v in self.values.values())
        if self.counter is None:
            self._tokenizer = {
                "name": "approximation",
                "method": APPROXIMATION,
                "note": "set ANTHROPIC_API_KEY to count with Anthropic's count_tokens",
            }
            return
        futures = [f for _, f in self._sample]
        done, pending = wait(futures, timeout=COUNT_TIMEOUT_SECONDS)
        for f in pending:
            f.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        exact: list[tuple[int, int]] = []
        errors: list[str] = []
        for approx, f in self._sample:
            if f not in done:
                continue
            try:
                exact.append((approx, int(f.result())))
            except Exception as e:  # rate limited, network: the approximation stays
                errors.append(f"{type(e).__name__}: {e}"[:200])
        name = f"anthropic count_tokens ({self.counter.model})"
        if not exact or errors:
            log.warning("count_tokens failed for %d of %d records", len(errors), len(futures))
            self._tokenizer = {
                "name": "approximation",
                "method": APPROXIMATION,
                "note": f"{name} failed ({errors[0] if errors else 'timed out'}); approximated",
            }
            return
        self._ratio = sum(e for _, e in exact) / max(sum(a for a, _ in exact), 1)
        exhaustive = len(exact) == total
        self._tokenizer = {
            "name": name,
            "method": "exact" if exhaustive else "calibrated",
            "sample": len(exact),
            "ratio_to_approximation": round(self._ratio, 4),
            **(
                {}
                if exhaustive
                else {
                    "note": (
                        f"{len(exact)} records counted exactly; the others are the"
                        f" approximation ({APPROXIMATION}) times the sample's ratio"
                    )
                }
            ),
        }

    def tokenizer(self) -> dict[str, Any]:
        if self._tokenizer is None:
            self.finish()
        assert self._tokenizer is not None
        return self._tokenizer

    def statistics(self) -> dict[str, Any]:
        """The tokenizer and per-split (and overall) statistics."""
        tokenizer = self.tokenizer()
        ratio = self._ratio
        per_split: dict[str, Any] = {}
        everything: list[int] = []
        for split, values in self.values.items():
            counted = list(values) if ratio is None else [max(round(v * ratio), 1) for v in values]
            per_split[split] = summarise(counted)
            everything += counted
        return {
            "tokenizer": tokenizer,
            "counted": "the record as trained: system prompt and every turn",
            "splits": per_split,
            "all": summarise(everything),
        }


class AnthropicTokenCounter:
    """``messages.count_tokens`` through the anthropic SDK (free; rate limited per minute)."""

    def __init__(self, client: Any, model: str) -> None:
        self._client = client
        self._model = model

    @property
    def name(self) -> str:
        return "anthropic count_tokens"

    @property
    def model(self) -> str:
        return self._model

    def count(self, system: str | None, messages: Sequence[Mapping[str, str]]) -> int:
        kwargs: dict[str, Any] = {"model": self._model, "messages": list(messages)}
        if system:
            kwargs["system"] = system
        return int(self._client.messages.count_tokens(**kwargs).input_tokens)
