"""Streaming training-file writers, one per :class:`ExportFormat`.

Every writer is pure (no AWS, no clock unless ``export_date`` is left unset) and turns
an iterable of conversations with their turns (:class:`ConversationTurns`: a
:class:`ConversationWithTurns`, or the export's lighter :class:`ExportItem`) into
``bytes`` chunks of roughly
``ExportOptions.chunk_size``, so the export service can feed an S3 multipart upload
without holding the file in memory.

Conversations a format cannot express are never altered to fit: ``validate_conversation``
lists the reasons, and the writer either skips the conversation and records it in an
:class:`ExportReport` or, when no report is given, raises. Every record is also checked
with the format's record rules (on the object, before serialisation, to stay cheap)
before it is yielded.

Turns are written in ``turn_number`` order (storage order is normally already that);
duplicate turn numbers make a conversation inexpressible in every format.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from operator import attrgetter
from typing import Any, ClassVar, Final, NamedTuple, Protocol

from chalicelib.domain.errors import UnprocessableError, ValidationError
from chalicelib.domain.models import Conversation, ExportFormat, Tier


class TurnLike(Protocol):
    """What a writer reads of a turn: a :class:`Turn` or a :class:`StoredTurn`."""

    @property
    def turn_number(self) -> int: ...
    @property
    def role(self) -> str: ...
    @property
    def content(self) -> str: ...


class ConversationTurns(Protocol):
    """What a writer reads of a conversation: a :class:`ConversationWithTurns` or an
    :class:`ExportItem`."""

    @property
    def conversation(self) -> Conversation: ...
    @property
    def turns(self) -> Sequence[TurnLike]: ...


class ExportItem(NamedTuple):
    """A conversation and its turns as the export streams them (no model validation:
    both were validated when stored)."""

    conversation: Conversation
    turns: Sequence[TurnLike]


Source = Iterable[ConversationTurns] | Callable[[], Iterable[ConversationTurns]]
"""Conversations to write. Generic needs a re-iterable source (a callable returning a fresh
iterator, or a collection such as a list) because its header is computed in a first pass."""

DEFAULT_CHUNK_SIZE: Final = 64 * 1024
QUALITY_BAR: Final = 8.0  # "share >= 8" in the generic header

_ROLES: Final = frozenset({"user", "assistant"})
# Characters that make Excel/LibreOffice/Sheets treat a cell as a formula (OWASP CSV injection).
_FORMULA_PREFIXES: Final = frozenset("=+-@\t\r")
# Valid inside JSON strings but split by str.splitlines(); escape so every consumer sees one
# record per line.
_LINE_SEPARATORS: Final = re.compile("[\u2028\u2029\x85]")
_JSON_SEPARATORS: Final = (",", ":")


# The split label written while the split is not known yet (a split export renders each
# record as it reads it, and learns its split once everything is read): a string no
# record holds in that position, replaced by the label when the record is routed.
SPLIT_PLACEHOLDER: Final = "\x00split\x00"
_PLACEHOLDER_JSON: Final = '"\\u0000split\\u0000"'


class _AnySplit(Mapping[str, str]):
    """``ExportOptions.splits`` for rendering before the split is known."""

    def __getitem__(self, key: str) -> str:
        return SPLIT_PLACEHOLDER

    def get(self, key: str, default: Any = None) -> str:
        return SPLIT_PLACEHOLDER

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


ANY_SPLIT: Final[Mapping[str, str]] = _AnySplit()


class InexpressibleConversationError(UnprocessableError):
    """Raised by ``write`` without a report when a conversation cannot be expressed."""


@dataclass(frozen=True, slots=True)
class ExportOptions:
    system_prompt: str | None = None
    # openai only: add "weight" to assistant messages; with weight_last_assistant_only, all
    # but the final assistant message get weight 0 (train on the last answer only).
    assistant_weights: bool = False
    weight_last_assistant_only: bool = False
    # conversation_id -> split name; adds a "split" column/field (csv, hf_messages, generic,
    # sharegpt: the formats whose consumers accept extra fields).
    splits: Mapping[str, str] | None = None
    export_date: datetime | None = None  # generic header; now (UTC) when unset
    chunk_size: int = DEFAULT_CHUNK_SIZE
    # csv only: prefix cells that a spreadsheet would evaluate as a formula with ``'``
    # (safe to open in Excel); False writes the text exactly (for training pipelines).
    neutralise_formulas: bool = True

    def __post_init__(self) -> None:
        # A blank prompt from a form means "none", not a record with an empty system message.
        if self.system_prompt is not None and not self.system_prompt.strip():
            object.__setattr__(self, "system_prompt", None)
        if self.chunk_size < 1:
            raise ValidationError("chunk_size must be positive", {"chunk_size": self.chunk_size})


@dataclass(slots=True)
class SkippedConversation:
    conversation_id: str
    reasons: list[str]


@dataclass(slots=True)
class ExportReport:
    """Filled while the stream is consumed; final only once ``complete`` is true."""

    format: ExportFormat
    written: int = 0
    skipped: list[SkippedConversation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    split_counts: dict[str, int] = field(default_factory=dict)
    bytes_written: int = 0
    complete: bool = False

    def skip(self, conversation_id: str, reasons: list[str]) -> None:
        self.skipped.append(SkippedConversation(conversation_id, reasons))

    def skipped_records(self) -> list[dict[str, str]]:
        """The shape ``ExportRecord.skipped`` stores."""
        return [
            {"conversation_id": s.conversation_id, "reason": "; ".join(s.reasons)}
            for s in self.skipped
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format.value,
            "written": self.written,
            "skipped": self.skipped_records(),
            "warnings": list(self.warnings),
            "split_counts": dict(self.split_counts),
            "bytes_written": self.bytes_written,
            "complete": self.complete,
        }


# --------------------------------------------------------------------------- helpers


def _dumps(obj: Any) -> str:
    text = json.dumps(obj, ensure_ascii=False, separators=_JSON_SEPARATORS)
    # Substring tests, not the regex: they are ~100x faster on a 4 KB line, and most
    # lines are plain ASCII (then none of the three characters can be there).
    if not text.isascii() and ("\u2028" in text or "\u2029" in text or "\x85" in text):
        text = _LINE_SEPARATORS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text


def _ordered_turns(turns: Sequence[TurnLike]) -> Sequence[TurnLike]:
    # Storage returns turns in order; sort only when it did not (cheap linear check).
    for i in range(1, len(turns)):
        if turns[i].turn_number <= turns[i - 1].turn_number:
            return sorted(turns, key=attrgetter("turn_number"))
    return turns


def _blank(text: object) -> bool:
    # isspace() stops at the first non-space character; strip() would copy the string.
    return not isinstance(text, str) or not text or text.isspace()


def _common_reasons(turns: Sequence[TurnLike]) -> list[str]:
    if not turns:
        return ["conversation has no turns"]
    reasons: list[str] = []
    prev: int | None = None
    for t in turns:
        if t.turn_number == prev:
            reasons.append(f"duplicate turn_number {t.turn_number}")
        prev = t.turn_number
        if t.role not in _ROLES:
            reasons.append(f"turn {t.turn_number} has unknown role {t.role!r}")
    return reasons


def _blank_turn_reasons(turns: Sequence[TurnLike]) -> list[str]:
    return [f"turn {t.turn_number} has empty content" for t in turns if _blank(t.content)]


def _trainable_reasons(turns: Sequence[TurnLike]) -> list[str]:
    """openai / hf_messages: any order is accepted, but there must be something to learn."""
    reasons = _common_reasons(turns)
    if turns:
        reasons += _blank_turn_reasons(turns)
        if not any(t.role == "assistant" for t in turns):
            reasons.append("no assistant turn to train on")
    return reasons


def _alternation_reasons(turns: Sequence[TurnLike], fmt: str) -> list[str]:
    """First user, last assistant, strict alternation (Bedrock Claude, ShareGPT trainers)."""
    reasons: list[str] = []
    if turns[0].role != "user":
        reasons.append(f"first turn is {turns[0].role!r}; {fmt} requires it to be 'user'")
    if turns[-1].role != "assistant":
        reasons.append(f"last turn is {turns[-1].role!r}; {fmt} requires it to be 'assistant'")
    for a, b in pairwise(turns):
        if a.role == b.role:
            reasons.append(
                f"turns {a.turn_number} and {b.turn_number} are both {a.role!r};"
                f" {fmt} requires user/assistant alternation"
            )
    return reasons


def _parse_json(record: str | bytes | Mapping[str, Any]) -> tuple[Any, list[str]]:
    if isinstance(record, str | bytes):
        try:
            return json.loads(record), []
        except ValueError as exc:
            return None, [f"not valid JSON: {exc}"]
    return record, []


def _chunked(texts: Iterable[str], size: int, report: ExportReport | None) -> Iterator[bytes]:
    # Join then encode once per chunk: far cheaper than encoding and yielding every line.
    buf: list[str] = []
    pending = 0
    for text in texts:
        buf.append(text)
        pending += len(text)
        if pending >= size:
            chunk = "".join(buf).encode("utf-8")
            buf.clear()
            pending = 0
            if report is not None:
                report.bytes_written += len(chunk)
            yield chunk
    if buf:
        chunk = "".join(buf).encode("utf-8")
        if report is not None:
            report.bytes_written += len(chunk)
        yield chunk
    if report is not None:
        report.complete = True


def _open_source(source: Source) -> Callable[[], Iterable[ConversationTurns]]:
    if callable(source):
        return source
    return lambda: source


def _is_one_shot(source: Source) -> bool:
    return not callable(source) and iter(source) is source


# --------------------------------------------------------------------------- base class


class FormatWriter(ABC):
    format: ClassVar[ExportFormat]
    extension: ClassVar[str]
    content_type: ClassVar[str]

    # --- public API

    def validate_conversation(self, cwt: ConversationTurns) -> list[str]:
        """Reasons ``cwt`` cannot be expressed in this format (empty when it can)."""
        return self._reasons(cwt, _ordered_turns(cwt.turns))

    @abstractmethod
    def validate_record(self, record: Any) -> list[str]:
        """Check one written record (line text, bytes or parsed object) against the rules."""

    def write(
        self,
        source: Source,
        options: ExportOptions | None = None,
        report: ExportReport | None = None,
    ) -> Iterator[bytes]:
        """Stream the file. Without ``report`` an inexpressible conversation raises
        :class:`InexpressibleConversationError`; with one it is skipped and recorded."""
        opts = options or ExportOptions()
        return _chunked(self._texts(source, opts, report), opts.chunk_size, report)

    # --- per-format hooks

    def _reasons(self, cwt: ConversationTurns, turns: Sequence[TurnLike]) -> list[str]:
        return _common_reasons(turns)

    @abstractmethod
    def _render(
        self, cwt: ConversationTurns, turns: Sequence[TurnLike], opts: ExportOptions
    ) -> tuple[Any, str]:
        """(record object for the record check, serialised text)."""

    @abstractmethod
    def _check(self, obj: Any) -> list[str]:
        """Record rules applied to the object ``_render`` produced."""

    def _texts(
        self, source: Source, opts: ExportOptions, report: ExportReport | None
    ) -> Iterator[str]:
        return self._accepted(_open_source(source)(), opts, report)

    # --- shared loop

    def _accepted(
        self,
        conversations: Iterable[ConversationTurns],
        opts: ExportOptions,
        report: ExportReport | None,
        on_written: Callable[[ConversationTurns, Sequence[TurnLike]], None] | None = None,
    ) -> Iterator[str]:
        accept = self._accept_one
        for cwt in conversations:
            text = accept(cwt, opts, report, on_written)
            if text is not None:
                yield text

    def _accept_one(
        self,
        cwt: ConversationTurns,
        opts: ExportOptions,
        report: ExportReport | None,
        on_written: Callable[[ConversationTurns, Sequence[TurnLike]], None] | None = None,
        validated: bool = False,
    ) -> str | None:
        """One conversation's record text, or None when it was skipped (and reported).
        ``validated``: ``validate_conversation`` already passed it (the record itself is
        still checked)."""
        cid = cwt.conversation.conversation_id
        turns = _ordered_turns(cwt.turns)
        reasons = [] if validated else self._reasons(cwt, turns)
        text = ""
        if not reasons:
            obj, text = self._render(cwt, turns, opts)
            bad = self._check(obj)
            if bad:
                reasons = [f"written record failed {self.format.value} check: {r}" for r in bad]
        if reasons:
            if report is None:
                raise InexpressibleConversationError(
                    f"conversation {cid} cannot be written as {self.format.value}",
                    {"conversation_id": cid, "reasons": reasons},
                )
            report.skip(cid, reasons)
            return None
        if report is not None:
            report.written += 1
            splits = opts.splits
            if splits is not None:
                name = splits.get(cid, "unassigned")
                report.split_counts[name] = report.split_counts.get(name, 0) + 1
        if on_written is not None:
            on_written(cwt, turns)
        return text

    # --- render first, label later (a split export)

    # Where the split label goes: "record" once per record (JSON formats), "row" once per
    # row (csv), "none" (formats that cannot carry one).
    labels: ClassVar[str] = "none"

    def render_unlabelled(
        self, cwt: ConversationTurns, opts: ExportOptions
    ) -> tuple[str | None, list[str]]:
        """(the record text with ``SPLIT_PLACEHOLDER`` for its split label, or None;
        the reasons it cannot be written). ``opts.splits`` must be ``ANY_SPLIT`` for a
        format that carries labels. None with no reasons: the record cannot hold the
        placeholder unambiguously (its own text contains it); render it once labelled."""
        turns = _ordered_turns(cwt.turns)
        reasons = self._reasons(cwt, turns)
        if reasons:
            return None, reasons
        obj, text = self._render(cwt, turns, opts)
        bad = self._check(obj)
        if bad:
            return None, [f"written record failed {self.format.value} check: {r}" for r in bad]
        if self.labels == "none":
            return text, []
        expected = len(obj) if self.labels == "row" else 1
        found = text.count(_PLACEHOLDER_JSON if self.labels == "record" else SPLIT_PLACEHOLDER)
        return (text if found == expected else None), []

    def labelled(self, text: str, split: str) -> str:
        """A ``render_unlabelled`` record with its split label in place."""
        if self.labels == "record":
            return text.replace(_PLACEHOLDER_JSON, _dumps(split))
        if self.labels == "row":
            return text.replace(SPLIT_PLACEHOLDER, csv_cell(split))
        return text

    # --- push-style file pieces (FileStream): what surrounds and separates records

    def _preamble(self, opts: ExportOptions) -> str:
        return ""

    def _separated(self, n: int, text: str) -> str:
        return text

    def _epilogue(self, opts: ExportOptions) -> str:
        return ""


class _JsonlWriter(FormatWriter):
    extension = "jsonl"
    content_type = "application/x-ndjson"

    def validate_record(self, record: Any) -> list[str]:
        obj, errors = _parse_json(record)
        if errors:
            return errors
        return self._check(obj)

    def _render(
        self, cwt: ConversationTurns, turns: Sequence[TurnLike], opts: ExportOptions
    ) -> tuple[Any, str]:
        obj = self._build(cwt, turns, opts)
        return obj, _dumps(obj) + "\n"

    @abstractmethod
    def _build(
        self, cwt: ConversationTurns, turns: Sequence[TurnLike], opts: ExportOptions
    ) -> dict[str, Any]: ...


def _check_messages(
    messages: object,
    *,
    allowed_roles: frozenset[str],
    key_role: str,
    key_content: str,
    extra_keys: frozenset[str] = frozenset(),
) -> tuple[list[str], list[str]]:
    """Shape checks shared by the message-list formats; returns (errors, roles)."""
    if not isinstance(messages, list) or not messages:
        return ["messages must be a non-empty list"], []
    errors: list[str] = []
    roles: list[str] = []
    required = {key_role, key_content}
    allowed = required | extra_keys
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            errors.append(f"message {i} is not an object")
            continue
        keys = m.keys()
        # The common case (exactly the required keys) in one comparison.
        if keys != required and (not required <= keys or not keys <= allowed):
            errors.append(f"message {i} has keys {sorted(keys)}; expected {sorted(required)}")
        role = m.get(key_role)
        if role not in allowed_roles:
            errors.append(f"message {i} has invalid {key_role} {role!r}")
        roles.append(str(role))
        content = m.get(key_content)
        if not isinstance(content, str) or not content or content.isspace():  # _blank, inlined
            errors.append(f"message {i} has empty {key_content}")
    return errors, roles


def _check_alternation(roles: list[str], first: str, last: str, system: str | None) -> list[str]:
    body = roles[1:] if system is not None and roles and roles[0] == system else roles
    if system is not None and system in body:
        return [f"{system!r} may only be the first message"]
    if not body:
        return ["no conversation messages"]
    errors: list[str] = []
    if body[0] != first:
        errors.append(f"first message must be {first!r}, got {body[0]!r}")
    if body[-1] != last:
        errors.append(f"last message must be {last!r}, got {body[-1]!r}")
    if any(a == b for a, b in pairwise(body)):
        errors.append("roles must alternate")
    return errors


# --------------------------------------------------------------------------- openai


class OpenAIWriter(_JsonlWriter):
    """OpenAI chat fine-tuning JSONL. Lenient on order (the API accepts any), strict on
    having something to train on: at least one non-empty assistant message."""

    format = ExportFormat.OPENAI
    _message_roles: ClassVar[frozenset[str]] = frozenset({"system", "user", "assistant"})

    def _reasons(self, cwt: ConversationTurns, turns: Sequence[TurnLike]) -> list[str]:
        return _trainable_reasons(turns)

    def _build(
        self, cwt: ConversationTurns, turns: Sequence[TurnLike], opts: ExportOptions
    ) -> dict[str, Any]:
        messages: list[dict[str, Any]] = []
        if opts.system_prompt is not None:
            messages.append({"role": "system", "content": opts.system_prompt})
        if not opts.assistant_weights:
            messages += [{"role": t.role, "content": t.content} for t in turns]
            return {"messages": messages}
        last = -1
        if opts.weight_last_assistant_only:
            last = max(i for i, t in enumerate(turns) if t.role == "assistant")
        for i, t in enumerate(turns):
            if t.role == "assistant":
                weight = 1 if last < 0 or i == last else 0
                messages.append({"role": t.role, "content": t.content, "weight": weight})
            else:
                messages.append({"role": t.role, "content": t.content})
        return {"messages": messages}

    def _check(self, obj: Any) -> list[str]:
        if not isinstance(obj, dict) or obj.keys() != {"messages"}:
            return ['record must be an object with exactly the key "messages"']
        messages = obj["messages"]
        errors, roles = _check_messages(
            messages,
            allowed_roles=self._message_roles,
            key_role="role",
            key_content="content",
            extra_keys=frozenset({"weight"}),
        )
        if errors:
            return errors
        if "system" in roles[1:]:
            errors.append("'system' may only be the first message")
        if "assistant" not in roles:
            errors.append("no assistant message")
        weighted = False
        trained = False
        for i, m in enumerate(messages):
            if "weight" in m:
                weighted = True
                w = m["weight"]
                if m["role"] != "assistant":
                    errors.append(f"message {i}: weight is only allowed on assistant messages")
                elif type(w) is not int or w not in (0, 1):
                    errors.append(f"message {i}: weight must be 0 or 1")
                elif w == 1:
                    trained = True
        if weighted and not trained:
            errors.append("every assistant message has weight 0")
        return errors


# --------------------------------------------------------------------------- anthropic


class AnthropicWriter(_JsonlWriter):
    """Claude fine-tuning on Amazon Bedrock: ``{"system"?, "messages"}`` and nothing else;
    first message user, last assistant, strict alternation, no blank content."""

    format = ExportFormat.ANTHROPIC

    def _reasons(self, cwt: ConversationTurns, turns: Sequence[TurnLike]) -> list[str]:
        reasons = _common_reasons(turns)
        if turns:
            reasons += _alternation_reasons(turns, "Bedrock Claude fine-tuning")
            reasons += _blank_turn_reasons(turns)
        return reasons

    def _build(
        self, cwt: ConversationTurns, turns: Sequence[TurnLike], opts: ExportOptions
    ) -> dict[str, Any]:
        messages = [{"role": t.role, "content": t.content} for t in turns]
        if opts.system_prompt is None:
            return {"messages": messages}
        return {"system": opts.system_prompt, "messages": messages}

    def _check(self, obj: Any) -> list[str]:
        if not isinstance(obj, dict) or "messages" not in obj:
            return ['record must be an object with a "messages" key']
        if not obj.keys() <= {"system", "messages"}:
            return [f"unexpected keys {sorted(obj.keys() - {'system', 'messages'})}"]
        errors: list[str] = []
        if "system" in obj and _blank(obj["system"]):
            errors.append("system must be a non-empty string when present")
        msg_errors, roles = _check_messages(
            obj["messages"], allowed_roles=_ROLES, key_role="role", key_content="content"
        )
        errors += msg_errors
        if roles and not msg_errors:
            errors += _check_alternation(roles, "user", "assistant", None)
        return errors


# --------------------------------------------------------------------------- sharegpt


class ShareGPTWriter(_JsonlWriter):
    """``{"conversations": [{"from", "value"}]}``. Strict alternation starting with human
    and ending with gpt, because the common ShareGPT trainers (LLaMA-Factory, FastChat)
    drop or reject anything else."""

    format = ExportFormat.SHAREGPT
    labels = "record"
    _from: ClassVar[dict[str, str]] = {"user": "human", "assistant": "gpt"}
    _roles: ClassVar[frozenset[str]] = frozenset({"system", "human", "gpt"})

    def _reasons(self, cwt: ConversationTurns, turns: Sequence[TurnLike]) -> list[str]:
        reasons = _common_reasons(turns)
        if turns:
            reasons += _alternation_reasons(turns, "ShareGPT")
            reasons += _blank_turn_reasons(turns)
        return reasons

    def _build(
        self, cwt: ConversationTurns, turns: Sequence[TurnLike], opts: ExportOptions
    ) -> dict[str, Any]:
        to = self._from
        conv = [{"from": to[t.role], "value": t.content} for t in turns]
        if opts.system_prompt is not None:
            conv.insert(0, {"from": "system", "value": opts.system_prompt})
        if opts.splits is not None:
            # ShareGPT readers (LLaMA-Factory, axolotl, FastChat) read the conversations
            # column and ignore others, so the split label can ride along.
            return {
                "conversations": conv,
                "split": opts.splits.get(cwt.conversation.conversation_id),
            }
        return {"conversations": conv}

    def _check(self, obj: Any) -> list[str]:
        if not isinstance(obj, dict) or not (
            obj.keys() == {"conversations"} or obj.keys() == {"conversations", "split"}
        ):
            return ['record must be an object with the key "conversations" (and "split")']
        if "split" in obj and not isinstance(obj["split"], str | None):
            return ["split must be a string or null"]
        errors, roles = _check_messages(
            obj["conversations"], allowed_roles=self._roles, key_role="from", key_content="value"
        )
        if roles and not errors:
            errors += _check_alternation(roles, "human", "gpt", "system")
        return errors


# --------------------------------------------------------------------------- hf_messages

# Column -> allowed JSON types. One type (plus null) per column so Arrow infers a stable
# schema across every block of the file.
_NONE = type(None)
_HF_COLUMNS: Final[dict[str, tuple[type, ...]]] = {
    "messages": (list,),
    "conversation_id": (str,),
    "dataset_id": (str,),
    "title": (str, _NONE),
    "persona": (str,),
    "emotion": (str,),
    "topic": (str,),
    "intent": (str,),
    "tone": (str,),
    "tier": (str,),
    "arc": (str, _NONE),
    "scenario": (str, _NONE),
    "edge_case_type": (str, _NONE),
    "chunk_id": (str, _NONE),
    "document_id": (str, _NONE),
    "quality_score": (float, _NONE),
    "turn_count": (int,),
    "model": (str, _NONE),
    "template_id": (str, _NONE),
    "template_version": (int, _NONE),
    "cost_usd": (float, _NONE),
}
_HF_SPLIT_TYPES: Final[tuple[type, ...]] = (str, _NONE)


def _opt_float(v: float | None) -> float | None:
    # float() so 8 and 8.5 serialise as the same Arrow type (8.0, not 8).
    return None if v is None else float(v)


class HFMessagesWriter(_JsonlWriter):
    """Hugging Face ``messages`` JSONL (TRL SFT style) plus flat metadata columns, loadable
    with ``datasets.load_dataset("json", ...)``. Same content rules as openai."""

    format = ExportFormat.HF_MESSAGES
    labels = "record"
    _message_roles: ClassVar[frozenset[str]] = frozenset({"system", "user", "assistant"})

    def _reasons(self, cwt: ConversationTurns, turns: Sequence[TurnLike]) -> list[str]:
        return _trainable_reasons(turns)

    def _build(
        self, cwt: ConversationTurns, turns: Sequence[TurnLike], opts: ExportOptions
    ) -> dict[str, Any]:
        c = cwt.conversation
        messages = [{"role": t.role, "content": t.content} for t in turns]
        if opts.system_prompt is not None:
            messages.insert(0, {"role": "system", "content": opts.system_prompt})
        rec: dict[str, Any] = {
            "messages": messages,
            "conversation_id": c.conversation_id,
            "dataset_id": c.dataset_id,
            "title": c.title,
            "persona": c.persona,
            "emotion": c.emotion,
            "topic": c.topic,
            "intent": c.intent,
            "tone": c.tone,
            "tier": c.tier.value,
            "arc": c.arc,
            "scenario": c.scenario,
            "edge_case_type": c.edge_case_type,
            "chunk_id": c.chunk_id,
            "document_id": c.document_id,
            "quality_score": _opt_float(c.quality_score),
            "turn_count": len(turns),
            "model": c.model,
            "template_id": c.template_id,
            "template_version": c.template_version,
            "cost_usd": _opt_float(c.actual_cost_usd),
        }
        if opts.splits is not None:
            rec["split"] = opts.splits.get(c.conversation_id)
        return rec

    def _check(self, obj: Any) -> list[str]:
        if not isinstance(obj, dict):
            return ["record must be an object"]
        keys = obj.keys()
        expected = _HF_COLUMNS.keys()
        if keys != expected and keys != expected | {"split"}:
            return [f"columns differ from the schema: {sorted(keys ^ (expected | {'split'}))}"]
        errors: list[str] = []
        for name, types in _HF_COLUMNS.items():
            v = obj[name]
            # bool is an int subclass; a True in an int column would change the Arrow type.
            if not isinstance(v, types) or isinstance(v, bool):
                errors.append(f"column {name!r} has type {type(v).__name__}")
        if "split" in obj and not isinstance(obj["split"], _HF_SPLIT_TYPES):
            errors.append("column 'split' must be a string or null")
        msg_errors, roles = _check_messages(
            obj["messages"],
            allowed_roles=self._message_roles,
            key_role="role",
            key_content="content",
        )
        errors += msg_errors
        if roles and not msg_errors:
            if "system" in roles[1:]:
                errors.append("'system' may only be the first message")
            if "assistant" not in roles:
                errors.append("no assistant message")
        return errors


# --------------------------------------------------------------------------- generic

# Internal bookkeeping that means nothing outside the service (claim_token: the workflow
# execution that owned the generation claim).
_GENERIC_EXCLUDE: Final = frozenset({"tenant_id", "version", "claim_token"})
_TURN_KEYS: Final = frozenset({"turn_number", "role", "content"})


# What the generic header counts of one conversation: quality score, cost, tier, persona,
# (template id, version) or None, model, number of turns.
AggregateValues = tuple[
    float | None, float | None, str, str, tuple[str, int | None] | None, str | None, int
]


def aggregate_values(c: Conversation, turns: int) -> AggregateValues:
    template = (c.template_id, c.template_version) if c.template_id is not None else None
    return (c.quality_score, c.actual_cost_usd, c.tier.value, c.persona, template, c.model, turns)


@dataclass(slots=True)
class _Aggregates:
    count: int = 0
    turns: int = 0
    scored: int = 0
    score_sum: float = 0.0
    score_min: float = math.inf
    score_max: float = -math.inf
    at_bar: int = 0
    cost: float = 0.0
    costed: int = 0
    tiers: Counter[str] = field(default_factory=Counter)
    personas: Counter[str] = field(default_factory=Counter)
    templates: Counter[tuple[str, int | None]] = field(default_factory=Counter)
    models: Counter[str] = field(default_factory=Counter)
    splits: Counter[str] = field(default_factory=Counter)

    def add(self, c: Conversation, turns: int, split: str | None) -> None:
        self.add_values(aggregate_values(c, turns), split)

    def add_values(self, values: AggregateValues, split: str | None) -> None:
        """``add`` from what ``aggregate_values`` took of a conversation."""
        score, cost, tier, persona, template, model, turns = values
        self.count += 1
        self.turns += turns
        if score is not None:
            s = float(score)
            self.scored += 1
            self.score_sum += s
            self.score_min = min(self.score_min, s)
            self.score_max = max(self.score_max, s)
            self.at_bar += s >= QUALITY_BAR
        if cost is not None:
            self.cost += cost
            self.costed += 1
        self.tiers[tier] += 1
        self.personas[persona] += 1
        if template is not None:
            self.templates[template] += 1
        if model is not None:
            self.models[model] += 1
        if split is not None:
            self.splits[split] += 1

    def metadata(self, opts: ExportOptions) -> dict[str, Any]:
        when = opts.export_date or datetime.now(UTC)
        scored = self.scored
        meta: dict[str, Any] = {
            "export_date": when.isoformat(),
            "format": ExportFormat.GENERIC.value,
            "conversation_count": self.count,
            "turn_count": self.turns,
            "system_prompt": opts.system_prompt,
            "quality": {
                "scored_count": scored,
                "mean": round(self.score_sum / scored, 4) if scored else None,
                "min": self.score_min if scored else None,
                "max": self.score_max if scored else None,
                "share_at_least_8": round(self.at_bar / scored, 4) if scored else None,
            },
            "total_cost_usd": round(self.cost, 6),
            "costed_count": self.costed,
            # Every tier listed (zeros included) so consumers see a fixed shape.
            "tier_distribution": {t.value: self.tiers.get(t.value, 0) for t in Tier},
            "persona_distribution": dict(sorted(self.personas.items())),
            "template_versions": [
                {"template_id": tid, "version": ver, "count": n}
                for (tid, ver), n in sorted(
                    self.templates.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)
                )
            ],
            "models": dict(sorted(self.models.items())),
        }
        if opts.splits is not None:
            meta["split_distribution"] = dict(sorted(self.splits.items()))
        return meta


class GenericWriter(FormatWriter):
    """One JSON document ``{"metadata": {...}, "conversations": [...]}``.

    The header needs aggregates, so the source is read twice: a first pass validates and
    aggregates (no rendering), the second renders. A source that changes between passes
    is reported as a warning, since the header is already out."""

    format = ExportFormat.GENERIC
    labels = "record"
    extension = "json"
    content_type = "application/json"

    def write(
        self,
        source: Source,
        options: ExportOptions | None = None,
        report: ExportReport | None = None,
    ) -> Iterator[bytes]:
        if _is_one_shot(source):
            raise TypeError(
                "generic export reads the source twice: pass a callable returning a fresh"
                " iterator, or a collection"
            )
        return super().write(source, options, report)

    def _texts(
        self, source: Source, opts: ExportOptions, report: ExportReport | None
    ) -> Iterator[str]:
        open_source = _open_source(source)
        agg = _Aggregates()
        splits = opts.splits
        for cwt in open_source():
            turns = _ordered_turns(cwt.turns)
            if not self._reasons(cwt, turns):
                cid = cwt.conversation.conversation_id
                agg.add(cwt.conversation, len(turns), None if splits is None else splits.get(cid))
        yield '{"metadata":' + _dumps(agg.metadata(opts)) + ',"conversations":['
        n = 0
        for text in self._accepted(open_source(), opts, report):
            yield ("\n" if n == 0 else ",\n") + text
            n += 1
        yield "\n]}\n"
        if n != agg.count and report is not None:
            report.warnings.append(
                f"header counts {agg.count} conversations but {n} were written"
                " (source changed between passes or a record failed its check)"
            )

    def write_deferred_header(
        self,
        source: Source,
        options: ExportOptions | None = None,
        report: ExportReport | None = None,
    ) -> tuple[Iterator[bytes], Callable[[], bytes]]:
        """Single pass over ``source`` (any iterable, one-shot included): returns the body
        stream and a function giving the header once the body is exhausted. The header's
        counts are those of the records written; ``header() + b"".join(body)`` is the
        same document ``write`` produces. For sinks that can put bytes in front later (an
        S3 multipart upload: part numbers, not upload order, set the order)."""
        opts = options or ExportOptions()
        agg = _Aggregates()
        splits = opts.splits
        done = False

        def count(cwt: ConversationTurns, turns: Sequence[TurnLike]) -> None:
            cid = cwt.conversation.conversation_id
            agg.add(cwt.conversation, len(turns), None if splits is None else splits.get(cid))

        def texts() -> Iterator[str]:
            nonlocal done
            yield '"conversations":['
            records = self._accepted(_open_source(source)(), opts, report, count)
            for n, text in enumerate(records):
                yield ("\n" if n == 0 else ",\n") + text
            yield "\n]}\n"
            done = True

        def header() -> bytes:
            if not done:
                raise RuntimeError("the header is known only once the body is consumed")
            data = ('{"metadata":' + _dumps(agg.metadata(opts)) + ",").encode("utf-8")
            if report is not None:
                report.bytes_written += len(data)
            return data

        return _chunked(texts(), opts.chunk_size, report), header

    def _preamble(self, opts: ExportOptions) -> str:
        return '"conversations":['

    def _separated(self, n: int, text: str) -> str:
        return ("\n" if n == 0 else ",\n") + text

    def _epilogue(self, opts: ExportOptions) -> str:
        return "\n]}\n"

    def header_of(self, aggregates: _Aggregates, opts: ExportOptions) -> str:
        """The document's opening (metadata) for records counted into ``aggregates``."""
        return '{"metadata":' + _dumps(aggregates.metadata(opts)) + ","

    def _render(
        self, cwt: ConversationTurns, turns: Sequence[TurnLike], opts: ExportOptions
    ) -> tuple[Any, str]:
        obj = cwt.conversation.model_dump(mode="json", exclude=set(_GENERIC_EXCLUDE))
        if opts.splits is not None:
            obj["split"] = opts.splits.get(cwt.conversation.conversation_id)
        obj["turns"] = [
            {"turn_number": t.turn_number, "role": t.role, "content": t.content} for t in turns
        ]
        return obj, _dumps(obj)

    def validate_record(self, record: Any) -> list[str]:
        """Checks one element of ``conversations`` (text or parsed)."""
        obj, errors = _parse_json(record)
        return errors or self._check(obj)

    def _check(self, obj: Any) -> list[str]:
        if not isinstance(obj, dict):
            return ["conversation must be an object"]
        errors: list[str] = []
        cid = obj.get("conversation_id")
        if not isinstance(cid, str) or not cid:
            errors.append("conversation_id must be a non-empty string")
        if _GENERIC_EXCLUDE & obj.keys():
            errors.append(f"internal fields present: {sorted(_GENERIC_EXCLUDE & obj.keys())}")
        turns = obj.get("turns")
        if not isinstance(turns, list) or not turns:
            return [*errors, "turns must be a non-empty list"]
        for i, t in enumerate(turns):
            if not isinstance(t, dict) or t.keys() != _TURN_KEYS:
                errors.append(f"turn {i} must have exactly {sorted(_TURN_KEYS)}")
                continue
            if type(t["turn_number"]) is not int:
                errors.append(f"turn {i} turn_number must be an integer")
            if t["role"] not in _ROLES:
                errors.append(f"turn {i} has invalid role {t['role']!r}")
            if not isinstance(t["content"], str):
                errors.append(f"turn {i} content must be a string")
        return errors


# --------------------------------------------------------------------------- csv

CSV_COLUMNS: Final = (
    "conversation_id",
    "dataset_id",
    "persona",
    "emotion",
    "topic",
    "intent",
    "tone",
    "tier",
    "quality_score",
    "status",
    "turn_number",
    "role",
    "content",
)
_CSV_ROLES: Final = frozenset({"system", "user", "assistant"})
_ROLE_INDEX: Final = CSV_COLUMNS.index("role")
_TURN_INDEX: Final = CSV_COLUMNS.index("turn_number")  # the first cell that varies by row
_CONTENT_INDEX: Final = CSV_COLUMNS.index("content")


def csv_cell(value: object) -> str:
    """One cell as ``csv.writer`` (the excel dialect, QUOTE_MINIMAL) writes it in a row of
    several cells: floats by ``repr``, anything else by ``str``; quoted when it holds a
    comma, a quote (doubled) or a line break."""
    text = repr(value) if isinstance(value, float) else str(value)
    if '"' in text:
        return '"' + text.replace('"', '""') + '"'
    if "," in text or "\n" in text or "\r" in text:
        return '"' + text + '"'
    return text


def _as_is(value: str) -> str:
    return value


def neutralise_cell(value: str) -> str:
    """Prefix ``'`` so spreadsheets show the text instead of evaluating a formula."""
    if value and value[0] in _FORMULA_PREFIXES:
        return "'" + value
    return value


class CSVWriter(FormatWriter):
    """One row per turn with the conversation's metadata. The system prompt, when given,
    is a ``turn_number`` 0 ``system`` row so the file carries what the other formats do.
    By default every text cell is neutralised against formula injection; a leading ``'``
    in the output is then ambiguous on read-back (the price of spreadsheet safety).
    ``neutralise=False`` (``ExportOptions.neutralise_formulas``) writes the text as it is,
    for training pipelines that read the CSV programmatically."""

    format = ExportFormat.CSV
    labels = "row"
    extension = "csv"
    content_type = "text/csv; charset=utf-8"

    def __init__(self, neutralise: bool = True) -> None:
        self.neutralise = neutralise

    def columns(self, opts: ExportOptions) -> tuple[str, ...]:
        return (*CSV_COLUMNS, "split") if opts.splits is not None else CSV_COLUMNS

    def _texts(
        self, source: Source, opts: ExportOptions, report: ExportReport | None
    ) -> Iterator[str]:
        yield self._preamble(opts)
        yield from super()._texts(source, opts, report)

    def _preamble(self, opts: ExportOptions) -> str:
        buf = io.StringIO()
        csv.writer(buf).writerow(self.columns(opts))
        return buf.getvalue()

    def _render(
        self, cwt: ConversationTurns, turns: Sequence[TurnLike], opts: ExportOptions
    ) -> tuple[Any, str]:
        c = cwt.conversation
        n = neutralise_cell if self.neutralise else _as_is
        head: list[str | int | float] = [
            n(c.conversation_id),
            n(c.dataset_id),
            n(c.persona),
            n(c.emotion),
            n(c.topic),
            n(c.intent),
            n(c.tone),
            c.tier.value,
            "" if c.quality_score is None else float(c.quality_score),
            c.status.value,
        ]
        tail: list[str] = []
        if opts.splits is not None:
            tail = [n(opts.splits.get(c.conversation_id) or "")]
        rows: list[list[str | int | float]] = []
        if opts.system_prompt is not None:
            rows.append([*head, 0, "system", n(opts.system_prompt), *tail])
        rows += [[*head, t.turn_number, t.role, n(t.content), *tail] for t in turns]
        # The rows as csv.writer writes them, with the shared metadata cells encoded once
        # per conversation instead of once per turn.
        lead = ",".join(map(csv_cell, head)) + ","
        end = "".join("," + csv_cell(cell) for cell in tail) + "\r\n"
        text = "".join(
            f"{lead}{csv_cell(row[_TURN_INDEX])},{csv_cell(row[_ROLE_INDEX])},"
            f"{csv_cell(row[_CONTENT_INDEX])}{end}"
            for row in rows
        )
        return rows, text

    def _check(self, obj: Any) -> list[str]:
        errors: list[str] = []
        first: Sequence[Any] | None = None
        for row in obj:
            # A conversation's rows repeat its metadata cells: once the first row's are
            # checked, a row with the very same ones needs only its turn cells checked.
            same_head = (
                first is not None
                and len(row) == len(first)
                and row[:_TURN_INDEX] == first[:_TURN_INDEX]
            )
            errors += self._check_row(row, start=_TURN_INDEX if same_head else 0)
            first = first or row
        return errors

    def _check_row(self, row: Sequence[Any], start: int = 0) -> list[str]:
        errors: list[str] = []
        if len(row) not in (len(CSV_COLUMNS), len(CSV_COLUMNS) + 1):
            return [f"row has {len(row)} cells, expected {len(CSV_COLUMNS)} (+ split)"]
        if row[_ROLE_INDEX] not in _CSV_ROLES:
            errors.append(f"invalid role {row[_ROLE_INDEX]!r}")
        if not self.neutralise:
            return errors
        for i in range(start, len(row)):
            cell = row[i]
            if isinstance(cell, str) and cell and cell[0] in _FORMULA_PREFIXES:
                errors.append(f"cell {i} starts with {cell[0]!r} (formula injection)")
        return errors

    def validate_record(self, record: Any) -> list[str]:
        """A row as a list, a ``csv.DictReader`` dict, or one CSV-encoded row (text)."""
        if isinstance(record, bytes):
            record = record.decode("utf-8")
        if isinstance(record, str):
            rows = list(csv.reader(io.StringIO(record)))
            if len(rows) != 1:
                return [f"expected one CSV row, got {len(rows)}"]
            record = rows[0]
        if isinstance(record, Mapping):
            keys = set(record)
            if keys != set(CSV_COLUMNS) and keys != {*CSV_COLUMNS, "split"}:
                return [f"columns differ: {sorted(keys ^ {*CSV_COLUMNS, 'split'})}"]
            record = [record[k] for k in (*CSV_COLUMNS, "split") if k in record]
        if not isinstance(record, Sequence):
            return ["row must be a sequence, mapping or CSV text"]
        return self._check_row(record)


# --------------------------------------------------------------------------- registry

WRITERS: Final[dict[ExportFormat, FormatWriter]] = {
    w.format: w
    for w in (
        OpenAIWriter(),
        AnthropicWriter(),
        ShareGPTWriter(),
        HFMessagesWriter(),
        GenericWriter(),
        CSVWriter(),
    )
}


RAW_CSV_WRITER: Final = CSVWriter(neutralise=False)


def writer_for(fmt: ExportFormat | str, options: ExportOptions | None = None) -> FormatWriter:
    """The writer of ``fmt`` configured by ``options`` (CSV with or without formula
    neutralisation); the registered writer otherwise."""
    writer = get_writer(fmt)
    if (
        writer.format == ExportFormat.CSV
        and options is not None
        and not options.neutralise_formulas
    ):
        return RAW_CSV_WRITER
    return writer


def get_writer(fmt: ExportFormat | str) -> FormatWriter:
    try:
        return WRITERS[ExportFormat(fmt)]
    except ValueError:
        raise ValidationError(
            f"unknown export format {fmt!r}", {"allowed": [f.value for f in ExportFormat]}
        ) from None


def write_validated(
    fmt: ExportFormat | str, source: Source, options: ExportOptions | None = None
) -> tuple[Iterator[bytes], ExportReport]:
    """Stream ``fmt`` skipping inexpressible conversations; the report fills as the
    iterator is consumed (``report.complete`` once exhausted)."""
    writer = writer_for(fmt, options)
    report = ExportReport(format=writer.format)
    return writer.write(source, options, report), report


class FileStream:
    """One file written push-style: ``add`` conversations one at a time (from any
    source, in any interleaving with other files), collecting bytes chunks of about
    ``options.chunk_size``. The bytes are exactly what ``write`` produces for the same
    conversations (generic: ``header() + body``, the header known once the body is).

    An export with a split writes its three files from one pass over the data, routing
    each conversation to its split's stream."""

    def __init__(
        self,
        writer: FormatWriter,
        options: ExportOptions,
        report: ExportReport,
        validated: bool = False,
        label: str | None = None,
    ) -> None:
        """``validated``: every conversation added already passed the writer's
        ``validate_conversation`` (a split export checks them when it reads them).
        ``label``: the split every record of this file belongs to."""
        self.writer, self.options, self.report = writer, options, report
        self.validated = validated
        self._label = label
        self.records = 0
        self._buf: list[str] = []
        self._pending = 0
        self._closed = False
        self._aggregates: _Aggregates | None = None
        self._on_written: Callable[[ConversationTurns, Sequence[TurnLike]], None] | None = None
        if isinstance(writer, GenericWriter):
            agg = self._aggregates = _Aggregates()
            splits = options.splits

            def count(cwt: ConversationTurns, turns: Sequence[TurnLike]) -> None:
                cid = cwt.conversation.conversation_id
                agg.add(cwt.conversation, len(turns), None if splits is None else splits.get(cid))

            self._on_written = count
        preamble = writer._preamble(options)
        if preamble:
            self._buf.append(preamble)
            self._pending = len(preamble)

    def add(self, cwt: ConversationTurns) -> bytes | None:
        """Write one conversation; a chunk when enough bytes are buffered, else None.
        An inexpressible conversation is skipped and recorded in the report."""
        text = self.writer._accept_one(
            cwt, self.options, self.report, self._on_written, self.validated
        )
        if text is None:
            return None
        text = self.writer._separated(self.records, text)
        self.records += 1
        self._buf.append(text)
        self._pending += len(text)
        if self._pending >= self.options.chunk_size:
            return self._drain()
        return None

    def add_rendered(self, text: str, aggregate: AggregateValues | None = None) -> bytes | None:
        """Write a record rendered (and checked) before, with its label in place;
        ``aggregate``: what the generic header counts of it."""
        if self._aggregates is not None:
            assert aggregate is not None, "generic records need their aggregate values"
            splits = self.options.splits
            self._aggregates.add_values(aggregate, None if splits is None else self._label)
        text = self.writer._separated(self.records, text)
        self.records += 1
        self.report.written += 1
        self._buf.append(text)
        self._pending += len(text)
        if self._pending >= self.options.chunk_size:
            return self._drain()
        return None

    def _drain(self) -> bytes:
        chunk = "".join(self._buf).encode("utf-8")
        self._buf.clear()
        self._pending = 0
        self.report.bytes_written += len(chunk)
        return chunk

    def close(self) -> bytes:
        """The rest of the file (the epilogue included)."""
        if not self._closed:
            self._closed = True
            epilogue = self.writer._epilogue(self.options)
            if epilogue:
                self._buf.append(epilogue)
            self.report.complete = True
        return self._drain() if self._buf else b""

    @property
    def needs_header(self) -> bool:
        return self._aggregates is not None

    def header(self) -> bytes:
        """Generic's metadata opening, once closed (b"" for the other formats)."""
        if self._aggregates is None:
            return b""
        if not self._closed:
            raise RuntimeError("the header is known only once the file is closed")
        assert isinstance(self.writer, GenericWriter)
        data = self.writer.header_of(self._aggregates, self.options).encode("utf-8")
        self.report.bytes_written += len(data)
        return data
