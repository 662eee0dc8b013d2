"""Individual quality checks for one generated conversation.

Each check returns a :class:`QualityCheck` with a 0..1 score; ``scoring`` weights and
combines them (the weight passed in here comes from ``scoring.CHECK_WEIGHTS``). A check
that cannot say anything (no turns, no vocabulary to look for) returns weight 0 so it
neither helps nor hurts the composite.

Everything is plain Python: no AWS, no network, no model calls.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from chalicelib.domain.models import Conversation, QualityCheck, Taxonomy, Turn

# --------------------------------------------------------------------------- thresholds

OPTIMAL_TURNS = (8, 16)  # product spec: "8-16 turns optimal"
MIN_TURNS = 4  # fewer is not a usable multi-turn example: hard fail + cap
MAX_TURNS = 30  # beyond this the generator has looped; the score bottoms out
USER_WORDS = (5, 150)
ASSISTANT_WORDS = (20, 350)
LENGTH_TOLERANCE = 0.25  # within 25% beyond a bound counts as half a miss ("roughly")
LENGTH_PASS_RATIO = 0.25  # at most this share of turns may miss their range
REPEAT_SIMILARITY = 0.8  # bigram Jaccard at which two turns count as near-identical
STRUCTURE_PENALTY = 0.25  # score lost per turn with a structural problem
TOPIC_TARGET = 3  # distinct topic keywords that make the topic unmistakable
PERSONA_TARGET = 2
EMOTION_TURN_SHARE = 0.3  # share of user turns expected to carry the emotion

VALID_ROLES = ("user", "assistant")

# --------------------------------------------------------------------------- text helpers

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

_STOPWORDS_TEXT = """
a about above after again against all also am an and any are as at be because been
before being below between both but by can could did do does doing down during each few
for from further had has have having he her here hers him his how i if in into is it its
itself just me more most my no nor not now of off on once only or other our ours out
over own same she should so some such than that the their theirs them then there these
they this those through to too under until up very was we were what when where which
while who whom why will with would you your yours etc via per vs who's they're it's i'm
you're don't can't won't user users customer customers person people someone something
thing things way ways want wants need needs help helps question questions topic general
various about
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())

_SUFFIXES = (
    "ational",
    "fulness",
    "ousness",
    "ations",
    "ation",
    "ments",
    "ment",
    "ness",
    "ities",
    "ity",
    "ings",
    "ing",
    "ous",
    "ies",
    "ied",
    "ers",
    "ors",
    "ful",
    "ly",
    "er",
    "or",
    "ed",
    "es",
    "s",
)


@lru_cache(maxsize=20_000)
def stem(word: str) -> str:
    """Crude suffix stripper: enough to match "investing" with "investor", "plans" with
    "planning". Not linguistics, just a way to make keyword signals less brittle."""
    w = word.lower().strip("'")
    for suffix in _SUFFIXES:
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)]
            break
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiou":
        w = w[:-1]  # planned -> plann -> plan
    return w[:7]


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def keywords(text: str) -> set[str]:
    """Stems of the content words in ``text`` (stopwords and 1-2 letter words dropped)."""
    return {stem(w) for w in words(text) if len(w) > 2 and w not in STOPWORDS and not w.isdigit()}


@lru_cache(maxsize=4096)
def _all_stems(text: str) -> frozenset[str]:
    """Stems of every word of a turn: read by the topic, persona and emotion checks."""
    return frozenset(stem(w) for w in words(text))


def word_count(text: str) -> int:
    return len(text.split())


def _content(turn: Turn) -> str:
    # model_construct()ed or legacy turns may carry non-string content; treat as empty
    content = getattr(turn, "content", "")
    return content if isinstance(content, str) else ""


def ordered(turns: Iterable[Turn]) -> list[Turn]:
    """Turns by turn_number (stable): storage order is not trusted."""
    return sorted(turns, key=lambda t: t.turn_number)


def _check(name: str, passed: bool, score: float, weight: float, detail: str) -> QualityCheck:
    return QualityCheck(
        name=name,
        passed=passed,
        score=round(min(1.0, max(0.0, score)), 4),
        weight=weight,
        detail=detail,
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# --------------------------------------------------------------------------- turn count


def turn_count_score(n: int) -> float:
    """1.0 inside 8-16, linear decay outside; 0 below MIN_TURNS or at MAX_TURNS+."""
    lo, hi = OPTIMAL_TURNS
    if n < MIN_TURNS:
        return 0.0
    if n < lo:
        # 4 turns -> 0.5, 7 turns -> 0.875: short but usable
        return 0.5 + 0.5 * (n - MIN_TURNS) / (lo - MIN_TURNS)
    if n <= hi:
        return 1.0
    if n >= MAX_TURNS:
        return 0.0
    return 1.0 - (n - hi) / (MAX_TURNS - hi)


def check_turn_count(turns: Sequence[Turn], weight: float = 1.0) -> QualityCheck:
    n = len(turns)
    lo, hi = OPTIMAL_TURNS
    score = turn_count_score(n)
    if n < MIN_TURNS:
        detail = f"{_plural(n, 'turn')}: below the minimum of {MIN_TURNS}"
    elif lo <= n <= hi:
        detail = f"{n} turns (optimal {lo}-{hi})"
    else:
        detail = f"{n} turns: outside the optimal {lo}-{hi}"
    return _check("turn_count", MIN_TURNS <= n < MAX_TURNS, score, weight, detail)


# --------------------------------------------------------------------------- alternation


def check_alternation(turns: Sequence[Turn], weight: float = 1.0) -> QualityCheck:
    """user first, strict user/assistant alternation, assistant last, numbers 1..n."""
    seq = ordered(turns)
    n = len(seq)
    if n == 0:
        return _check("alternation", False, 0.0, weight, "no turns")
    problems: list[str] = []
    bad_positions = 0
    for i, turn in enumerate(seq):
        expected = "user" if i % 2 == 0 else "assistant"
        if turn.role != expected:
            bad_positions += 1
    if seq[0].role != "user":
        problems.append(f"starts with {seq[0].role!s}")
    repeats = [
        f"{seq[i].turn_number}-{seq[i + 1].turn_number}"
        for i in range(n - 1)
        if seq[i].role == seq[i + 1].role
    ]
    if repeats:
        problems.append(f"same role twice in a row at turns {', '.join(repeats[:5])}")
    if seq[-1].role != "assistant":
        problems.append(f"ends with {seq[-1].role!s}")
    numbers = [t.turn_number for t in seq]
    if numbers != list(range(1, n + 1)):
        bad_numbers = sum(1 for i, num in enumerate(numbers, start=1) if num != i)
        bad_positions += bad_numbers
        problems.append(f"turn numbers not contiguous from 1 ({numbers[:8]}...)")
    if not problems:
        return _check("alternation", True, 1.0, weight, f"{n} turns alternate user/assistant")
    score = max(0.0, 1.0 - bad_positions / n) * 0.5  # any break halves the score
    return _check("alternation", False, score, weight, "; ".join(problems))


# --------------------------------------------------------------------------- length


def _length_miss(count: int, bounds: tuple[int, int]) -> float:
    """0 inside the range, 0.5 a little outside, 1 well outside."""
    lo, hi = bounds
    if lo <= count <= hi:
        return 0.0
    if lo * (1 - LENGTH_TOLERANCE) <= count <= hi * (1 + LENGTH_TOLERANCE):
        return 0.5
    return 1.0


def check_length(turns: Sequence[Turn], weight: float = 1.0) -> QualityCheck:
    seq = ordered(turns)
    if not seq:
        return _check("length", False, 0.0, weight, "no turns")
    misses: list[str] = []
    total_miss = 0.0
    out_of_range = 0
    for turn in seq:
        bounds = USER_WORDS if turn.role == "user" else ASSISTANT_WORDS
        count = word_count(_content(turn))
        miss = _length_miss(count, bounds)
        if miss:
            out_of_range += 1
            total_miss += miss
            misses.append(f"turn {turn.turn_number} ({turn.role}) {count}w")
    ratio = out_of_range / len(seq)
    score = 1.0 - total_miss / len(seq)
    limits = (
        f"user {USER_WORDS[0]}-{USER_WORDS[1]}w, "
        f"assistant {ASSISTANT_WORDS[0]}-{ASSISTANT_WORDS[1]}w"
    )
    if not misses:
        return _check("length", True, score, weight, f"all turns within range ({limits})")
    detail = f"{out_of_range}/{len(seq)} turns out of range ({limits}): " + ", ".join(misses[:6])
    return _check("length", ratio <= LENGTH_PASS_RATIO, score, weight, detail)


# --------------------------------------------------------------------------- empty / repeated


def check_empty_turns(turns: Sequence[Turn], weight: float = 1.0) -> QualityCheck:
    seq = ordered(turns)
    if not seq:
        return _check("empty_turns", False, 0.0, weight, "no turns")
    empty = [t.turn_number for t in seq if not _content(t).strip()]
    if not empty:
        return _check("empty_turns", True, 1.0, weight, "no empty turns")
    # an empty assistant turn teaches the model to say nothing: each one costs a lot
    score = 1.0 - 3 * len(empty) / len(seq)
    detail = f"{_plural(len(empty), 'empty turn')}: {empty[:10]}"
    return _check("empty_turns", False, score, weight, detail)


def _bigrams(tokens: list[str]) -> set[tuple[str, ...]]:
    if len(tokens) < 2:
        return {tuple(tokens)}
    return set(itertools.pairwise(tokens))


def check_repeated_turns(turns: Sequence[Turn], weight: float = 1.0) -> QualityCheck:
    """Identical or near-identical turns anywhere in the conversation (model loops)."""
    seq = ordered(turns)
    if not seq:
        return _check("repeated_turns", False, 0.0, weight, "no turns")
    tokens = [words(_content(t)) for t in seq]
    grams = [_bigrams(tok) for tok in tokens]
    repeats: list[str] = []
    for j in range(1, len(seq)):
        if not tokens[j]:
            continue  # empty turns are empty_turns' business
        for i in range(j):
            if not tokens[i]:
                continue
            if tokens[i] == tokens[j]:
                repeats.append(f"{seq[j].turn_number}={seq[i].turn_number}")
                break
            # short turns ("ok thanks") may legitimately resemble each other
            if min(len(tokens[i]), len(tokens[j])) < 6:
                continue
            inter = len(grams[i] & grams[j])
            if inter / len(grams[i] | grams[j]) >= REPEAT_SIMILARITY:
                repeats.append(f"{seq[j].turn_number}~{seq[i].turn_number}")
                break
    if not repeats:
        return _check("repeated_turns", True, 1.0, weight, "no repeated turns")
    score = 1.0 - 2 * len(repeats) / len(seq)
    detail = f"{_plural(len(repeats), 'repeated turn')}: {', '.join(repeats[:6])}"
    return _check("repeated_turns", False, score, weight, detail)


# --------------------------------------------------------------------------- structure

_JSON_START = re.compile(r'^\s*[\[{]\s*["{\[]')
_JSON_KEYS = re.compile(r'"(?:role|content|turns|messages|turn_number)"\s*:')
_FENCE_WRAP = re.compile(r"^\s*```|```\s*$")
_FENCE_JSON = re.compile(r"```\s*json", re.IGNORECASE)
_ROLE_LABEL = re.compile(r"^\s*\**(?:user|assistant|human|ai|system|bot)\**\s*:", re.IGNORECASE)
_CHAT_TOKENS = re.compile(r"<\|[a-z_]+\|>|\[/?INST\]|</?s>", re.IGNORECASE)


def invalid_turns(turns: Iterable[Turn]) -> list[int]:
    """Turn numbers with a role outside user/assistant or non-string content."""
    bad = []
    for t in turns:
        if getattr(t, "role", None) not in VALID_ROLES or not isinstance(
            getattr(t, "content", None), str
        ):
            bad.append(t.turn_number)
    return bad


def structure_problems(turn: Turn) -> list[str]:
    """What is wrong with one turn's shape; empty list when it looks like clean text."""
    role = getattr(turn, "role", None)
    content = getattr(turn, "content", None)
    found: list[str] = []
    if role not in VALID_ROLES:
        found.append(f"invalid role {role!r}")
    if not isinstance(content, str):
        found.append(f"content is {type(content).__name__}, not text")
        return found
    if _JSON_START.search(content) or _JSON_KEYS.search(content):
        found.append("JSON artefact")
    if _FENCE_WRAP.search(content) or _FENCE_JSON.search(content):
        found.append("markdown fence")
    if _ROLE_LABEL.search(content):
        found.append("role label in content")
    if _CHAT_TOKENS.search(content):
        found.append("chat-template token")
    return found


def check_structure(turns: Sequence[Turn], weight: float = 1.0) -> QualityCheck:
    seq = ordered(turns)
    if not seq:
        return _check("structure", False, 0.0, weight, "no turns")
    problems = [(t.turn_number, structure_problems(t)) for t in seq]
    bad = [(num, p) for num, p in problems if p]
    if not bad:
        return _check("structure", True, 1.0, weight, "roles valid, plain text content")
    score = 1.0 - STRUCTURE_PENALTY * len(bad)
    detail = "; ".join(f"turn {num}: {', '.join(p)}" for num, p in bad[:6])
    return _check("structure", False, score, weight, detail)


# --------------------------------------------------------------------------- adherence


@dataclass(frozen=True)
class _EmotionGroup:
    names: frozenset[str]  # words that, as an emotion's name, select this group
    signals: frozenset[str]  # words/phrases a user feeling it tends to use
    detectable: bool = True


def _group(names: str, signals: str, detectable: bool = True) -> _EmotionGroup:
    return _EmotionGroup(
        names=frozenset(stem(w) for w in names.split()),
        signals=frozenset(s.strip() for s in signals.split(",") if s.strip()),
        detectable=detectable,
    )


# Lexicon of surface signals per emotion family. Phrases match on word boundaries.
EMOTION_LEXICON: dict[str, _EmotionGroup] = {
    "fear": _group(
        "fear fearful anxiety anxious worry worried nervous scared afraid panic "
        "apprehension apprehensive dread insecurity insecure uneasy stress stressed terror",
        "afraid, scared, scary, worried, worry, worrying, worries, nervous, anxious, anxiety, "
        "panic, panicking, terrified, frightened, uneasy, dread, fear, fearful, stressed, "
        "stress, stressful, concerned, concern, can't sleep, keeps me up, what if, "
        "freaking out, losing sleep, on edge",
    ),
    "anger": _group(
        "anger angry frustration frustrated annoyance annoyed irritation irritated outrage "
        "rage resentment furious impatience impatient indignation",
        "frustrated, frustrating, frustration, annoyed, annoying, angry, furious, irritated, "
        "irritating, ridiculous, unacceptable, fed up, sick of, tired of, waste of, upset, mad, "
        "outrageous, unfair, absurd, seriously, third time, still waiting, nobody, enough",
    ),
    "sadness": _group(
        "sad sadness grief grieving sorrow disappointment disappointed loneliness lonely "
        "despair regret hopeless hopelessness discouraged discouragement melancholy",
        "sad, down, disappointed, disappointing, heartbroken, grief, grieving, lonely, regret, "
        "hopeless, discouraged, miss, crying, devastated, let down, gutted, depressing, "
        "defeated, it hurts, gave up",
    ),
    "joy": _group(
        "joy joyful happy happiness excitement excited enthusiasm enthusiastic delight "
        "delighted elation pride proud satisfaction satisfied",
        "excited, thrilled, happy, glad, delighted, love, amazing, wonderful, awesome, "
        "can't wait, finally, celebrate, proud, yay, fantastic, great news, ecstatic",
    ),
    "hope": _group(
        "hope hopeful optimism optimistic anticipation eager eagerness determination "
        "determined motivation motivated encouragement encouraged",
        "hope, hoping, hopeful, optimistic, looking forward, eager, encouraged, motivated, "
        "determined, fresh start, turn things around, believe, confident, positive, "
        "excited, possible, finally",
    ),
    "gratitude": _group(
        "gratitude grateful thankful appreciation relief relieved reassured reassurance",
        "thanks, thank you, grateful, appreciate, appreciated, relieved, relief, reassuring, "
        "reassured, that helps, helpful, phew, thankful, lifesaver",
    ),
    "confusion": _group(
        "confusion confused uncertainty uncertain overwhelm overwhelmed bewilderment "
        "bewildered unsure puzzled perplexed lost",
        "confused, confusing, don't understand, not sure, unsure, unclear, lost, overwhelmed, "
        "overwhelming, complicated, makes no sense, no idea, puzzled, baffled, what does, "
        "how does, which one, don't get, explain, jargon, where do i start",
    ),
    "curiosity": _group(
        "curiosity curious interest interested inquisitive wonder intrigue intrigued",
        "curious, wondering, wonder, interested, interesting, tell me more, fascinating, "
        "learn, how does, why does, what if, intrigued, explore",
    ),
    "skepticism": _group(
        "skepticism skeptical sceptical distrust suspicion suspicious doubt doubtful "
        "cynicism cynical mistrust wary",
        "skeptical, sceptical, doubt, doubtful, really, too good to be true, suspicious, "
        "prove, how do i know, scam, guarantee, guaranteed, claims, convinced, catch, "
        "hard to believe, wary, sounds like",
    ),
    "shame": _group(
        "shame ashamed embarrassment embarrassed guilt guilty humiliation humiliated",
        "embarrassed, embarrassing, ashamed, stupid, guilty, should have, should've, dumb, "
        "awkward, my fault, silly, humiliating, idiot",
    ),
    "urgency": _group(
        "urgency urgent impatience pressure pressured rushed hurried desperate desperation",
        "urgent, asap, immediately, deadline, tonight, today, right now, quickly, hurry, "
        "running out, no time, need this, by friday, soon as possible, desperate",
    ),
    "calm": _group(
        "calm neutral content contentment composed relaxed indifferent matter",
        "",
        detectable=False,  # a neutral user leaves no lexical trace to look for
    ),
}

_ALL_SIGNALS = frozenset(s for g in EMOTION_LEXICON.values() for s in g.signals)


def _phrase_hits(text_words: list[str], phrases: Iterable[str]) -> set[str]:
    """Which phrases occur in the word list, matched on word boundaries."""
    joined = f" {' '.join(text_words)} "
    vocab = set(text_words)
    hits = set()
    for p in phrases:
        if " " in p:
            if f" {p} " in joined:
                hits.add(p)
        elif p in vocab:
            hits.add(p)
    return hits


def emotion_signals(emotion: str, description: str = "") -> tuple[frozenset[str], bool]:
    """Signal words for an emotion label and whether the emotion is lexically detectable.

    The label's own words, the lexicon families it names, and description words that
    are themselves emotion signals ("feels overwhelmed" adds "overwhelmed").
    """
    name_words = [w for w in words(emotion) if w not in STOPWORDS]
    name_stems = {stem(w) for w in name_words}
    signals: set[str] = set(name_words)
    detectable = True
    matched = False
    for group in EMOTION_LEXICON.values():
        if name_stems & group.names or any(w in group.signals for w in name_words):
            matched = True
            signals |= group.signals
            detectable = detectable and group.detectable
    signals |= {w for w in words(description) if w in _ALL_SIGNALS}
    if matched and not detectable:
        return frozenset(), False
    return frozenset(signals), bool(signals)


def check_emotion_adherence(
    conversation: Conversation,
    turns: Sequence[Turn],
    taxonomy: Taxonomy | None = None,
    weight: float = 1.0,
) -> QualityCheck:
    """Does the user sound like the planned emotion? Lexical signals in user turns."""
    emotion = conversation.emotion
    description = taxonomy.describe("emotions", emotion) if taxonomy else ""
    signals, detectable = emotion_signals(emotion, description)
    if not detectable:
        detail = f"emotion '{emotion}' has no lexical signals to check"
        return _check("emotion_adherence", True, 1.0, 0.0, detail)
    user_turns = [words(_content(t)) for t in ordered(turns) if t.role == "user"]
    if not user_turns:
        return _check("emotion_adherence", False, 0.0, weight, "no user turns")
    found: set[str] = set()
    turns_with_signal = 0
    for tokens in user_turns:
        hits = _phrase_hits(tokens, signals)
        if hits:
            turns_with_signal += 1
            found |= hits
    target = max(1, round(len(user_turns) * EMOTION_TURN_SHARE))
    score = min(1.0, turns_with_signal / target)
    shown = ", ".join(sorted(found)[:6]) or "none"
    detail = (
        f"'{emotion}' signals in {turns_with_signal}/{len(user_turns)} user turns "
        f"(target {target}): {shown}"
    )
    return _check("emotion_adherence", turns_with_signal > 0, score, weight, detail)


def _keyword_check(
    name: str,
    label: str,
    description: str,
    text_turns: Sequence[str],
    target: int,
    weight: float,
) -> QualityCheck:
    wanted = keywords(label) | keywords(description)
    if not wanted:
        return _check(name, True, 1.0, 0.0, f"no keywords in '{label}' to check")
    present = frozenset().union(*(_all_stems(text) for text in text_turns))
    found = wanted & present
    need = min(target, len(wanted))
    score = min(1.0, len(found) / need)
    shown = ", ".join(sorted(found)[:8]) or "none"
    detail = f"'{label}': {len(found)}/{len(wanted)} keywords found (need {need}): {shown}"
    return _check(name, score >= 0.5, score, weight, detail)


def check_topic_adherence(
    conversation: Conversation,
    turns: Sequence[Turn],
    taxonomy: Taxonomy | None = None,
    weight: float = 1.0,
) -> QualityCheck:
    """Topic name and taxonomy description keywords appear anywhere in the text."""
    topic = conversation.topic
    description = taxonomy.describe("topics", topic) if taxonomy else ""
    texts = [_content(t) for t in turns]
    return _keyword_check("topic_adherence", topic, description, texts, TOPIC_TARGET, weight)


def check_persona_adherence(
    conversation: Conversation,
    turns: Sequence[Turn],
    taxonomy: Taxonomy | None = None,
    weight: float = 1.0,
) -> QualityCheck:
    """Persona keywords appear in what the user says (or what the assistant says back)."""
    persona = conversation.persona
    description = taxonomy.describe("personas", persona) if taxonomy else ""
    texts = [_content(t) for t in turns]
    return _keyword_check("persona_adherence", persona, description, texts, PERSONA_TARGET, weight)
