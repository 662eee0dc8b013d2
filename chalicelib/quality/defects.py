"""Checks for the ways real generations go wrong, each with reasons a reviewer can read.

Every check returns a :class:`QualityCheck` of kind ``content``: ``reasons`` such as
"turn 7: the assistant refuses as an AI model", the ``turns`` to highlight, and a
``suspicion`` in 0..1. A finding of strength >= ``FINDING`` is a defect (the score is
capped below the flag line, see ``scoring.py``); weaker evidence only lowers the score a
little, so that a reviewer sorting by score still meets the doubtful ones first.

The checks are lexical and deterministic (no model calls, no network), written against
normalised text (straight quotes, single spaces). Each one is tuned to stay quiet on the
things a good conversation legitimately does: an assistant that declines a request
outside the business's services and offers an alternative, that says "no investment is
risk-free", that closes by asking whether there is anything else; a user who greets in
another language or says their own numbers.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Literal

from chalicelib.domain.models import (
    Conversation,
    QualityCheck,
    QualityRules,
    Taxonomy,
    Tier,
    Turn,
)
from chalicelib.quality import grounding, language, style_model
from chalicelib.quality.literal_gates import GatedAlternation, GatedPattern, GateSet, gated
from chalicelib.quality.text import (
    NEGATORS,
    QUOTES,
    content_of,
    normalise,
    ordered,
    reported,
    sentences,
    short,
    speaker,
    words,
)
from chalicelib.quality.validators import STOPWORDS, keywords, stem

FINDING = 0.75  # evidence at or above this is a defect, below it only a suspicion

# The learned word models (quality/style_model.py): a turn's lean to the other side, and a
# last turn's lean to the middle of a conversation, at which each is a finding or only a
# suspicion. Set from bench/style_models.py's leave-one-corpus-out figures.
SPEAKER_MIN_WORDS = 12  # shorter turns ("Thanks, that helps") say too little of a side
SPEAKER_FLAG = 0.15
SPEAKER_SUSPECT = 0.11
LAST_TURN_FLAG = -0.1
LAST_TURN_SUSPECT = -0.03
LAST_TURN_WRAP_UP = 0.1  # above it a last turn reads like a close
REFUSAL_FLAG = 0.25
REFUSAL_SUSPECT = 0.19
# The drift model reads a conversation's closing turns: a run that reads like a drift is
# one, whatever its words; a leaning one adds to the drift check's points.
DRIFT_LEAN_FLAG = 0.06
DRIFT_LEAN_SUSPECT = 0.045


@dataclass(frozen=True)
class Finding:
    turn: int | None
    reason: str
    strength: float = 1.0


@dataclass
class CheckContext:
    """Everything a content check may look at, built once per scoring."""

    conversation: Conversation
    turns: list[Turn]
    taxonomy: Taxonomy | None = None
    chunk_text: str | None = None
    rules: QualityRules | None = None
    business_name: str | None = None
    texts: dict[int, str] = field(default_factory=dict)  # turn number -> normalised text

    def __post_init__(self) -> None:
        self.turns = ordered(self.turns)
        self.texts = {t.turn_number: normalise(content_of(t)) for t in self.turns}

    def of_role(self, role: str) -> list[Turn]:
        return [t for t in self.turns if t.role == role]

    def text(self, turn: Turn) -> str:
        return self.texts.get(turn.turn_number, "")


Severity = Literal["critical", "major", "minor"]


def _result(
    name: str,
    severity: Severity,
    findings: Iterable[Finding],
    weight: float,
    clean_detail: str,
) -> QualityCheck:
    found = sorted(findings, key=lambda f: (-f.strength, f.turn or 0))
    strength = max((f.strength for f in found), default=0.0)
    defects = [f for f in found if f.strength >= FINDING]
    shown = defects or found
    reasons = [f"turn {f.turn}: {f.reason}" if f.turn else f.reason for f in shown[:6]]
    passed = not defects
    if not found:
        detail = clean_detail
    elif passed:
        detail = "possible: " + "; ".join(reasons[:3])
    else:
        detail = "; ".join(reasons[:3])
    return QualityCheck(
        name=name,
        passed=passed,
        score=round(1.0 - strength, 4),
        weight=weight,
        detail=detail,
        kind="content",
        severity=None if passed else severity,
        reasons=reasons if not passed else [],
        turns=sorted({f.turn for f in shown if f.turn}),
        suspicion=round(strength if passed else 1.0, 4),
    )


@dataclass(frozen=True)
class Hit:
    """Where a pattern matched, with the text as written."""

    text: str
    begin: int

    def group(self, _: int = 0) -> str:
        return self.text

    def start(self) -> int:
        return self.begin


class Patterns:
    """Alternative lower-case patterns searched in one pass over the lower-cased text.

    One scan per turn instead of one per pattern, and no IGNORECASE (three times slower
    in ``re``): scoring stays within its per-conversation time budget."""

    def __init__(self, *patterns: str) -> None:
        self.combined = GatedAlternation(patterns)

    def search(self, text: str) -> Hit | None:
        lowered = text.lower()
        match = self.combined.search(lowered)
        if match is None:
            return None
        # lower() keeps positions for nearly all text; when it does not, quote it lowered
        source = text if len(lowered) == len(text) else lowered
        return Hit(source[match.start() : match.end()], match.start())


class _CasePatterns(Patterns):
    """Patterns where case matters (``<CUSTOMER_NAME>``, ``XX%``): searched as written."""

    def search(self, text: str) -> Hit | None:
        match = self.combined.search(text)
        return Hit(match.group(0), match.start()) if match else None


def _any(patterns: Patterns, text: str) -> Hit | None:
    return patterns.search(text)


def _compile(*patterns: str) -> Patterns:
    return Patterns(*patterns)


# --------------------------------------------------------------------------- AI refusals

_AI_IDENTITY = _compile(
    r"\bas an? (?:ai|a\.i\.|artificial intelligence)\b",
    r"\bas an? (?:large )?language model\b",
    # the chat itself named as a machine ("this is an automated booking channel")
    r"\b(?:this is|you're (?:talking|chatting|writing) (?:to|with)|you've reached) an? "
    r"(?:automated|automatic|computer-run) (?:[a-z-]+ ){0,2}(?:channel|service|system|line|"
    r"assistant|chat|desk|inbox)\b",
    r"\b(?:i'm|i am) (?:just |only |merely |simply |actually )?(?:an? )?(?:[a-z-]+ ){0,3}(?:ai|"
    r"a\.i\.|artificial intelligence|(?:large )?language model|llm|chat ?bot|ai[- ](?:model|"
    r"assistant|system|program|chatbot)|computer program|machine learning model|virtual "
    r"assistant|automated assistant)\b",
    r"\b(?:i'm|i am|this is) claude\b",
    # "since I'm a machine that answers from text", "I'm only a computer"
    r"\b(?:i'm|i am|being) (?:just |only |merely |simply )?(?:an? )?(?:[a-z-]+ )?(?:machine|"
    r"computer|robot|bot)\b(?! (?:operator|shop|technician|engineer|mechanic|repair|fitter))",
    r"\bbeing an? (?:[a-z-]+ ){0,2}(?:ai|language model|chat ?bot|virtual assistant|bot)\b",
    r"\bas an? (?:[a-z-]+ ){0,3}(?:ai|language model|chat ?bot|virtual assistant|digital "
    r"assistant)\b",
    r"\b(?:my|these|the|our|all) (?:responses|answers|replies|messages) (?:here )?(?:are|get|were) "
    r"(?:automatically |all )?(?:generated|produced|written) (?:automatically|by (?:a |an )?"
    r"(?:computer|machine|program|software|ai|model|algorithm))\b|\bmy (?:responses|answers|replies) "
    r"are (?:automatically )?generated\b|\b(?:automatically|computer|machine)[- ]generated "
    r"(?:replies|answers|responses|messages)\b",
    # "I'm just a bundle of software answering messages", "I'm only code"
    r"\b(?:i'm|i am|being) (?:just |only |merely |simply |really )?(?:an? (?:[a-z-]+ ){0,2}of "
    r"(?:software|code|algorithms)|software|code|a piece of software|a script)\b",
    r"\b(?:i'm|i am|being) (?:just |only )?an? (?:[a-z-]+ )?(?:text-based|text-generation|"
    r"text-generating|software|computer|automated|digital|online) (?:[a-z-]+ )?(?:program|"
    r"system|tool|service|helper|assistant)\b",
    # the speaker, or what the customer is talking to, named as a machine-run service
    r"\b(?:i'm|i am|being|(?:you're|you are) (?:talking|chatting|speaking|writing|messaging) "
    r"(?:to|with)) (?:just |only |merely |simply )?(?:an?|the) (?:[a-z-]+ ){0,2}(?:automated|"
    r"automatic|text|text-only|chat|computeri[sz]ed|scripted|ai|ai-powered|software) (?:[a-z-]+ )?"
    r"(?:service|system|program|programme|tool|bot|assistant|model|agent|helper|responder|"
    r"line|function|feature|widget|window)\b",
    # the speaker's making described ("I was built to handle orders", "answering from a
    # script", "outside what I've been set up to do")
    r"\bi (?:was|(?:'ve|have) been) (?:only |just )?(?:built|programmed|configured|coded) "
    r"(?:to|for|only)\b|\bwhat i(?:'m| am|'ve been| have been) (?:built|programmed|configured|"
    r"set up|designed) (?:to do|to handle|to answer|for)\b|\b(?:answering|replying|responding) "
    r"(?:you )?from a script\b",
    # the chat itself said to be a machine's, not a person's
    r"\bthis (?:chat|conversation|service|line|inbox) is (?:run|handled|operated|powered|"
    r"answered|staffed) by (?:software|a program|a computer|a bot|an automated|automated|an "
    r"algorithm|a machine)\b|\b(?:software|a program|a bot|a machine) rather than (?:by )?(?:a "
    r"person|a human|someone|one of (?:our|the) (?:staff|team))\b",
    r"\bmy knowledge (?:comes from|is based on|is limited to|only goes up to)\b|\btraining data "
    r"with a cut-?off\b",
    r"\b(?:made|created|developed|trained|built|designed) by (?:anthropic|openai|google|meta)\b",
    r"\bchat ?gpt\b",
    r"\bmy (?:training data|training cut-?off|knowledge cut-?off|programming|creators)\b",
    r"\bi (?:don't|do not|can't|cannot) (?:have|experience|feel) (?:any )?(?:personal )?"
    r"(?:feelings|emotions|opinions|a body|experiences|consciousness)\b",
    r"\bi(?:'m| am) not (?:a |an )?(?:real |actual )?(?:human|person)\b",
    r"\b(?:not able|unable|can't|cannot) (?:to )?(?:browse|access|search) the (?:internet|web)\b",
    r"\bi (?:don't|do not) have (?:the ability to|access to) (?:real-time|the internet|"
    r"browse|current events)\b",
)
# A model's stock refusal: sorry, cannot help "with that request". A professional
# declining something specific ("I can't help you hide income from the IRS, but...") is
# not one of these.
_CANNED_REFUSAL = _compile(
    r"^(?:i'm sorry|i am sorry|i apologi[sz]e|sorry)[,.!]? (?:but )?i (?:can't|cannot|"
    r"can not|am unable to|am not able to|won't|will not|must decline to) (?:help|assist|"
    r"comply|fulfil|fulfill|continue|engage)(?: you)?(?: with)?(?: (?:that|this|your|such)"
    r"(?: request| question| query| topic)?)?\s*[.!]",
    r"\bi (?:can't|cannot|won't|will not) (?:help|assist) (?:you )?with (?:that|this|your|such)"
    r"(?: request| query)?(?: at all)?\s*[.!]",
    r"\bi'm (?:not able|unable) to (?:help|assist) (?:you )?with (?:that|this)(?: request)?[.!]",
    r"\bi (?:can't|cannot) (?:fulfil|fulfill|comply with) (?:that|this|your) request\b",
    # a refusal of a whole class of requests: a model's content policy, not the business's
    r"\bi(?:'m| am) (?:not able|unable|not allowed|not permitted) to (?:help|assist) with "
    r"(?:any )?(?:requests|questions|queries|topics|conversations) (?:that (?:involve|concern|"
    r"relate to)|involving|about|related to|regarding|concerning|on)\b",
)
# A model's safety deflection: sends the customer to "a professional in your area" when
# the business is that professional.
_DEFLECTION = _compile(
    r"\b(?:a|an|your local|another) (?:qualified |licensed |certified |registered |local )+"
    r"[a-z -]{0,40}(?:in|near) your area\b",
    r"\b(?:please |i'd (?:recommend|suggest) (?:you )?|you should )(?:reach out to|consult|contact|"
    r"speak (?:to|with)|seek (?:help from|advice from)?) (?:a|an) (?:qualified|licensed|certified|"
    r"registered) (?:[a-z-]+ ){0,2}(?:professional|expert|specialist|practitioner)\b",
    r"\bseek (?:professional|expert|qualified) (?:advice|help|guidance)\b",
)
_NOT_ABLE_TO_ADVISE = re.compile(
    r"\bi(?:'m| am) (?:not able|unable|not permitted|not allowed) to (?:provide|give|offer) "
    r"(?:[a-z-]+ ){0,3}(?:advice|guidance|recommendations|diagnos[ie]s)\b|\bi(?:'m| am) not in a "
    r"position to (?:judge|say|assess|advise|tell)\b"
)
# Refusing by policy or programming is the model talking, never the business.
_POLICY_REFUSAL = _compile(
    r"\b(?:goes|go|is|would be) against my (?:guidelines|programming|policies|principles|values)\b",
    r"\bi(?:'m| am) not (?:programmed|designed|built) to\b",
    r"\b(?:my|openai's|anthropic's) (?:content|usage|safety) (?:policy|policies|guidelines)\b",
    r"\bthis request (?:violates|goes against)\b",
)
_USER_AI_LEAK = _compile(
    r"\bas an? (?:ai|a\.i\.|artificial intelligence|(?:large )?language model)\b",
    r"\b(?:i'm|i am) (?:an? )?(?:ai|language model|assistant)\b",
    # the user stepping out of the role-play
    r"\bsimulated (?:chat|conversation|dialogue|exchange|customer)\b|\bthis (?:is|isn't) "
    r"(?:just |only )?(?:a |an )?(?:simulation|role-?play|training (?:example|conversation))\b",
    r"\bfor an? (?:ai|bot|chatbot|language model)\b|\b(?:you're|you are) (?:just |only |such "
    r"|actually )?an? (?:ai|bot|chatbot|language model|ai model)\b",
)


def check_ai_refusal(ctx: CheckContext, weight: float = 1.0) -> QualityCheck:
    findings: list[Finding] = []
    edge = ctx.conversation.tier == Tier.EDGE_CASE
    for turn in ctx.turns:
        text = ctx.text(turn)
        if turn.role == "assistant":
            match = _any(_AI_IDENTITY, text)
            if match:
                findings.append(
                    Finding(
                        turn.turn_number,
                        f'the assistant refuses or speaks as an AI model ("{short(match.group(0), 50)}")',
                    )
                )
                continue
            match = _any(_POLICY_REFUSAL, text)
            if match:
                findings.append(
                    Finding(
                        turn.turn_number,
                        f'the assistant refuses by its own policy ("{short(match.group(0), 50)}")',
                    )
                )
                continue
            match = _any(_CANNED_REFUSAL, text)
            if match:
                # Edge cases sometimes call for a refusal; a canned one is still poor
                # training data, but less surely a broken generation.
                findings.append(
                    Finding(
                        turn.turn_number,
                        f'the assistant gives a canned refusal ("{short(match.group(0), 50)}")',
                        0.8 if edge else 1.0,
                    )
                )
                continue
            match = _any(_DEFLECTION, text)
            if match:
                refuses = bool(_NOT_ABLE_TO_ADVISE.search(text.lower()))
                findings.append(
                    Finding(
                        turn.turn_number,
                        "the assistant deflects to another professional instead of helping "
                        f'("{short(match.group(0), 50)}")',
                        1.0 if refuses or "your area" in match.group(0).lower() else 0.6,
                    )
                )
        else:
            match = _any(_USER_AI_LEAK, text)
            if match:
                findings.append(
                    Finding(
                        turn.turn_number,
                        f'the user speaks as an AI model ("{short(match.group(0), 50)}")',
                    )
                )
    found = {f.turn for f in findings}
    findings += [f for f in _refusal_model_findings(ctx) if f.turn not in found]
    return _result("ai_refusal", "critical", findings, weight, "no refusals or AI self-references")


# A decline that offers another way ("your accountant can, and I can share our guidance")
# is how staff say no; the refusal model alone does not make it a defect.
_ANOTHER_WAY = re.compile(
    r"\b(?:but|instead|what) (?:i|we) (?:can|could)\b|\b(?:i|we) can (?:share|explain|walk|"
    r"show|send|tell|give|help|point|book|arrange|put)\b|\b(?:your|an?|the) \w+ (?:can|could|"
    r"will)\b|\b(?:happy|glad) to\b"
)


def _refusal_model_findings(ctx: CheckContext) -> list[Finding]:
    """Assistant turns worded like the refusals and AI self-references the model learned
    from, in words no pattern above has."""
    refusal = style_model.model("refusal")
    found = []
    for turn in ctx.turns:
        if turn.role != "assistant":
            continue
        text = ctx.text(turn)
        lean = refusal.lean(text)
        strong = lean >= REFUSAL_FLAG and not _ANOTHER_WAY.search(text.lower())
        if lean >= REFUSAL_SUSPECT:
            words_shown = ", ".join(f'"{w}"' for w in refusal.evidence(text))
            found.append(
                Finding(
                    turn.turn_number,
                    "the assistant's words read like a refusal or a machine talking about "
                    f"itself ({words_shown})",
                    0.9 if strong else 0.5,
                )
            )
    return found


# --------------------------------------------------------------------------- generator leaks

_CHATTER = _compile(
    r"^(?:sure|certainly|of course|absolutely|okay|ok|alright|great)[!,.]*\s+(?:here(?:'s| is|"
    r" are)|below (?:is|are)|i(?:'ve| have) (?:written|created|generated|prepared))\b[^.!?]{0,60}"
    r"\b(?:dialogues?|conversations?|exchanges?|transcripts?|role-?plays?|scripts?|examples?|"
    r"repl(?:y|ies)|responses?|answers?|messages?|turns?|versions?|drafts?|rewrites?)\b",
    r"\bhere(?:'s| is) (?:the|a|my) (?:assistant's|user's|customer's|client's|agent's|next|"
    r"revised|rewritten|updated|improved|new) (?:reply|response|turn|message|answer|line)\b",
    r"^[^\n]{0,120}\b(?:tone|reply|response|turn|dialogue|persona|style)\b[^\n]{0,40}:\s*\n",
    r"(?:^|\n)\s*\**(?:user|assistant|customer|client|advisor|agent|representative|human|ai|"
    r"system|bot)\**\s*[\(\[][^\n\)\]]{0,80}[\)\]]\s*:",
    r"\b(?:tone|persona|chunk|emotion|intent|tier|turn)\s*:\s*[^\n|]{1,40}\|",
    r"^\s*(?:key points|outline|plan|notes?|draft|summary)(?: for (?:this|the) (?:reply|response|"
    r"turn|answer))?\s*:|\bdraft:\s",
    r"\((?:note|n\.b\.|author's note|editor's note|writer's note)\s*:",
    # a speaker label opening the turn ("Advice line agent:", "Front desk receptionist:")
    r"^\s*(?:[A-Za-z'-]+ ){0,3}(?:agent|advis[eo]r|assistant|representative|receptionist|"
    r"coordinator|consultant|operator|specialist|staff|user|customer|client|caller|guest|"
    r"patient|buyer|applicant|host|rep|bot)\s*:\s",
    # another speaker's label mid-turn: the generation ran on into the next message
    r"[.!?]\s+(?:user|customer|client|caller|guest|patient|buyer|agent|assistant)\s*:\s+[a-z]",
    # a stage direction ("[checks the on-call board]"), a rule and the writer's notes
    r"[\[(](?:checks|looks|smiles|nods|pauses|laughs|sighs|types|picks|opens|scrolls|leans|"
    r"reads|writes|turns|glances|waits|clears|hands|points|gestures)\b[^\])\n]{0,80}[\])]|"
    r"(?:^|\n)\s*-{3,}\s*(?:\n|$)|\n\s*(?:notes?|commentary|explanation|rationale)\s*:",
    # the writer's note about the turns to come, and a turn opened by its own label
    r"\bnote (?:for|to|about) (?:the |my )?(?:next|following|coming|later) (?:turns?|repl(?:y|ies)|"
    r"responses?|messages?|exchanges?)\b|\bnote to (?:self|myself)\b|\bfor the next (?:turn|reply)"
    r"\s*:|^\s*(?:assistant|agent|advis[eo]r|user|customer)\s*,[^.!?\n]{0,60}\b(?:\d+ of \d+|"
    r"question|intent|ambiguity|goal|purpose|strategy|tone|persona|emotion|topic|style|"
    r"register|mood)\b",
    # the writer's plan for the scene ("Customer is engaged and technical, keep numbers
    # coming; next beat is the rainy season, then close on the upgrade path.")
    r"(?:^|[.!?]\s+)(?:the )?(?:customer|user|client|caller|guest|patient|buyer|member|parent)"
    r"(?:'s| is| seems| sounds| wants| feels| has)\b[^.!?]{0,80}[,;:]\s*(?:so )?(?:keep|lead|"
    r"stay|use|give|mention|acknowledge|skip|focus|open|start|close|end|wrap|push|move|steer|"
    r"bring)\b|\b(?:next|final|last|closing|opening|emotional) beat\b|\b(?:then|and) close on "
    r"(?:the|a|an|her|his|their)\b",
    # a bracketed label carrying the brief's fields ("[Support desk | tone: warm]")
    r"[\[(][^\])\n]{0,60}\b(?:tone|persona|emotion|speaker|style|mood|intent|register|"
    r"sentiment)\s*[:=][^\])\n]{0,60}[\])]|^\s*\[[^\]\n|]{1,60}\|[^\]\n]{1,60}\]",
    # the speaker narrated in the third person ("The dietitian pauses before answering")
    r"(?:^|[.!?]\s+)the (?:[a-z-]+ ){0,2}(?:pauses|smiles|nods|sighs|leans (?:in|back|forward)|"
    r"chuckles|hesitates|frowns|grins|winces|beams|clears (?:her|his|their) throat|takes a "
    r"(?:deep )?breath|looks up|glances)\b|\b(?:her|his|their) voice (?:softens|warms|drops|"
    r"brightens|lowers)\b",
    # instructions left for the writer ("[Continue: have the parent ask about ...]", "[Add
    # one line about access here]")
    r"\[(?:continue|next|note|notes|instructions?|remember|keep|make sure|have the|write|"
    r"add|insert|include|mention|expand|describe|fill in|replace|check|confirm|todo|tbd|"
    r"explain|list|say|use|cite|link|"
    r"the (?:user|assistant|customer|client) (?:should|will|now|asks|replies))\b[^\]\n]{0,200}\]",
    # a reply opened by its own brief ("Consultant reply, direct tone, acknowledge ...:")
    r"^\s*(?:[a-z'-]+ ){0,3}(?:reply|response)\b[^:.!?\n]{0,120}:\s",
    # the writer's bookkeeping and its question to whoever asked for the dialogue
    r"\b(?:word|character|token) count\s*[:=]?\s*\d+|\b(?:continue|extend|end|stop|finish|"
    r"wrap up|expand)\b[^.?!]{0,40}\b(?:the|this) (?:dialogue|script|role-?play|scene|"
    r"transcript)\b|\b(?:good|natural|sensible) place to (?:end|stop|pause|wrap)\b",
    # the writer's scratch work and its sources ("Scratch: 5 + 2 = 7, matches the chunk
    # figures"), and a stage direction to the writer ("Calm, not defensive; acknowledge
    # the threat without escalating.")
    r"(?:^|[.!?]\s+)(?:scratch|calc|calculation|working|sanity check|math check)\s*:|\b(?:the|"
    r"this) (?:chunk|excerpt|source (?:text|material|document)|knowledge(?:-| )base entry|brief|"
    r"prompt)(?:'s)? (?:figures|numbers|facts|wording|text|says|states)\b|^[^.!?]{0,60}[;:,] "
    r"?(?:acknowledge|validate|mirror|de-?escalate|reassure|empathi[sz]e with) (?:the|their|"
    r"her|his) (?:threat|concern|feelings?|frustration|anger|worry|worries|emotions?|fear)s?\b",
    # the writer planning the reply about the customer ("She's in a hurry, so lead with
    # the test and keep it short.")
    r"^(?:(?:she|he|they)(?:'s|'re| is| are| seems| sounds)|the (?:customer|user|client|"
    r"caller|guest|patient)(?:'s| is| seems| sounds| wants))[^.!?]{0,80}\bso (?:lead|keep|"
    r"start|open|answer|reply|focus|stay|use|give|mention|acknowledge|skip)\b",
    # model control tokens and chat-template markup
    r"<\|[a-z_]{2,20}\|>|\[/?inst\]|</?s>|<<sys>>|^\s*#{2,}\s*(?:instruction|response|input|"
    r"output)\b",
    r"\((?:this|the) (?:reply|response|turn|answer|message)\b[^)]{0,200}\b(?:tone|persona|"
    r"chunk|excerpt|brief|prompt|requires?|as requested|instructions?|guidelines)\b[^)]*\)|\bas "
    r"the (?:tone|persona|brief|prompt|instructions?|scenario|task|spec) (?:require[sd]?|"
    r"ask(?:s|ed)?|request(?:s|ed)|specif(?:ies|ied)|demand(?:s|ed)?|wanted|called for)\b",
    # a second candidate reply offered inside the turn ("Alternative, more casual version:")
    r"\b(?:alternative|alternate|second|more (?:casual|formal|concise|detailed|friendly))"
    r"(?:,? [a-z]+){0,2} (?:version|draft|variant|rewrite)\s*:",
    r"\*(?!\s)[a-z][a-z ,'-]{2,80}(?: [a-z,'-]+){2,}\*",
    r"\"\s*\}\s*,\s*\{\s*\"(?:role|content|from|value)\"\s*:|\"(?:role|content)\"\s*:\s*\"(?:user|"
    r"assistant|human|gpt)\"",
    r"\bhere(?:'s| is| are) (?:a |an |the |your )?(?:realistic |sample |example |possible |"
    r"simulated |synthetic |training |multi-turn |fictional |short |complete )*(?:dialogues?|"
    r"conversations?|exchanges?|transcripts?|role-?plays?)\b",
    r"\b(?:this|the above|the following|that) (?:dialogue|conversation|exchange|transcript|"
    r"role-?play|example) (?:demonstrates|shows|illustrates|is designed|captures|highlights|"
    r"models|is meant)\b",
    r"\[(?:end|start) of (?:the )?(?:conversation|dialogue|transcript|role-?play|chat)\]",
    r"\b(?:end|conclusion) of (?:the )?(?:conversation|dialogue|transcript|role-?play|simulation)\b",
    r"^\s*(?:note|notes|explanation|commentary)\s*:.{0,200}\b(?:conversation|dialogue|"
    r"exchange|example|role-?play|the (?:user|assistant))\b",
    r"\blet me know if you(?:'d| would)? (?:like|want) (?:me to )?(?:any )?(?:changes|"
    r"adjustments|modifications|another (?:version|conversation|example)|more (?:turns|"
    r"examples)|(?:to )?(?:adjust|modify|change|expand) (?:the|this) (?:conversation|dialogue))",
    r"\bi hope this (?:conversation|dialogue|example|exchange) (?:helps|is helpful|works|"
    r"meets)\b",
    r"\b(?:in|for) this (?:role-?play|simulated conversation|training (?:example|conversation))\b",
    r"(?:^|\n)\s*\**(?:turn \d+|(?:user|assistant|customer|client|advisor|agent|"
    r"representative|human|ai)(?: \d+)?)\s*(?:\((?:user|assistant|customer|client|"
    r"advisor)\))?\**\s*:",
    r"\bthe (?:user|assistant|customer|client) (?:says|responds|replies|asks|nods|smiles)\b",
    r"^\s*\((?:the )?(?:user|customer|client|assistant|advisor)\b[^)]*\)",
    # turn counters and the generator talking about its own output
    r"^\s*[\[(]?turn \d+(?: of \d+)?[\])]?\s*(?:[-:.\u2013]|$)|[\[(]turn \d+(?: of \d+)?[\])]|"
    r"\b(?:turn|message|reply) \d+ of \d+\b",
    r"\b(?:continuation|continuing|rest|remainder|next (?:part|section)) of (?:the|this|our) "
    r"(?:dialogue|conversation|exchange|script|role-?play|transcript)\b",
    # the plan's line for this turn ("Assistant turn 6, calm, cover dilation:")
    r"^\s*(?:the )?(?:user|assistant|customer|client|agent|advis[eo]r)(?:'s)? (?:turn|reply|"
    r"response|message|line) \d+\b",
    # a retrieval citation left in the reply ("[gq_savings, para. 2]", "[source 3]", "[2]")
    r"\[[^\]\n]{0,50}\b(?:para(?:graph)?|pp?|sec(?:tion)?|source|src|doc(?:ument)?|chunk|ref|"
    r"kb|page|excerpt|passage)\.?\s*#?\d+[^\]\n]{0,20}\]|\[[a-z0-9]+(?:[_-][a-z0-9]+)*_[a-z0-9]+"
    r"(?:[,:;#.][^\]\n]{0,40})?\]|\u3010[^\u3011\n]{1,60}\u3011|\[\d{1,2}(?:\s*[,\u2013-]\s*\d{1,2})*"
    r"\](?!\()|[\[(](?:sources?|src|refs?|references?|chunks?|docs?|kb|citations?|cite|"
    r"retrieved from|from chunk)\s*[:#=]\s*[^\])\n]{1,60}[\])]",
    # the brief's line for the reply opening it ("Respond enthusiastically but be honest
    # about the trade-off.")
    r"(?:^|\n|[\[(])\s*(?:respond|reply|answer|acknowledge|reassure|empathi[sz]e|validate|"
    r"de-?escalate)\b[^.!?\])\n]{0,120}\b(?:enthusiastic(?:ally)?|warm(?:ly)?|honest(?:ly)?|"
    r"brief(?:ly)?|friendly|polite(?:ly)?|calm(?:ly)?|empathetic(?:ally)?|professional(?:ly)?|"
    r"concise(?:ly)?|upbeat|positive(?:ly)?|reassuring(?:ly)?|gently|firmly|tone|the (?:user|"
    r"customer|client|couple|caller|guest|patient|member|parent|student|family|bride|groom|"
    r"buyer|tenant|owner)(?:'s)?)\b",
    # the prompt's instructions echoed back ("keep every reply friendly ... under 220 words")
    r"\b(?:remember|make sure|be sure|don't forget) to\b[^.!?]{0,80}\b(?:every|each|all|the|"
    r"your) (?:repl(?:y|ies)|responses?|turns?|answers?)\b|\b(?:stay|keep (?:each|every|the|"
    r"your) (?:repl(?:y|ies)|responses?|turns?|answers?)) (?:under|below|within|to) (?:\d+|a "
    r"few|two|three) (?:words|sentences)\b",
)
_QUOTED = re.compile(
    r"(?:^|(?<=[\s(:]))'[^'\n]{1,160}'(?=[\s,.;:!?)]|$)|\"[^\"\n]{1,160}\"|\u201c[^\u201d\n]{1,160}\u201d|"
    r"\u2018[^\u2019\n]{1,160}\u2019(?=[\s,.;:!?)]|$)"
)
_PLACEHOLDERS = _CasePatterns(
    r"\{\{\s*[\w .-]{1,40}\s*\}\}",
    r"\{\s*[a-z][a-z0-9]*(?:_[a-z0-9]+)+\s*\}|\{\s*[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\s*\}|"
    r"\$\{\s*\w{1,40}\s*\}|%\(\w{1,40}\)s|(?i:\{(?:name|company|client|customer|date|amount|"
    r"business|product|fee|phone|email|address|city|advisor|agent)\})",
    r"<\s*[A-Z][A-Z0-9]*(?:[_ ][A-Z0-9]+)*\s*>",
    r"(?i:<(?:name|customer|client|company|first[ _]name|last[ _]name|date|amount)>)",
    r"(?i:\[(?:insert|enter|add|your|client'?s?|customer'?s?|company|business|agent'?s?|"
    r"advisor'?s?|first|last|full|patient'?s?|firm'?s?)\b[^\]\n]{0,40}\](?!\())",
    r"(?i:\[(?:name|date|amount|number|phone(?: number)?|email(?: address)?|address|fee|company|"
    r"city|time|price|rate|percentage|x+|placeholder|tbd|todo)\](?!\())",
    r"\bXX+(?:\.X+)?\s?%|\$\s?X+(?:[,.]X+)*\b|\bX{3,}\b|\bXXX-XXXX\b",
    # a template variable in any delimiters ("%SLOT_1%", "$$name$$", "@AGENT@", "[[date]]")
    r"(?<![\w%$#@|~^=!&])([%$#@|~^=!&]{1,2})(?:[A-Z][A-Z0-9]{2,}|[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+)"
    r"\1(?![\w%])|\[\[\s*[\w .-]{1,40}\s*\]\]|<<\s*[\w .-]{1,40}\s*>>",
    r"(?<![\w@./-])[A-Z][A-Z0-9]*_[A-Z0-9]+(?:_[A-Z0-9]+)*(?![\w@/-])",
    r"(?i:\blorem ipsum\b)",
    # a bracketed blank ("[clinician name]", "<insert pricing table here>", "Ms. ____")
    r"(?i:\[[a-z][a-z' ]{0,30}\b(?:name|date|number|amount|address|email|phone|time|price|fee|"
    r"location|details?)\](?!\())",
    r"(?i:<\s*(?:insert|add|enter|include|paste|fill in)\b[^>\n]{0,60}>)",
    r"_{3,}|\bX\.X\b",
    r"\b(?:TODO|TBD|FIXME)\b",
    # escapes of a serialisation left in the text ("Kov\u00e1cs", "\n", '\"')
    r"\\(?:u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|[nrt\"](?![a-z]{3}))",
)


def _repeated_passage(text: str) -> str | None:
    """A sentence of six words or more said twice in one turn: a generation that looped."""
    seen: set[str] = set()
    for sentence in sentences(text):
        key = " ".join(words(sentence))
        if len(key.split()) >= 6:
            if key in seen:
                return sentence
            seen.add(key)
    return None


_MARKDOWN_BOLD = re.compile(r"\*\*[^*\n]{2,80}\*\*|__[^_\n]{2,80}__")
_MARKDOWN_LINE = re.compile(r"^[ \t]*(?:[-*\u2022+]|\d{1,2}[.)])[ \t]+\S", re.MULTILINE)
_MARKDOWN_HEADING = re.compile(r"^[ \t]*#{1,6}[ \t]+\S", re.MULTILINE)


def _markdown_layout(raw: str) -> str | None:
    """What makes a turn a formatted document rather than a chat message: headings, or
    bold labels over list lines, or a list of three lines or more."""
    if "\n" not in raw:
        return None
    lines = len(_MARKDOWN_LINE.findall(raw))
    if _MARKDOWN_HEADING.search(raw):
        return "headings"
    if _MARKDOWN_BOLD.search(raw) and lines >= 2:
        return "bold headings over bullet lines"
    if lines >= 3:
        return "bullet lines"
    return None


def _brief_fields(conv: Conversation) -> re.Pattern[str] | None:
    """The plan's own fields named with their values ("tone Gracious", "persona: Retired
    couple"): the brief the turn was written from, left in it."""
    return _brief_pattern(conv.persona, conv.emotion, conv.topic, conv.intent, conv.tone)


@lru_cache(maxsize=256)  # a dataset's conversations share their few taxonomy values
def _brief_pattern(
    persona: str, emotion: str, topic: str, intent: str, tone: str
) -> re.Pattern[str] | None:
    fields = {"persona": persona, "emotion": emotion, "topic": topic, "intent": intent}
    fields["tone"] = tone
    named = [
        rf"{field}\s*[:=-]?\s*[\"'\u201c]?{re.escape(value.lower())}\b"
        for field, value in fields.items()
        if value and len(value) >= 3
    ]
    return re.compile(r"\b(?:" + "|".join(named) + ")") if named else None


def check_generator_artifacts(ctx: CheckContext, weight: float = 1.0) -> QualityCheck:
    findings: list[Finding] = []
    brief = _brief_fields(ctx.conversation)
    for turn in ctx.turns:
        raw = content_of(turn)
        who = speaker(turn.role)
        named = brief.search(raw.lower()) if brief else None
        if named:
            findings.append(
                Finding(
                    turn.turn_number,
                    f'the plan\'s fields leaked into what {who} says ("{short(named.group(0), 50)}")',
                )
            )
            continue
        # A user quoting what they were sent ("it started 'Dear [CUSTOMER NAME]'") is
        # telling us about someone else's template, not leaking ours.
        match = _any(_PLACEHOLDERS, _QUOTED.sub(" ", raw) if turn.role == "user" else raw)
        if match:
            findings.append(
                Finding(
                    turn.turn_number,
                    f'an unfilled placeholder in what {who} says ("{short(match.group(0), 40)}")',
                )
            )
            continue
        match = _any(_CHATTER, raw.translate(QUOTES))
        if match:
            findings.append(
                Finding(
                    turn.turn_number,
                    f'generator chatter leaked into the turn ("{short(match.group(0), 50)}")',
                )
            )
            continue
        markdown = _markdown_layout(raw)
        if markdown:
            findings.append(
                Finding(
                    turn.turn_number,
                    f"{who} is laid out as a Markdown document ({markdown}), not chat text",
                )
            )
            continue
        repeated = _repeated_passage(ctx.text(turn))
        if repeated:
            findings.append(
                Finding(
                    turn.turn_number,
                    f'{who} says the same passage twice in one turn ("{short(repeated, 50)}")',
                )
            )
    return _result(
        "generator_artifacts",
        "critical",
        findings,
        weight,
        "no generator chatter or unfilled placeholders",
    )


# --------------------------------------------------------------------------- regulated claims

# Claims a regulated business must never make, with how sure a match is. A claim
# preceded by a negator in its sentence ("no investment is risk-free", "I can't
# guarantee a return"), or reported as a warning ("anyone who promises a guaranteed
# return"), is not made; a hedge ("may", "could") halves it.
_GAIN = (
    r"(?:returns?|profits?|gains?|growth|yields?|earnings|appreciation|\d+(?:\.\d+)?\s?%"
    r"(?: (?:a|per|each|every) year| annually| return)?|double|outperform|beat)"
)
_ASSET = (
    r"(?:market|stocks?|shares|portfolio|investments?|funds?|crypto|bitcoin|property|"
    r"home (?:values?|prices?)|real estate|returns?|your money|your savings|it|this)"
)
_CLAIMS: tuple[tuple[str, GatedPattern, float], ...] = tuple(
    (label, gated(pattern), strength)
    for label, pattern, strength in (
        (
            "a guaranteed return",
            rf"\bguarantee(?:d|s)?\b(?! by )[^.!?]{{0,25}}\b{_GAIN}(?!\w)",
            1.0,
        ),
        (
            "a guaranteed return",
            rf"\b{_GAIN}(?!\w)[^.!?]{{0,25}}\b(?:is|are|will be|stays?|remains?) guaranteed\b",
            1.0,
        ),
        (
            "a promised return",
            # a portfolio "built to deliver 8% a year", "your principal is protected"
            r"\b(?:built|designed|set up|engineered|structured) to (?:deliver|return|give you|"
            r"earn|generate|produce) (?:a |an )?(?:steady |reliable |solid |consistent )?\d+(?:\.\d+)?"
            r"\s?%|\b(?:your|the) (?:principal|capital|original investment|initial investment)"
            r" (?:is|stays|remains|will be|will stay) (?:fully |completely |totally )?(?:protected|"
            r"safe|secure|intact)\b(?! (?:by|up to|under|through|with))",
            1.0,
        ),
        (
            "a promise of no risk",
            r"\b(?:no|zero|without any|without|free of|free from) (?:real |actual |downside |"
            r"investment |financial |market )?risks?\b(?! of (?!los))|\brisk[- ]free\b(?! rate)|"
            r"\bno chance of losing\b|\bno downside\b|\bno risk of los(?:s|ing)\b",
            1.0,
        ),
        (
            "a promise that the client cannot lose",
            # not "you won't lose the deposit" (a policy), but losing as such ruled out
            r"\b(?:you )?(?:can't|cannot|can not) (?:possibly )?lose\b(?! (?:sight|track|focus|"
            r"hope|touch|access|your place|the|your|any of))|\b(?:will never|never) lose (?:money|"
            r"a (?:penny|cent|dime)|value|anything)\b|\bwon't lose (?:a (?:penny|cent|dime|thing)|"
            r"any(?:thing| money)|money|out)\b|\bsafe bet\b|\bsure thing\b|"
            r"\b(?:100%|one hundred percent|completely|totally|absolutely|perfectly) (?:safe|"
            r"secure|protected)\b",
            1.0,
        ),
        (
            "a market or performance prediction",
            rf"\b{_ASSET}\b[^.!?]{{0,30}}\b(?:will|is going to|are going to|is sure to|are sure "
            r"to|is certain to) (?:definitely |certainly |surely |absolutely )?(?:double|triple|"
            r"go up|rise|recover|bounce back|outperform|beat the market|keep (?:rising|growing|"
            r"going up)|pay off|grow)\b|\b(?:double|triple) your money\b",
            1.0,
        ),
        (
            "a promise of a cure or certain medical outcome",
            r"\b(?:will|is guaranteed to|guaranteed to|is certain to|definitely|100%) (?:cure|"
            r"heal|eliminate|get rid of|reverse)\b|\bguaranteed (?:cure|results?|to work|relief|"
            r"recovery|to (?:fix|heal|cure))\b|\b(?:permanent|complete|total) cure\b|\bno side "
            r"effects\b|\b(?:100%|completely|totally|entirely) (?:effective|painless|harmless)\b",
            1.0,
        ),
        (
            "a promise of a cure or certain medical outcome",
            r"\bwill (?:definitely|certainly|surely|absolutely) (?:work|help|fix|heal|go away)\b",
            0.6,
        ),
        (
            "medical certainty without an examination",
            r"\b(?:no|there's no|there is no|you don't|you do not) need (?:to see|to visit|for) "
            r"(?:a |an |your )?(?:doctor|dentist|physician|specialist|gp|physio|therapist|vet)\b|"
            r"\b(?:i'm|i am) (?:certain|sure|positive) (?:that )?(?:it's|it is) (?:nothing|not "
            r"serious|not cancer|just|only|benign|fine|harmless)\b|\b(?:it's|it is|that's|that "
            r"is) (?:definitely|certainly) (?:nothing|not serious|not cancer|benign)\b",
            1.0,
        ),
        (
            "a promise of a legal outcome",
            r"\b(?:you'll|you will|you are going to|you're going to) (?:definitely|certainly|"
            r"surely|absolutely|easily) win\b|\b(?:you'll|you will) win (?:the|your|this) "
            r"(?:case|claim|lawsuit|appeal|dispute|tribunal)\b|\bguarantee(?:d)? (?:(?:that )?"
            r"you(?:'ll| will)? )?(?:win|a win|victory|a settlement|compensation)\b|"
            r"\b(?:open[- ]and[- ]shut|slam[- ]dunk) case\b|\bno way (?:they|you) (?:can|could|"
            r"will) (?:lose|win)\b|\b(?:they|your employer|the court|the judge) (?:will|is going "
            r"to) (?:definitely|certainly) (?:pay|lose|rule)\b",
            1.0,
        ),
        (
            "a promise of a legal outcome",
            r"\b(?:you're|you are) going to win\b|\b(?:certain|sure|guaranteed|bound) to "
            r"(?:win|succeed|find in your favou?r|rule in your favou?r)\b|\bexpect a "
            r"(?:substantial|large|big|generous|significant) (?:payout|award|settlement|pay-?off)\b",
            1.0,
        ),
        (
            "legal certainty",
            r"\b(?:100%|completely|totally|perfectly) legal\b",
            0.6,
        ),
        (
            "a guaranteed approval",
            r"\bguaranteed (?:approval|acceptance|coverage|payout|to be (?:approved|accepted|"
            r"covered))\b|\b(?:approval|acceptance|coverage|your claim) is guaranteed\b|"
            r"\b(?:will|are going to) (?:definitely|certainly|100%) (?:be )?(?:approved|"
            r"accepted|covered|paid out)\b|\bcovered no matter what\b",
            1.0,
        ),
        (
            "a guarantee of an outcome",
            r"\b(?:i|we) (?:can )?(?:personally |absolutely |fully )?guarantee (?:you )?(?:that )?"
            r"[^.!?]{0,40}(?:'ll|\bwill|\bwon't|\bbe\b|\bget\b)|\b(?:100%|one hundred percent) "
            r"(?:guaranteed|certain)\b",
            1.0,
        ),
        (
            "a guarantee of an outcome",
            # (not a term of the contract: "values are guaranteed for three months")
            r"\b(?:is|are|'s|'re|be|will be) (?:absolutely |fully |completely )?guaranteed (?:not )?"
            r"(?:to|that|for (?!(?:life|the (?:first|next|term|whole)|a (?:year|month|week|period)|"
            r"\d+|[a-z-]+ (?:days?|weeks?|months?|years?)|as long)\b))\b|\b(?:approval|acceptance|results?|success|recovery|protection|coverage|"
            r"outcome|rate|return) (?:is|are|will be) guaranteed\b",
            1.0,
        ),
        (
            "a promise of no loss",
            r"\b(?:the|your) (?:money|savings|pension|pensions|investments?|capital|funds?|pots?) "
            r"(?:is|are|will be|stays?|remains?) (?:completely |totally |perfectly |100% )?safe\b|"
            r"\bnever had a (?:down|bad|losing|negative) year\b|\b(?:will not|won't|cannot|can't) "
            r"(?:fall|drop|go down|lose value)(?: in value)?\b|\byou(?:'ll| will) (?:end up with|have|"
            r"get back) more (?:money )?than you (?:have|put in|paid)\b",
            1.0,
        ),
        (
            "a promise of a certain outcome",
            r"\bcomplete (?:protection|immunity)\b|\bwon't lose (?:another|a single)\b|\bthe "
            r"(?:court|judge|tribunal|authority|embassy|board|council|insurer) will (?:set (?:it|this|"
            r"them) aside|side with you|grant it|approve it|award you|throw (?:it|this|them) out)\b|"
            r"\byou(?:'ll| will) get (?:your|the) full (?:share|amount|refund|compensation|payout)\b|"
            r"\balways go (?:your|the [a-z']+|their) way\b|\b(?:the )?(?:pain|symptoms?|swelling|"
            r"scarring|acne|infection|condition|stiffness) (?:goes|go|will go|disappears?|will "
            r"disappear) (?:away )?(?:completely|entirely|for good|forever|permanently)\b|\bthe "
            r"(?:outcome|result|recovery|success) (?:itself )?is (?:certain|assured|a given)\b|"
            r"\b(?:simply |just )?(?:don't|do not|never) have (?:any )?(?:problems|complications|side "
            r"effects|issues) (?:afterwards|after|again)\b",
            1.0,
        ),
        (
            "a promise of a legal outcome",
            r"\byou(?:'ll| will) win\b(?! (?:some|a few|over|them))|\b(?:always|never) (?:lose|win) "
            r"(?:these|such|this kind of|cases like) ?(?:cases|claims|appeals|disputes)?\b|\b(?:is|are|"
            r"will be) automatically (?:valid|recogni[sz]ed|legal|binding|enforceable)\b|\bdoesn't "
            r"stand a chance\b|\byou can count on (?:getting|winning|being (?:paid|reinstated|"
            r"compensated)|a (?:payout|settlement))\b",
            1.0,
        ),
        (
            "a guaranteed approval",
            r"\bas good as (?:approved|accepted|done|yours|guaranteed|hired|admitted|granted)\b|"
            r"\b(?:zero|no) chance (?:that )?(?:our |the |your |they |a )?(?:[a-z]+ )?(?:will |would |"
            r"'ll )?(?:turns? you down|refuses? you|rejects? you|declines? you|denies you|says? no)\b|"
            r"\bno matter what the (?:bureaus?|banks?|lenders?|credit (?:check|score)|underwriters?) "
            r"says?\b|\b(?:the|your) claim will be paid (?:in full|out)\b|\bwill (?:pay|cover) "
            r"(?:for )?every (?:single )?(?:cost|penny|cent|expense|bill)\b|\bwon't be out of pocket\b",
            1.0,
        ),
        (
            "a promise of an authority's decision",
            # the permit, the visa or the claim decided in advance, with no condition after
            r"\byour (?:[a-z]+ )?(?:application|renewal|permit|visa|claim|request|loan|appeal|"
            r"case|mortgage|citizenship|residence card) (?:will|is going to) be (?:approved|"
            r"accepted|granted|renewed|successful)\b(?! (?:if|once|when|only|as long|provided|"
            r"unless|after|subject))|\b(?:has|have|had) no (?:reason|grounds) to (?:refuse|reject|"
            r"deny|decline|turn (?:you|it|this) down)\b",
            1.0,
        ),
        (
            "a market or performance prediction",
            r"\byou(?:'ll| will) be back (?:above|over|in profit|to where you (?:were|started))\b|"
            r"\b(?:have|has) (?:always )?come back from every (?:fall|dip|crash|drop|downturn)\b|"
            r"\b(?:the|your) (?:income|rent|payments?|returns?) (?:is|are|will be) (?:secure|"
            r"assured|certain)\b|\bsimply (?:don't|do not|never|won't) (?:fall behind|pay late|"
            r"default|miss a payment)\b",
            1.0,
        ),
        (
            "a promise of an outcome",
            # a credit decision, an exam result, a prognosis or an authority's order
            # given in advance
            r"\b(?:approval|acceptance|the loan|your application|admission) is (?:really |just |"
            r"only |basically |a mere )?a formality\b|\bsay yes to (?:applicants|people|clients|"
            r"customers|borrowers) like you\b|\b(?:pupils|students|clients|patients|people) who "
            r"(?:follow|complete|finish|attend|stick with) our (?:programme|program|course|method|"
            r"plan|treatment)[^.!?]{0,20}\b(?:pass|get in|recover|lose the weight|reach)\b|\bthe "
            r"(?:mention|grade|result|pass|place|offer|visa|approval) will follow\b|\b(?:has|"
            r"there's|there is) nothing serious going on\b|\bwill settle (?:down )?(?:by itself|"
            r"on its own)\b|\byou can rule out (?:the )?(?:hospital|a doctor|the emergency room|"
            r"a&e|the er)\b|\bthe (?:consumer authority|authority|regulator|tribunal|ombudsman|"
            r"court|judge) will order\b",
            1.0,
        ),
        (
            "a promise of safety or a certain medical outcome",
            r"\b(?:is|are|they're|it's) (?:completely |perfectly |totally )?safe for (?:coeliac|"
            r"celiac|allergic|diabetic|pregnant|anyone with|people with|children with|guests "
            r"with)\b|\bwithout a single (?:problem|incident|reaction|complication)\b|\bsimply "
            r"(?:can't|cannot|can not) (?:let|leak|cause|happen|fail|go wrong)\b|\b(?:it's|it is|"
            r"that's|that is) (?:the|just the|only the) [a-z]+(?: [a-z]+)?, nothing else\b|\bno "
            r"need to (?:open (?:the |any )?windows|keep checking|evacuate|call (?:the )?(?:emergency|"
            r"gas|fire|an ambulance))\b|\bno reason to keep (?:wearing|taking|using)\b|\b(?:is|"
            r"are) what (?:makes|made) the difference for (?:most|all|every)\b|\b(?:a )?much "
            r"(?:better|higher) chance of (?:working|success|succeeding|conceiving|getting pregnant)\b",
            1.0,
        ),
        (
            "certainty about an outcome",
            # certainty without the word "guarantee": "will almost certainly work", "no way
            # you'll walk away without ...", "you'll be invited, full stop", "a done deal"
            r"\b(?:will|is going to) (?:almost |all but |very nearly )?(?:certainly|surely) "
            r"(?:work|succeed|be approved|be accepted|be granted|pass|win|qualify|get (?:you )?"
            r"(?:pregnant|approved|accepted|in|there))\b|\bno way (?:you|you'll|you'd|anyone|"
            r"it)(?: will| would| could| can)? (?:ever )?(?:lose|walk away|fail|miss out|be "
            r"(?:refused|rejected|turned down|left))\b|\b(?:you|it|they|this)(?:'ll| will)\b"
            r"[^.!?]{0,60}, (?:full stop|period|end of story|no question|no doubt about it)\b|"
            r"\b(?:is|'s|it's) (?:essentially |basically |practically |pretty much |as good as )?"
            r"(?:a )?(?:done deal|in the bag)\b|\bnothing (?:at all )?(?:left )?(?:for (?:you|"
            r"your [a-z]+) )?(?:left )?to pay\b[^.!?]{0,10}$|\bwith nothing (?:at all )?left "
            r"(?:over )?for [^.!?]{0,20} to pay\b",
            1.0,
        ),
        (
            "certainty about an outcome",
            # "Yes, it's guaranteed." answering whether an outcome will happen
            r"^\W*(?:yes|yep|yeah|absolutely|definitely|of course)\b[^.!?]{0,20}\b(?:it's|it is|"
            r"that's|that is|it will be|they are|they're) (?:completely |absolutely |fully |100% )?"
            r"guaranteed\b|\b(?:is|are|it's|that's) (?:basically|practically|pretty much|"
            r"virtually|essentially|more or less) (?:automatic|guaranteed|certain|a formality|a "
            r"given)\b",
            1.0,
        ),
        (
            "certainty about an outcome",
            r"\b(?:it's|it is|that's|that is) (?:a )?(?:certainty|dead cert|foregone conclusion)\b|"
            r"\bwe guarantee it\b|\bno chance (?:that )?(?:you'll|you will|of) (?:fail|lose|be "
            r"(?:rejected|refused|turned down))|\bnobody (?:who [a-z ]{0,30})?(?:gets|is|will be) "
            r"(?:turned down|refused|rejected)\b|\bno risk of (?:a )?(?:rejection|refusal|being "
            r"(?:turned down|refused|rejected)|failing)\b|\b(?:i'm|i am) (?:confident|certain|"
            r"sure) (?:that )?[^.!?]{0,40}\bwill (?:give|work|succeed|get|heal|cure|win|pass)\b|"
            r"\b(?:almost )?always (?:succeed|pass|get pregnant|conceive)\b|"
            r"\b(?:always|definitely|certainly) (?:catch up|recover|heal|get (?:approved|better|"
            r"cured)|be approved|win|work out)\b",
            1.0,
        ),
        (
            "a promise of an outcome",
            # a promise about someone's outcome ("I promise Ravi will talk"), not a service
            # step the business will take ("I promise we'll call you back", "there'll be no
            # mess")
            r"\bi (?:can )?(?:personally |absolutely )?promise (?:you )?(?:that )?(?!we\b|we'll|i\b|"
            r"i'll|someone\b|our\b|the team\b|there\b|there'll\b)(?:[a-z']+ (?:will|won't)|[a-z]+'ll)\b",
            1.0,
        ),
        (
            "a promise of an outcome",
            r"\bi (?:can )?(?:personally )?promise (?:you )?(?:that )?[^.!?]{0,40}\b(?:covered|"
            r"approved|accepted|paid|win|won|cure|cured|heal|healed|return|refund|safe|fine|work|"
            r"fixed|resolved|nothing to worry)\b|\byou won't be out of pocket\b|\b(?:will|is going "
            r"to) be covered in full\b",
            1.0,
        ),
        (
            "a promise of an outcome",
            r"\bi (?:can )?(?:personally )?promise (?:you )?(?:that )?(?:you(?:'ll| will)|"
            r"it(?:'ll| will)|this will|your)\b",
            0.5,
        ),
        # outcomes of any trade stated as certain: "..., guaranteed", a result made
        # permanent, every claim paid, a place or approval certain, a condition restored
        (
            "a guarantee of an outcome",
            r",\s*guaranteed\s*[.!]?\s*$|\b(?:fix|cure|solve|heal|remove|eliminate|clear)\b[^.!?]"
            r"{0,30}\b(?:permanently|for good|forever)\b|\b(?:pay(?: out)?|cover|approve|accept) "
            r"(?:on )?(?:every|all|any) (?:single )?claims?\b|"
            r"\b(?:100%|definitely|certainly|guaranteed to be) (?:eligible|covered|approved|accepted|"
            r"admitted|qualif(?:y|ied))\b",
            1.0,
        ),
        (
            "a guarantee of an outcome",
            r"\b(?:admission|a place|your place|an offer|your offer|the visa|your visa|entry|"
            r"enrol?ment|a pass|your result) (?:is|are|will be) (?:all but )?guaranteed\b|\byou(?:'ll| "
            r"will) (?:definitely|certainly|surely|100%) (?:get (?:in|a place|an offer|accepted|"
            r"approved)|pass|be (?:accepted|admitted|offered|approved|selected))\b",
            1.0,
        ),
        (
            "a promise of a cure or certain medical outcome",
            r"\b(?:will|is guaranteed to|is certain to) (?:fully |completely )?restore (?:your|his|"
            r"her|their) [a-z]+ to normal\b|\b(?:will|'ll|is going to) (?:stop|prevent|halt) [^.!?]"
            r"{0,30}\b(?:getting (?:any )?worse|progressing)\b|\b(?:will|is going to) (?:be )?"
            r"(?:perfectly|completely|totally) (?:straight|healed|normal|restored|cured|gone)\b|"
            r"\b(?:is|are|will be) gone for good\b|\b(?:cures?|fixes|heals|clears?) (?:it|this|"
            r"them|the [a-z]+|your [a-z]+) (?:permanently|for good|forever|completely)\b|"
            r"\b(?:your|his|her|their) (?:hearing|sight|vision|eyesight|skin|back|knee|pain|"
            r"teeth|smile|symptoms?)\b[^.!?]{0,20}\b(?:will|'ll) be (?:completely |totally |fully )?"
            r"(?:back to normal|as good as new|good as new|like new|gone for good)\b|"
            r"\b(?:won't|will not|will never) (?:scar|relapse|come back|get worse)(?: at all| ever)?"
            r"\b|\bzero chance of (?:relapse|scarring|infection|complications?)\b",
            1.0,
        ),
        (
            "a promise of an outcome",
            r"\bi (?:can )?(?:personally |absolutely )?promise (?:you )?(?:that )?(?!we\b|we'll|i\b|"
            r"i'll|someone\b|our\b|the team\b)(?:[a-z']+ ){2,3}(?:will|won't)\b",
            1.0,
        ),
        (
            "a promise of no loss",
            r"\byour (?:[$€£¥]\s?)?\d[\d,.]*\s?(?:euros?|dollars?|pounds?|francs?|yen|rand|kr|zl|"
            r"pesos?)? (?:is|are|will be|stays?|remain) (?:completely |totally |perfectly |100% )?"
            r"safe\b|\b(?:investors|you|they|everyone) (?:will )?(?:always )?get back (?:their|your|"
            r"all (?:their|your)|the) (?:full |whole |entire )?(?:capital|investment|money|principal|"
            r"stake)\b(?![^.!?]{0,40}\b(?:if|unless|as long as|provided)\b)",
            1.0,
        ),
        (
            "medical certainty without an examination",
            r"\b(?:there's|there is|there'd be) no need to (?:send|take|bring|rush) (?:him|her|them|"
            r"you|your [a-z]+) to (?:the )?(?:hospital|a&e|er|emergency|a doctor|the doctor)\b|"
            r"\bthe (?:danger|risk|emergency) (?:is|will be) (?:over|gone|past)\b",
            1.0,
        ),
        (
            "a promise of a certain outcome",
            # a result made lifelong, a need ended for ever, a market move ruled out ("it
            # stays that way for life", "you will never need glasses again", "the rate
            # can't move against you", "you'll wake up seeing 20/20")
            r"\b(?:stays?|lasts?|remains?|will (?:stay|last|remain)) (?:that way |like that )?"
            r"(?:for life|for the rest of your life|forever|for good|permanently)\b|\b(?:you|they|"
            r"she|he)(?:'ll| will)? never (?:need|have to (?:wear|use|take|buy))\b(?! to (?:see|call|"
            r"visit|contact|ask|come))[^.!?]{0,30}\bagain\b|\bcan(?:'t|not) "
            r"(?:possibly )?(?:move|go|turn) against you\b|\b(?:will|'ll|you're going to)\b"
            r"[^.!?]{0,40}\b(?:20/20|perfect (?:vision|eyesight|sight|hearing|skin|teeth))\b",
            1.0,
        ),
        (
            "certainty about an outcome",
            # a rate or a date to rely on ("you can count on at least 95 percent of the
            # grafts taking", "by the end of May without fail", "nobody will ever be able
            # to tell")
            r"\byou can (?:count|rely|bank) on (?:at least |a |an |over |more than )?\d+(?:[.,]\d+)?"
            r"\s?(?:%|percent|per cent)|\b(?:will|'ll)\b[^.!?]{0,80}\bwithout fail\b|\b(?:nobody|no "
            r"one|no-one)(?: else)? will (?:ever )?(?:be able to )?(?:tell|notice|know you)\b",
            1.0,
        ),
        (
            "certainty about an outcome",
            # an authority's decision made certain ("the agency approves every complete
            # application", "approves student visas as a formality", "we have never had a
            # student refused", "I can guarantee that")
            r"\b(?:approves?|accepts?|grants?|issues?|passes) (?:every|all|each|any) (?:single )?"
            r"(?:complete |completed |valid )?(?:applications?|applicants?|claims?|requests?|"
            r"cases?|files?)\b|\bas a (?:mere |simple |pure )?formality\b|\b(?:is|are) (?:simply |"
            r"really |just |only |basically |purely )?a (?:mere |simple |pure )?formality\b|"
            r"\b(?:we(?:'ve| have)|i(?:'ve| have)|(?:the|our) [a-z]+ (?:has|have)) (?:never|not "
            r"once) had (?:a|an|any|one) (?:single )?[a-z -]{0,30}(?:refused|rejected|"
            r"turned down|denied|declined)\b|\bi can (?:personally |absolutely )?guarantee (?:that|"
            r"it|this)\b",
            1.0,
        ),
        (
            "a promise of a cure or certain medical outcome",
            # a disease made to go ("the osteoarthritis itself clears", "rebuilds the
            # cartilage")
            r"\b(?:[a-z]+itis|arthrosis|diabetes|disease|eczema|psoriasis|asthma|hypertension|"
            r"condition|illness|infection|cancer|tumou?r|migraines?|insomnia)(?: itself)? (?:clears|"
            r"goes away|disappears|is cured|heals|reverses|is gone|will clear|will go away|will "
            r"disappear|will heal)\b|\b(?:rebuilds?|regrows?|regenerates?|restores?) (?:the |your |"
            r"her |his )?(?:cartilage|cushioning|joint|nerve|nerves|bone|enamel|gums?|hair "
            r"follicles)\b",
            1.0,
        ),
        (
            "a promise of a cure or certain medical outcome",
            r"\bno longer need (?:their|your|his|her|any) (?:pain |blood pressure |diabetes )?"
            r"(?:tablets|medication|medicines|pills|insulin|inhalers?|prescriptions?)\b|\b(?:in|"
            r"within|after|takes) exactly \d+ (?:working |business )?(?:days|weeks|months)\b",
            0.6,
        ),
        (
            "certainty about an outcome",
            # a bad outcome ruled out for this client ("you won't end up like your
            # colleague", "that simply doesn't happen with her technique")
            r"\byou (?:won't|will not|will never) end up (?:like|with)\b|\b(?:simply|just) (?:doesn't|does "
            r"not|won't|will not|never) happen (?:with|to|here|at|in)\b",
            1.0,
        ),
        # a prognosis stated as certain without the word "guarantee": the condition
        # "won't turn into" the feared one, a loss of function ruled out, a symptom or
        # need ended for good (not when the sentence makes it conditional)
        (
            "medical certainty without an examination",
            r"\b(?:it|this|that|they|these|those)(?:'ll| will)? (?:won't|will not|will never|can't|"
            r"cannot) (?:ever )?(?:turn into|develop into|become|progress to|lead to)\b(?![^.!?]{0,60}"
            r"\b(?:if|unless|as long as|provided|so long as)\b)|\byou (?:won't|will not|will never) "
            r"(?:ever )?lose (?:any |your )?(?:sight|vision|eyesight|hearing|teeth|tooth|function|"
            r"mobility|movement|memory)\b",
            1.0,
        ),
        (
            "a promise of a certain outcome",
            r"\b(?:(?:will|'ll) (?:stop|end|go away|disappear|clear up|settle down)|stops|ends|goes "
            r"away|disappears|clears up|settles down) (?:altogether|"
            r"for good|forever|permanently|completely|entirely)\b(?![^.!?]{0,60}\b(?:if|unless|as "
            r"long as|provided|so long as)\b)|\b(?:you|they|she|he)(?:'ll| will)? (?:won't|will not|will "
            r"never) (?:ever )?(?:need|have) to (?:think about|worry about|consider|go into|move into|"
            r"face)\b",
            0.8,
        ),
    )
)
_CLAIM_GATES = GateSet([pattern for _, pattern, _ in _CLAIMS])
_NEGATIVE_LEAD = ("no ", "zero ", "without", "free ")
# Paying off a debt does return its interest rate for certain: saying so promises nothing.
_DEBT_PAYDOWN = re.compile(
    r"\b(?:pay(?:ing)?|paid) (?:it |them |the [a-z]+ |your [a-z]+ )?(?:down|off)\b|\binterest "
    r"(?:saved|you save|you'd save|you avoid)\b|\boverpay(?:ing|ments?)?\b"
)
_HEDGES = frozenset(["may", "might", "could", "can", "some", "often", "usually", "typically"])
_FREQUENCY_HEDGES = frozenset(["most", "many", "usually", "typically", "generally", "often"])


def regulated_claims(sentence: str) -> list[tuple[str, str, float]]:
    """The claims ``sentence`` makes: (label, matched text, strength), strongest first.
    Negated or reported claims are left out."""
    lowered = sentence.lower()
    candidates = _CLAIM_GATES.open(lowered)  # the gates rule out most sentences
    if not candidates or reported(sentence):
        return []
    found: list[tuple[str, str, float]] = []
    source = sentence if len(lowered) == len(sentence) else lowered
    for i in candidates:
        label, pattern, strength = _CLAIMS[i]
        for match in pattern.regex.finditer(lowered):
            phrase = source[match.start() : match.end()]
            phrase_lowered = phrase.lower()
            # Negation within the claim's own clause: "Don't worry, it's risk-free" claims.
            clause = re.split(r"[,;:]", sentence[: match.start()])[-1]
            before = words(clause)[-7:]
            if any(w in NEGATORS for w in before):
                continue  # "no investment is risk-free", "I can't guarantee a return"
            if not phrase_lowered.startswith(_NEGATIVE_LEAD) and words(phrase)[:1] in (
                ["not"],
                ["never"],
            ):
                continue
            if label == "a guaranteed return" and _DEBT_PAYDOWN.search(lowered):
                continue
            # "may heal", or "most patients find ... goes away": a typical outcome, not a promise
            hedged = any(w in _HEDGES for w in words(clause)[-2:]) or any(
                w in _FREQUENCY_HEDGES for w in words(clause)
            )
            found.append((label, phrase, strength * (0.5 if hedged else 1.0)))
            break
    return sorted(found, key=lambda c: -c[2])


def check_regulated_claims(ctx: CheckContext, weight: float = 1.0) -> QualityCheck:
    findings: list[Finding] = []
    for turn in ctx.of_role("assistant"):
        for sentence in sentences(ctx.text(turn)):
            claims = regulated_claims(sentence)
            if claims:
                label, phrase, strength = claims[0]
                findings.append(
                    Finding(
                        turn.turn_number,
                        f'the assistant makes {label} ("{short(phrase, 50)}")',
                        strength,
                    )
                )
                break
    return _result(
        "regulated_claims",
        "critical",
        findings,
        weight,
        "no guaranteed returns, no-risk promises or medical/legal certainty",
    )


# --------------------------------------------------------------------------- language switch


def _language_parts(text: str) -> list[language.Guess]:
    """The turn's language, and each longer sentence's (a switch can come mid-turn)."""
    guesses = [language.detect(text)]
    # Sentences one by one only when the turn holds another language's words at all.
    if guesses[0].foreign_hits >= language.MIN_FOREIGN_HITS or guesses[0].language not in (
        None,
        "en",
    ):
        parts = sentences(text)
        if len(parts) > 1:
            guesses += [language.detect(p) for p in parts if len(p.split()) >= language.MIN_WORDS]
    # A passage in another script counts on its own evidence, even when the whole turn
    # already leans to that language at low confidence (two Hindi sentences of four).
    script = language.foreign_script(text)
    if script is not None:
        guesses.append(script)
    return guesses


def check_language(ctx: CheckContext, weight: float = 1.0) -> QualityCheck:
    per_turn = [(t, _language_parts(ctx.text(t))) for t in ctx.turns]
    findings: list[Finding] = []
    counts: dict[str, float] = {}
    first = ""
    for _, guesses in per_turn:
        whole = guesses[0]
        if whole.language:
            counts[whole.language] = counts.get(whole.language, 0) + whole.confidence
            first = first or whole.language
    # The conversation's language: the first identified turn's, unless most turns say
    # otherwise (then the first turn is the odd one out); None when no turn says.
    main = max(counts, key=lambda k: (counts[k], k == first)) if counts else None
    if main is not None:
        for turn, guesses in per_turn:
            odd = [g for g in guesses if g.language and g.language != main and g.confidence >= 0.5]
            if odd:
                guess = max(odd, key=lambda g: g.confidence)
                all_of_it = guesses[0].language not in (None, main)
                where = "" if all_of_it else " partway through the turn"
                findings.append(
                    Finding(
                        turn.turn_number,
                        f"{speaker(turn.role)} switches to {language.name_of(guess.language or '')}"
                        f"{where} (the conversation is in {language.name_of(main)})",
                        1.0 if guess.confidence >= 0.6 else 0.6,
                    )
                )
    if main in (None, "en"):
        # A turn whose named language is only possible (short Spanish sentences share
        # words with Portuguese and Italian) is still sure when it holds a long run of
        # sentences with no English in them.
        named = {f.turn: f for f in findings}
        for found in _unlike_english(ctx, {t for t, f in named.items() if f.strength >= 1.0}):
            before = named.get(found.turn)
            if before is None:
                findings.append(found)
            elif found.strength > before.strength:
                findings[findings.index(before)] = Finding(
                    found.turn, before.reason, found.strength
                )
    return _result("language", "critical", findings, weight, "one language throughout")


def _unlike_english(ctx: CheckContext, flagged: set[int | None]) -> list[Finding]:
    """Passages in a language with no word list here (Estonian, Afrikaans, Polish...):
    runs of sentences in an English conversation that hold almost no common English."""
    findings = []
    for turn in ctx.turns:
        if turn.turn_number in flagged:
            continue
        parts = sentences(ctx.text(turn))
        longest = max(language.unlike_english_runs(parts), default=0)
        if longest < language.FOREIGN_PASSAGE_POSSIBLE_WORDS:
            continue
        total = language.english_share(ctx.text(turn))[1]
        where = "" if longest >= 0.8 * total else " partway through the turn"
        findings.append(
            Finding(
                turn.turn_number,
                f"{speaker(turn.role)} switches to a language other than English{where} "
                f"({longest} words with almost no English in them)",
                1.0 if longest >= language.FOREIGN_PASSAGE_WORDS else 0.6,
            )
        )
    return findings


# --------------------------------------------------------------------------- truncation

_DANGLING = frozenset(
    [
        "and",
        "or",
        "but",
        "the",
        "a",
        "an",
        "to",
        "of",
        "with",
        "for",
        "from",
        "in",
        "on",
        "at",
        "by",
        "as",
        "that",
        "which",
        "who",
        "if",
        "because",
        "so",
        "your",
        "my",
        "our",
        "their",
        "is",
        "are",
        "was",
        "were",
        "be",
        "will",
        "would",
        "can",
        "could",
        "should",
        "this",
        "these",
        "those",
        "then",
        "than",
        "such",
        "including",
        "like",
        "about",
        "into",
        "onto",
        "over",
        "under",
        "between",
    ]
)
_CLOSING_CUES = re.compile(
    r"\b(?:thank(?:s| you)|appreciate|that (?:helps|helped|makes sense|clears|'s (?:helpful|"
    r"great|clear|reassuring))|clears (?:it|that|things) up|(?:i'll|i will|i'm going to|we'll) "
    r"(?:do|call|book|schedule|try|start|begin|look|go|send|set|think|get|follow|talk|read|"
    r"reach)|(?:this|it) (?:helps|helped)|"
    r"sounds (?:good|great|like a plan)|perfect|got it|bye|good ?(?:night|day)|take care|"
    r"cheers|have a (?:good|great|nice|lovely)|talk (?:soon|later)|all set|that's all|that is "
    r"all|you've been|feel (?:better|calmer|relieved|more confident|reassured|a lot)|know what "
    r"to do|a plan i can|glad (?:it|that|i could|to have) help|(?:come back|reach out|get in "
    r"touch) (?:anytime|any time|whenever)|(?:assist|help) further|(?:any|more) questions "
    r"(?:arise|come up)|good luck|all the best|best of luck|you've got this|(?:i'm|we're) here "
    r"(?:if|whenever|when)|whenever you're ready|enjoy|congratulations|welcome)\b"
)
_OFFER = re.compile(
    r"\b(?:anything else|any other questions|would you like (?:me|us) to|shall i|should i|"
    r"want me to|do you want me|can i help|may i help|is there (?:anything|something)|does "
    r"that (?:help|make sense|sound)|how does that sound|would that (?:help|work)|"
    r"would it help|ready to|feel free|let me know|reach out|works (?:best )?for you|"
    r"(?:a|what|which) (?:day|time|date|slot)s? (?:that )?(?:works|suits|would)|(?:good|best|"
    r"convenient) (?:day|time) to|best (?:to|for) (?:reach|call|contact|ring|email)|would you like to (?:book|schedule|set up|go ahead|start)|"
    r"shall (?:i|we) (?:book|schedule|set|go ahead|send)|want to (?:book|schedule|go ahead)|"
    r"(?:book|schedule|set up) (?:you|an appointment|a call|a time))\b"
)


# A question for facts the assistant needs to go on: a conversation that stops on one
# has no end. (Choices and scheduling questions - "which day suits you?" - are a close.)
_INFO_REQUEST = re.compile(
    r"(?:^|, |; |: )(?:and |so |also |first,? |one more thing: )?(?:what(?:'s| is| are| was| were)? |how "
    r"(?!about\b|does that|would that|would you like|does this|do you feel|are you feeling)[a-z]+|"
    r"when (?:did|was|were|do|does|is|are)|where (?:did|do|is|are)|can you "
    r"(?:tell|send|share|confirm|give|upload|check|describe|list)|could you (?:tell|send|share|"
    r"confirm|give|upload|check|describe|list)|do you (?:have|know|remember|recall)|have you|"
    r"did you|is (?:your|it|there|the)|are (?:you|there|they)|which (?!day|time|date|week|option|"
    r"slot|one would))"
)
_SCHEDULING = re.compile(
    r"\b(?:suit|suits|prefer|convenient|book|schedule|appointment|visit|"
    r"call back|a call|pencil)\b"
)


def _ends_cut(text: str) -> str | None:
    """Why ``text`` looks cut off mid-sentence, or None."""
    stripped = text.rstrip()
    if not stripped:
        return None
    if stripped.endswith((":", ",", ";", "-", "(", "/")):
        return f'ends on "{stripped[-1]}"'
    last_word = words(stripped[-40:])[-1:] or [""]
    if stripped[-1].isalnum() or stripped[-1] in "%$":
        if last_word[0] in _DANGLING:
            return f'stops mid-sentence after "{last_word[0]}"'
        return "stops without finishing its sentence"
    if stripped.endswith(("...", "\u2026")) and len(words(stripped)) > 3:
        tail = words(stripped[-60:])
        if tail and tail[-1] in _DANGLING:
            return f'trails off after "{tail[-1]}"'
    return None


def check_ending(ctx: CheckContext, weight: float = 1.0) -> QualityCheck:
    findings: list[Finding] = []
    turns = ctx.turns
    if turns:
        last = turns[-1]
        text = ctx.text(last)
        cut = _ends_cut(text)
        if cut:
            findings.append(
                Finding(
                    last.turn_number, f"the conversation is cut off: {speaker(last.role)} {cut}"
                )
            )
        elif last.role == "assistant" and len(turns) >= 2:
            last_user = ctx.text(turns[-2])
            final_sentences = sentences(text)
            final = final_sentences[-1] if final_sentences else ""
            # The question itself: "Before I can suggest a size or take the order, I need
            # two things: how many..." offers no choice before its colon.
            question = re.split(r": |; ", final)[-1].lower()
            asks = (
                final.endswith("?")
                and not _OFFER.search(final.lower())
                and " or " not in question  # a choice between options is a close
                and "would you like" not in final.lower()
                and bool(_INFO_REQUEST.search(final.lower()))
                and not _SCHEDULING.search(final.lower())
            )
            # A user who thanks and asks something new is not wrapping up.
            user_closed = bool(_CLOSING_CUES.search(last_user.lower())) and "?" not in last_user
            closed = user_closed or bool(
                _CLOSING_CUES.search(" ".join(final_sentences[-3:-1]).lower())
            )
            if asks and not closed:
                # A last question for the booking's details after a turn that otherwise
                # reads like a wrap-up is how a conversation hands over to the booking.
                wraps_up = style_model.model("last_turn").lean(text) > LAST_TURN_WRAP_UP
                findings.append(
                    Finding(
                        last.turn_number,
                        "the conversation ends without a close: the assistant's last words ask "
                        f'for information that never comes ("{short(final, 60)}")',
                        0.5 if wraps_up else 0.8,
                    )
                )
            elif not closed:
                # How a last turn reads, learned from conversations' last turns against
                # their middle ones: an answer that leaves the next step open reads like
                # the middle, a close like the end, whatever the words of the close.
                lean = style_model.model("last_turn").lean(text)
                if lean <= LAST_TURN_SUSPECT:
                    findings.append(
                        Finding(
                            last.turn_number,
                            "the conversation stops without a close: its last turn reads like "
                            "the middle of a conversation, with no wrap-up from either side",
                            FINDING if lean <= LAST_TURN_FLAG else 0.35,
                        )
                    )
        if last.role == "assistant" and not any(f.strength >= FINDING for f in findings):
            short_answer = _short_last_answer(ctx)
            if short_answer and short_answer[0].strength > max(
                (f.strength for f in findings), default=0.0
            ):
                findings = short_answer
    return _result("ending", "major", findings, weight, "ends on a complete, closing turn")


# A last answer far shorter than the conversation's others, to a question: it lost its
# end (the closing sentences, the second half of the answer). Over the corpora no clean
# last answer to a question is under 0.6 of the median earlier answer.
SHORT_LAST_FLAG = 0.45
SHORT_LAST_SUSPECT = 0.55


def _short_last_answer(ctx: CheckContext) -> list[Finding]:
    turns = ctx.turns
    answers = [len(ctx.text(t).split()) for t in turns if t.role == "assistant"]
    if len(answers) < 3 or len(turns) < 2 or turns[-2].role != "user":
        return []
    question = ctx.text(turns[-2])
    if "?" not in question or _CLOSING_CUES.search(question.lower()):
        return []
    earlier = sorted(answers[:-1])
    median = (earlier[(len(earlier) - 1) // 2] + earlier[len(earlier) // 2]) / 2
    ratio = answers[-1] / median if median else 1.0
    if ratio > SHORT_LAST_SUSPECT:
        return []
    return [
        Finding(
            turns[-1].turn_number,
            f"the conversation may be cut short: the last answer ({answers[-1]} words) is a "
            f"fraction of the others (median {median:g}) and leaves the user's question half "
            "answered",
            0.8 if ratio <= SHORT_LAST_FLAG else 0.5,
        )
    ]


# --------------------------------------------------------------------------- role confusion

# Phrases that belong to one side of a service conversation. Weights say how strongly
# a phrase marks its side; a turn is suspicious when the other side's phrases clearly
# outweigh its own.
_BUSINESS_SIDE: tuple[tuple[GatedPattern, float], ...] = tuple(
    (gated(p), w)
    for p, w in (
        # the business's own steps: noting the booking, sending its staff, its lead times
        (
            r"\b(?:i'll|i will|let me) (?:note|log|put|add|record|flag|book) (?:it|that|this|"
            r"you|him|her|them) (?:in |on |with |for )?(?:the|your|our) (?:booking|file|account|"
            r"system|records?|service team|notes|diary|calendar)\b|\bhave (?:a|one of our|our) "
            r"(?:technician|engineer|adviser|advisor|specialist|colleague|nurse|doctor|installer|"
            r"consultant) (?:ring|call|phone|contact|email|visit) you\b",
            2.0,
        ),
        (r"\bif you (?:tell|let) us (?:know )?(?:at least|by|before|in advance|ahead)\b", 1.5),
        # the business's staff sent to the customer ("our surveyor will come to your shop"),
        # its paperwork sent after ("before we send the quote")
        (
            r"\bour (?:[a-z]+ )?(?:surveyors?|technicians?|engineers?|installers?|fitters?|"
            r"plumbers?|electricians?|inspectors?|drivers?|riders?|couriers?|nurses?|"
            r"photographers?|therapists?|crew|reps?|representatives?|valuers?|assessors?) "
            r"(?:will|can|would|'ll) (?:come|visit|call|ring|contact|go|arrive|meet|check|collect|"
            r"deliver|pick)\b",
            2.0,
        ),
        (
            r"\b(?:before|after|once|when) we send (?:you )?(?:the|your|a) (?:quote|invoice|report|"
            r"estimate|proposal|contract)\b",
            1.5,
        ),
        (
            r"\bas your (?:financial |legal |lead |personal )?(?:advisor|adviser|planner|dentist|"
            r"doctor|lawyer|attorney|solicitor|agent|broker|consultant|representative|"
            r"therapist|physio(?:therapist)?|teacher|tutor|coach|accountant|provider)\b",
            2.5,
        ),
        (r"\bi(?:'d| would) (?:strongly )?(?:recommend|suggest|advise)(?: that)? you\b", 1.5),
        (r"\bmy (?:recommendation|advice|suggestion) (?:for you |to you )?(?:is|would be)\b", 1.5),
        (
            r"\byou (?:should|might want to|may want to) (?:also )?(?:consider|look into|start "
            r"by|think about)\b",
            1.0,
        ),
        (r"\b(?:how|what) (?:can|may) i (?:help|assist|do for) you\b", 2.0),
        (r"\b(?:happy|glad) to (?:help|assist)\b", 1.0),
        (
            r"\bthanks? (?:you )?for (?:reaching out|contacting us|getting in touch|your "
            r"question|sharing (?:that|this))\b",
            1.5,
        ),
        (r"\b(?:great|good|excellent|fair) question\b", 1.5),
        (
            r"\bi (?:completely |totally |really )?understand (?:your|how you) (?:concern|"
            r"frustration|worry|worries|feel)\b",
            1.0,
        ),
        (r"\bwelcome to\b", 1.0),
        (
            r"\blet me (?:walk you through|explain|break (?:this|that|it) down|show you|put "
            r"your mind at ease)\b",
            1.5,
        ),
        (r"\bhere's what i (?:recommend|suggest|'d do|would do)\b", 1.5),
        (r"\bdoes that (?:help|make sense|answer your question)\b", 1.0),
        (r"\bis there anything else (?:i can|you(?:'d| would) like)\b", 1.5),
        (r"\bin your (?:situation|case|position)\b", 0.75),
        (
            r"\b(?:you're|you are) (?:doing|asking) (?:all )?(?:the right|exactly the right|great)"
            r"\b",
            1.5,
        ),
        (r"^(?:you're|you are) (?:very |so |most )?welcome\b", 1.5),
        (
            r"\b(?:another|one) option i(?:'d| would) (?:suggest|recommend)\b|\bi(?:'d| would) "
            r"suggest for you\b",
            1.5,
        ),
        (r"\bwe (?:have|stock|carry|sell) (?:it|them|one|that|those|these)\b", 1.5),
        (r"\bto get you (?:a |some )?(?:quotes?|started|set up|booked|an appointment)\b", 1.5),
        (r"\bi(?:'ll| will) need your\b", 1.0),
        (r"\bwe(?:'ll| will) (?:prepare|send you|get you|set you up|book you|take care)\b", 1.0),
        (
            r"\bour (?:lead|team|clinician|therapist|staff|advisors?|specialists?|doctors?|dentists?|"
            r"vets?|brokers?|consultants?|technicians?|engineers?|coach(?:es)?|tutors?)\b",
            1.0,
        ),
        (r"\bwe(?:'d| would) (?:take|book|see|offer|schedule|start|recommend|suggest)\b", 1.0),
        (r"\bwould you like (?:me |us )?to (?:book|schedule|arrange|set up|go ahead)\b", 1.5),
        (r"\b(?:please )?don't be (?:so )?hard on yourself\b", 1.0),
        (
            r"\bhere at (?:the|our) [a-z]+,? we\b|\bwe(?:'ll| will) book (?:that|you|it|them) in\b",
            1.5,
        ),
        (r"\bfor the two of you\b", 0.75),
        # the business offering, confirming and doing the admin
        (
            r"\bwould you like (?:a|an|one|the|to)\b|\bone of our (?:plans|packages|services|"
            r"options|memberships)\b|\bwe(?:'ll| will) (?:ask you|need you|send you|call you|"
            r"invoice|email you)\b|\bjust send us\b|\bwe can invoice\b",
            1.25,
        ),
        (
            r"\bthanks? (?:you )?for your patience\b|\bi(?:'ve| have) (?:logged|booked|noted|passed|"
            r"cancelled|processed|added|updated) your\b|\bpassed (?:a note|it|your [a-z]+) (?:on )?to\b|"
            r"\byou(?:'ll| will| should) hear (?:from|back)\b",
            1.5,
        ),
        # the business describing what it does
        (
            r"\bwe (?:offer|provide|charge|cover|include|accept|require|ask for|open|close)\b|\bour "
            r"(?:clinic|studio|salon|shop|store|practice|policy|policies|fees?|prices?|pricing|"
            r"plans?|packages?|rates?|terms|hours|workshop|centre|center|school|academy|"
            r"agency|firm)\b",
            1.0,
        ),
        (
            r"\bmost (?:families|clients|customers|people|patients|owners|members) (?:see|find|"
            r"notice|get|need|choose)\b|\bof course,? [a-z ,]{0,30}no problem\b",
            1.0,
        ),
    )
)
_CLIENT_SIDE: tuple[tuple[GatedPattern, float], ...] = tuple(
    (gated(p), w)
    for p, w in (
        # the customer's own anger or a bill "I'm supposed to" pay: never the business's
        (
            r"\bi(?:'m| am) (?:so |really |very |absolutely |just )?(?:angry|furious|livid|fed up)\b"
            r"(?! (?:on your behalf|for you))|\bnow i(?:'m| am) (?:supposed|expected|meant) to "
            r"(?:pay|cough up|fork out|find)\b|\bi thought we had a deal\b",
            2.0,
        ),
        # the customer's side of the counter: the business's staff seeing "me", its
        # brochure posted to "me", a decision talked over at home, advice "in my shoes"
        (
            r"\bone of your (?:doctors|nurses|staff|team|advisers|advisors|agents|technicians|"
            r"engineers|consultants|lawyers|solicitors|brokers|coaches|teachers|therapists|"
            r"specialists|surgeons|dentists|vets|installers|planners)\b|\b(?:post|send|email|"
            r"mail) me (?:a |the |your )?(?:brochure|price list|quote|leaflet|information pack|"
            r"catalogue|prospectus|menu|forms?)\b(?! (?:number|reference|ref|id|code|date))|\bin my shoes\b|\bwhat would you do if you "
            r"were me\b|\bshould i (?:send|email|post|bring) (?:our|my) [a-z]+\b",
            2.0,
        ),
        (
            # the customer asking the business to do its job for "me", or talking as a
            # parent, a past client, a relative
            r"\b(?:could|can|would) you (?:please )?(?:request|book|arrange|find|reserve|schedule|"
            r"order|organi[sz]e|sort out) (?:me|my|us|our)\b|\bback in my day\b|\b(?:i was|i've "
            r"been) in (?:exactly )?your (?:position|shoes|situation)\b|\bmy (?:broker|lawyer|"
            r"dentist|doctor|adviser|advisor|agent|accountant|insurer|instructor) (?:before|at the "
            r"time|back then)\b|\bwill the (?:doctor|dentist|instructor|lawyer|nurse|vet|agent|"
            r"adviser|advisor|examiner|chef|coordinator) be\b",
            2.0,
        ),
        (
            r"\bcan i (?:have a think|think about it|get back to you|ring you back|call you back)\b|"
            r"\bcould you (?:write|jot|note|put) [^.?!]{0,30}\bdown for me\b|\bi hadn't thought "
            r"(?:about|of) (?:that|this)\b",
            2.0,
        ),
        (
            r"\b(?:talked|talking|talk) it (?:all )?over with (?:her|him|them)\b|\bthe (?:wife|missus|"
            r"hubby|husband) (?:will|won't|would|is|isn't|says)\b|\bso i can put it in my\b",
            1.0,
        ),
        (
            r"\b(?:sorted|fixed|handled) it (?:all )?(?:out )?for me\b|\bstick with (?:them|those "
            r"guys)\b|\b(?:sweetheart|sweetie|kiddo|honey)\b|\bi(?:'m| am) dreading\b|\bi keep "
            r"wondering\b|\bshould i bring\b",
            1.0,
        ),
        (
            r"\bi(?:'ll| will| need to| want to|'d like to) (?:talk|think) (?:it|this|that) "
            r"(?:over|through)\b|\b(?:talk|discuss) (?:it|this|that) (?:over )?with my\b|"
            r"\b(?:that's|what) a relief\b|\bi(?:'ve| have) been (?:renting|saving|paying|living) "
            r"(?:for|since)\b",
            1.0,
        ),
        # asking the other side which option suits the speaker, or for help with their case
        (
            r"\b(?:do you think|would you say) (?:it |that |this )?(?:is|would be|'d be|will be|"
            r"works?) (?:better|best|right|easier|safer|wiser|smarter|cheaper)\b[^.?!]{0,25}"
            r"\bfor (?:me|us)\b|\bwhich (?:one|option|centre|center|plan|branch|location|"
            r"package|batch|day|time|policy)\b[^.?!]{0,20}\b(?:do you think|would you "
            r"(?:recommend|suggest|pick)|should (?:i|we))\b[^.?!]{0,30}\b(?:me|us|i|we)\b|"
            r"\bis that something you(?:'d| would| could| can) (?:go through|help|walk through|"
            r"look at|talk through|sort out)\b[^.?!]{0,20}\bwith me\b",
            2.0,
        ),
        (
            r"\b(?:we|i) (?:did |have |'ve )?just (?:bought|moved|got married|had a baby|signed "
            r"(?:the|a) (?:lease|mortgage))\b|\bi keep meaning to\b|\bi(?:'ve| have) been "
            r"(?:wondering|meaning to ask) (?:about|whether|if)\b|\b(?:so much|a lot|much) "
            r"easier for me\b",
            1.0,
        ),
        (
            r"\bthank(?:s| you)(?: so much| very much)? for (?:your help|helping me|explaining|"
            r"walking me|the (?:advice|help|explanation|info|information))\b",
            2.0,
        ),
        (
            r"\b(?:i'm|i am|i've been|i feel|i was) (?:so |really |a bit |a little |quite |"
            r"pretty |very )?(?:worried|nervous|scared|confused|anxious|stressed|frustrated|"
            r"overwhelmed|unsure|excited) (?:about|by|that) my\b",
            2.0,
        ),
        (
            r"\bmy (?:wife|husband|partner|kids|children|daughter|son|boss|landlord|mom|mother|"
            r"dad|father|spouse|fianc[eé]e?) (?:and i|is|has|wants|thinks|says|and me)\b",
            1.5,
        ),
        (
            r"\b(?:can|could) you (?:please )?(?:help|explain|tell|show|walk) me\b(?! (?:your|you|which|when|whether|if you|a (?:bit|little)|more about your|the (?:name|date|month|number)))",
            1.5,
        ),
        (
            r"\bwhat (?:should|do|would) (?:you (?:recommend|suggest) )?i (?:do|choose|pick)\b|"
            r"\bwhat do you (?:suggest|recommend) (?:i|for me)\b",
            1.5,
        ),
        (r"\bi have a (?:quick )?question\b", 1.0),
        (r"\b(?:i'm|i am) (?:\d{2}|in my (?:twenties|thirties|forties|fifties|sixties))\b", 2.0),
        (
            r"\bi(?:'ve| have) been (?:saving|investing|having|dealing|trying|struggling|paying|"
            r"putting|renting|working|thinking about)\b",
            1.5,
        ),
        (
            r"\bmy (?:savings|401\(?k\)?|ira|portfolio|retirement|mortgage|business|account|"
            r"tooth|teeth|gums|back|knee|shoulder|neck|pain|employer|salary|paycheck|lease|"
            r"claim|policy|house|home|garden|plants?|invoices?|contract) (?:is|are|has|have|"
            r"was|were|keeps|hurts|feels)\b",
            1.5,
        ),
        (r"\bthat (?:really )?(?:helps|makes me feel)\b", 0.5),
        (r"\bi(?:'ll| will) (?:call|book|schedule|go ahead|give it a try|think about it)\b", 0.75),
        (
            r"\bthank(?:s| you)(?: so much| very much)? for (?:the tip|listening|the tips|walking me|"
            r"your patience with me)\b|\b(?:really )?appreciate you (?:walking|helping|explaining|"
            r"taking)\b",
            2.0,
        ),
        (
            r"\b(?:i'm|i am) (?:so |really )?(?:tired|sick) of\b|\bi feel like i'm\b|\bmy "
            r"biggest (?:fear|worry)\b|\bi was (?:worried|scared|afraid) (?:i'd|i would|that i)\b|"
            r"\bi had no idea\b|\b(?:so much )?less scary than i\b",
            1.5,
        ),
        (r"\bi (?:gave|worked for|joined) (?:that|the|this|my) (?:company|firm|employer)\b", 2.0),
        (
            r"\b(?:i'm|i am|i've been|i have been|i was|i get|i feel|i still feel) (?:so |really |"
            r"very |quite |a bit |a little |pretty )?(?:worried|nervous|scared|anxious|stressed|"
            r"confused|lost|overwhelmed|busy|swamped|awful|terrible|guilty|embarrassed)\b",
            1.0,
        ),
        (r"\bi (?:honestly |really |just )?don't know (?:who|what|how|where|if) (?:to|i)\b", 1.0),
        (r"\bi (?:nearly|almost) (?:missed|forgot|lost)\b", 1.0),
        (
            r"\bthank(?:s| you)(?: so much)? for being so (?:kind|patient|helpful|understanding)\b",
            1.5,
        ),
        (
            r"\b(?:when|can|could|will|would) (?:can |could |will )?your (?:technician|team|staff|"
            r"engineer|installer|advisor|adviser|broker|doctor|dentist|vet|office|company|clinic|"
            r"surveyor|inspector|agent)\b",
            2.0,
        ),
        (r"\b(?:i'm|i am) (?:honestly |really |so |just )*(?:so )?excited\b", 1.0),
        (r"\bi(?:'ll| will) (?:dig out|find|dig up|look for|send over|pull out) my\b", 1.5),
        # a customer asking for the service, or deciding on it
        (
            # not the business asking for the customer's papers ("can you send me your
            # quote number", "a photo of the meter")
            r"\b(?:can|could) (?:you|we|someone) (?:come|send(?! me (?:your|a photo|a picture|a "
            r"copy|a screenshot|the (?:number|reference|photo|receipt)))|call|do|fix|book|start|pop|"
            r"fit|get me)\b|\bplease make sure\b|\byes,? please\b(?! (?:bring|send|call|come|do|feel|have|let|make|note|keep|go|take|book|email|upload|fill))|\bdo you think i should\b|\bshould i "
            r"(?:say|do|go|book|tell|keep|wait|call)\b",
            1.25,
        ),
        (
            r"\bmy (?:husband|wife|partner|mom|mum|dad|kids|children|boss|landlord|mother-in-law|"
            r"father-in-law|son|daughter|family) (?:works|is|has|gets|needs|wants|says|keeps|"
            r"thinks|can't|won't)\b|\bi (?:really )?can't afford\b|\bi(?:'ve| have) been (?:out of "
            r"work|off work|unemployed|looking after)\b|\bi work (?:on|at|as|from|nights|shifts)\b",
            1.5,
        ),
        # a customer asking about the service for themselves
        (
            r"\bhow (?:much|long) (?:would|does|will|is|do|did) (?:it|that|this|the|my|i|you)\b|"
            r"\bdo you (?:offer|have|do|take|accept|cover|charge|open|deliver)\b|\bcan i (?:book|"
            r"pay|bring|get|come|change|cancel|switch|add|ask)\b|\bi (?:want|need|would like|'d "
            # (not the business checking with its own people: "I need to ask the chef")
            r"like) to (?:know|check|ask|book|understand)\b(?! (?:with )?(?:the|our|my) (?:team|"
            r"chef|kitchen|manager|colleagues?|office|lab|underwriters?|lawyers?|doctor))|"
            r"\bbefore i (?:sign|commit|decide|"
            r"book|pay)\b",
            1.0,
        ),
        (
            r"\bsorry for (?:going off|snapping|the rant|being (?:so )?(?:short|rude|difficult))\b",
            1.5,
        ),
        (
            r"\b(?:okay|ok|perfect|great|fine),? (?:monday|tuesday|wednesday|thursday|friday|"
            r"saturday|sunday|tomorrow|next week)[a-z ]{0,15} then\b|\bi(?:'ll| will) (?:take|drop|"
            r"bring) (?:the kids|my [a-z-]+)\b",
            1.25,
        ),
    )
)
_FIRST = frozenset(["i", "i'm", "i've", "i'd", "i'll", "my", "me", "mine", "myself"])
_SECOND = frozenset(["you", "your", "you're", "you've", "you'd", "you'll", "yours", "yourself"])


# "my" + these is the assistant speaking for the business, not about a life of its own.
_PROFESSIONAL_MY = frozenset(
    [
        "recommendation",
        "advice",
        "suggestion",
        "colleague",
        "colleagues",
        "team",
        "name",
        "apologies",
        "pleasure",
        "understanding",
        "role",
        "job",
        "experience",
        "end",
        "side",
        "view",
        "opinion",
        "guess",
        "honest",
        "best",
        "own",
        "office",
        "records",
        "notes",
        "calendar",
        "colleague's",
        "manager's",
    ]
)
_MY_NOUN = re.compile(r"\bmy ([a-z']+)")


def personal_my(text: str) -> int:
    """How often a turn says "my <something of a private life>"."""
    return sum(1 for m in _MY_NOUN.finditer(text) if m.group(1) not in _PROFESSIONAL_MY)


_BUSINESS_GATES = GateSet([p for p, _ in _BUSINESS_SIDE])
_CLIENT_GATES = GateSet([p for p, _ in _CLIENT_SIDE])


def _side_scores(text: str, role: str) -> tuple[float, float]:
    """(business, client) evidence of a turn. The other side's evidence is what matters
    for a turn, so its own side is only weighed when the other side's reaches 2 (the
    phrase lists are long: scoring stays within its time budget)."""
    text = text.lower()
    tokens = words(text)
    first = sum(1 for t in tokens if t in _FIRST)
    second = sum(1 for t in tokens if t in _SECOND)
    we = sum(1 for t in tokens if t in ("we", "we'll", "we're", "we've", "we'd", "our", "us"))

    def business_side() -> float:
        score = sum(_BUSINESS_SIDE[i][1] for i in _BUSINESS_GATES.matching(text))
        # Pronouns tip a turn that already carries the other side's phrases: a client
        # talks about "my", an advisor about "your".
        if second >= 5 and first <= 1:
            score += 1.0
        if we >= 2 and second >= 2 and first == 0:
            score += 1.0  # "we'll prepare your quotes": the business speaking
        if second >= 3 and first <= 1 and tokens.count("your") >= 2:
            score += 0.75  # asking about "your fixed rate", "your current deal"
        return score

    def client_side() -> float:
        score = sum(_CLIENT_SIDE[i][1] for i in _CLIENT_GATES.matching(text))
        if (first >= 6 and second <= 1) or (first >= 4 and second == 0):
            score += 1.0
        return score + 0.75 * min(3, personal_my(text))

    if role == "user":
        business = business_side()
        return business, client_side() if business >= 2.0 else 0.0
    client = client_side()
    return business_side() if client >= 2.0 else 0.0, client


_WE = frozenset(["we", "we'll", "we're", "we've", "we'd", "our", "ours", "us"])


def _voice(text: str) -> tuple[float, float, float, float, float]:
    """How a turn speaks: I/my, we/our, you/your per word, the share of its sentences that
    are questions, and its length (log words)."""
    tokens = words(text)
    n = max(1, len(tokens))
    parts = sentences(text) or [text]
    return (
        sum(t in _FIRST for t in tokens) / n,
        sum(t in _WE for t in tokens) / n,
        sum(t in _SECOND for t in tokens) / n,
        sum(p.endswith("?") for p in parts) / len(parts),
        math.log(n),
    )


VOICE_MARGIN = 1.0  # how much nearer the other side's voice a turn must be (in spreads)


def voice_flips(ctx: CheckContext) -> set[int]:
    """Turns that sound like the other side of this very conversation.

    Each side's usual voice is learnt from the conversation itself (its other turns of
    that role), so it holds for any business: a customer says "I" and "my", asks, and is
    brief; the business says "we" and "you" and explains at length. A turn nearer the
    other side's usual voice than its own side's, by a clear margin, has swapped."""
    turns = [t for t in ctx.turns if t.role in ("user", "assistant")]
    if len(turns) < 8:
        return set()
    voices = [_voice(ctx.text(t)) for t in turns]
    dims = range(len(voices[0]))
    spread = []
    for k in dims:
        values = [v[k] for v in voices]
        mean = sum(values) / len(values)
        sd = math.sqrt(sum((x - mean) ** 2 for x in values) / len(values))
        spread.append(max(sd, 0.02 if k < 3 else 0.1))
    flips: set[int] = set()
    for i, turn in enumerate(turns):

        def centre(role: str, i: int = i) -> list[float] | None:
            own = [
                v
                for j, (t, v) in enumerate(zip(turns, voices, strict=True))
                if t.role == role and j != i
            ]
            if len(own) < 3:
                return None
            return [sum(v[k] for v in own) / len(own) for k in dims]

        mine = centre(turn.role)
        other = centre("assistant" if turn.role == "user" else "user")
        if mine is None or other is None:
            continue

        def distance(c: list[float], i: int = i) -> float:
            return math.sqrt(sum(((voices[i][k] - c[k]) / spread[k]) ** 2 for k in dims))

        if distance(other) + VOICE_MARGIN < distance(mine):
            flips.add(turn.turn_number)
    # An assistant turn full of "I" and "my" without a "you", in a conversation whose
    # other assistant turns hardly say "I": its own story, whatever its length.
    for i, turn in enumerate(turns):
        if turn.role != "assistant":
            continue
        others = [
            v
            for j, (t, v) in enumerate(zip(turns, voices, strict=True))
            if j != i and t.role == "assistant"
        ]
        if len(others) < 3:
            continue
        first, _, you = voices[i][0], voices[i][1], voices[i][2]
        usual_first = max(v[0] for v in others)
        if (
            first >= 0.07
            and first >= 3 * max(usual_first, 0.015)
            and you <= min(v[2] for v in others)
        ):
            flips.add(turn.turn_number)
    return flips


_VOCATIVE_CUE = re.compile(
    r"\b(?i:hi|hello|hey|thanks|thank you|dear|sorry|okay|ok|of course|absolutely|yes|right|"
    r"great|well|sure|good morning|good afternoon|morning)\s*,?\s+([A-Z][a-z]{2,})(?=\s*[,.!?])|"
    r"\b[a-z][a-z']*,\s+([A-Z][a-z]{2,})(?=\s*[.!?](?:\s|$))"
)
# "your wife, Tom, because": after a lower-case word, so not "I, Sunita, hereby" (a
# speaker naming themselves) nor "Galway, Ireland" (a place)
_ANY_VOCATIVE = re.compile(r"\b[a-z][a-z']*,\s+([A-Z][a-z]{2,})(?=\s*[,.!?])")


def _vocatives(pattern: re.Pattern[str], text: str) -> set[str]:
    return {name for m in pattern.finditer(text) for name in m.groups() if name}


def addressed_as_the_other_side(ctx: CheckContext) -> list[tuple[int, str, str]]:
    """Turns that call someone by the name the other side uses for them: (turn, name,
    role speaking). "That's so common, Tom" is the assistant's line; from Tom's side
    it is the business talking. Names found in the business's own texts (places,
    staff, the brand: its excerpt and name) are left out."""
    known = " ".join(x for x in (ctx.chunk_text, ctx.business_name) if x)
    by_role: dict[str, set[str]] = {"user": set(), "assistant": set()}
    for turn in ctx.turns:
        if turn.role in by_role:
            by_role[turn.role] |= _vocatives(_VOCATIVE_CUE, content_of(turn))
    found: list[tuple[int, str, str]] = []
    for turn in ctx.turns:
        if turn.role not in by_role:
            continue
        other = by_role["assistant" if turn.role == "user" else "user"]
        for name in sorted(_vocatives(_ANY_VOCATIVE, content_of(turn)) & other):
            if name not in known and name.lower() not in _NOT_A_NAME:
                found.append((turn.turn_number, name, turn.role))
                break
    return found


_NOT_A_NAME = frozenset(
    [
        "thanks",
        "thank",
        "yes",
        "yeah",
        "hi",
        "hello",
        "hey",
        "well",
        "sure",
        "okay",
        "sorry",
        "great",
        "right",
        "honestly",
        "now",
        "so",
        "and",
        "but",
        "also",
        "please",
        "absolutely",
        "perfect",
        "oh",
        "no",
        "that",
        "this",
        "good",
        "alright",
        "again",
        "too",
        "though",
        "however",
        "then",
        "today",
        "tomorrow",
        "tonight",
        "yesterday",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "january",
        "february",
        "march",
        "april",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "mum",
        "mom",
        "dad",
        "sir",
        "madam",
        "doctor",
        "everyone",
        "folks",
        "guys",
    ]
)


def wrong_side_lean(speaker_model: style_model.LeanModel, role: str, text: str) -> float:
    """How far a turn's words lean to the other side (0 for a turn too short to tell);
    the speaker model's positive side is the assistant's."""
    if len(text.split()) < SPEAKER_MIN_WORDS:
        return 0.0
    lean = speaker_model.lean(text)
    return lean if role == "user" else -lean


def _speaker_model_findings(ctx: CheckContext) -> list[Finding]:
    """Turns whose words lean to the other side, by the model learned from how businesses
    and customers write: it catches a flip in words no phrase list has."""
    speaker_model = style_model.model("speaker")
    found = []
    for turn in ctx.turns:
        text = ctx.text(turn)
        wrong = wrong_side_lean(speaker_model, turn.role, text)
        if wrong < SPEAKER_SUSPECT:
            continue
        shown = ", ".join(f'"{w}"' for w in speaker_model.evidence(text, turn.role == "user"))
        if turn.role == "user":
            reason = f"the user's words read like the business's, not a customer's ({shown})"
        else:
            reason = f"the assistant's words read like a customer's, not the business's ({shown})"
        found.append(Finding(turn.turn_number, reason, 0.9 if wrong >= SPEAKER_FLAG else 0.5))
    return found


def check_role_confusion(ctx: CheckContext, weight: float = 1.0) -> QualityCheck:
    findings: list[Finding] = []
    flips = voice_flips(ctx)
    for turn in ctx.turns:
        business, client = _side_scores(ctx.text(turn), turn.role)
        # A turn in the other side's voice needs less of the other side's phrasing.
        needed = 1.0 if turn.turn_number in flips else 2.0
        if turn.role == "user":
            lead = business - client
            if business >= needed and lead >= min(1.5, needed):
                findings.append(
                    Finding(
                        turn.turn_number,
                        "the user talks as the business (gives the advice or offers help)",
                        min(1.0, 0.35 + lead / 4),
                    )
                )
        elif turn.role == "assistant":
            lead = client - business
            if client >= needed and lead >= min(1.5, needed):
                findings.append(
                    Finding(
                        turn.turn_number,
                        "the assistant talks as the customer (describes their own situation "
                        "or thanks for the help)",
                        min(1.0, 0.35 + lead / 4),
                    )
                )
    flagged = {f.turn for f in findings}
    for number, name, role in addressed_as_the_other_side(ctx):
        if number not in flagged:
            side = "the business" if role == "user" else "the customer"
            findings.append(
                Finding(
                    number,
                    f'{speaker(role)} calls someone "{name}", the name the other side '
                    f"uses for them: it speaks as {side}",
                    0.9,
                )
            )
    # One finding a turn: the model's only where it is stronger than the phrase evidence,
    # which names what gave the turn away.
    strongest = {f.turn: f for f in findings}
    for finding in _speaker_model_findings(ctx):
        known = strongest.get(finding.turn)
        if known is None or finding.strength > known.strength:
            strongest[finding.turn] = finding
    findings = list(strongest.values())
    strong = [f for f in findings if f.strength >= FINDING]
    if not strong and len(findings) >= 2:
        # Two doubtful turns of the same kind are a swap, not chance.
        findings = [Finding(f.turn, f.reason, FINDING) for f in findings]
    return _result("role_confusion", "critical", findings, weight, "each side keeps its role")


# --------------------------------------------------------------------------- topic drift

# Words any service conversation uses whatever its subject: they say nothing about it.
# Conversation and advice vocabulary any service conversation uses whatever its subject:
# none of it says what the conversation is about.
_GENERIC_TEXT = """
although another still last must may might leave left else ever every never always often
sometimes instead without within across around along already yet whether though unless
until while upon including include includes based number numbers
one two three four five six seven eight nine ten paperwork timeline timelines document
documents approval approve eligible eligibility rule rules requirement requirements form forms
deadline deadlines cost costs process procedure apply application comes coming goes
thank thanks help helpful question questions understand sure really think know feel
like good great make makes sense look looking sound sounds okay right work works
start step steps next option options plan time today call talk happy glad worry
worried concern concerned situation case point detail details idea little bit lot
kind sort first second also much many well way going get got take give let want need
needs year years month months week weeks day days number appreciate welcome
absolutely exactly definitely course mean means said tell told explain explained
walk through again back keep better best simple simply quick anything everything
something nothing process side sides unclear clear write writing written list short
long review progress date calendar reminder folder copy copies fine print part parts
matter matters important useful practical common usual usually mistake mistakes
right wrong thing things stuff people person someone anyone everyone ready recap
remember short version happy forward check checking official guidance decide
decision decisions choice choices compare comparing single answer answers fit fits
depends depend easy hard harder stress stressful calm calmer relieved patient gentle
anytime further arise happen happens next rush rushing slow today tomorrow soon
later early earlier late afterwards sorry hear heard listen listening ask asking
asked try tried trying figure figured honest honestly basically actually probably
maybe perhaps fairly pretty quite enough lots overall general generally specific
specifically certain certainly possible possibly able unable worth information info
details share sharing send sent friend friends family life job work working team
office
"""
_GENERIC = frozenset(stem(w) for w in _GENERIC_TEXT.split())


def _spellings(turns: Sequence[Turn], ctx: CheckContext, wanted: set[str]) -> list[str]:
    """The words as written whose stems are ``wanted`` (stems are not for reading)."""
    out: dict[str, str] = {}
    for turn in turns:
        for w in words(ctx.text(turn)):
            s = stem(w)
            if s in wanted and s not in out:
                out[s] = w
    return [out[s] for s in sorted(out)]


@lru_cache(maxsize=4096)
def _stems(text: str) -> frozenset[str]:
    # Contractions ("that's", "don't") are grammar, not subject. Cached: several checks
    # read the same turns' subject words.
    return (
        frozenset(
            stem(w) for w in words(text) if len(w) > 2 and w not in STOPWORDS and "'" not in w
        )
        - _GENERIC
    )


def _taxonomy_words(taxonomy: Taxonomy | None) -> set[str]:
    """Every word of the taxonomy as written."""
    if taxonomy is None:
        return set()
    out: set[str] = set()
    for dimension in ("personas", "emotions", "topics", "intents", "tones"):
        for entry in getattr(taxonomy, dimension):
            out |= set(words(f"{entry.name} {entry.description}"))
    return out


def _taxonomy_vocab(taxonomy: Taxonomy | None) -> set[str]:
    """Every word of the taxonomy: what the business talks about."""
    if taxonomy is None:
        return set()
    out: set[str] = set()
    for dimension in ("personas", "emotions", "topics", "intents", "tones"):
        for entry in getattr(taxonomy, dimension):
            out |= _vocab(taxonomy, dimension, entry.name)
    return out


def _vocab(taxonomy: Taxonomy | None, dimension: str, name: str) -> set[str]:
    description = taxonomy.describe(dimension, name) if taxonomy else ""
    return keywords(f"{name} {description}") - _GENERIC


# Everyday subjects a service conversation has no reason to wander into. A subject the
# business itself deals in (a garden centre's plants, a travel agent's flights) is part of
# its plan, so these words only count when the plan's vocabulary does not have them.
_EVERYDAY_TEXT = """
recipe recipes cook cooking dinner lunch breakfast dessert wine beer cocktail restaurant chef
lamb chicken pasta pizza salad soup vegetables rosemary
vacation holiday trip flight flights hotel beach resort cruise itinerary sightseeing museum
passport luggage tourist cherry blossoms shinkansen
football soccer basketball baseball hockey tennis golf playoffs
movie film films netflix actor actress concert album song songs guitar piano
singer
gardening slug slugs lettuce tomato tomatoes weeds lawn compost
dog dogs cat cats puppy kitten pet pets
snow sunny
wedding birthday girlfriend boyfriend anniversary
gym workout marathon hiking camping fishing yoga
videogame playstation xbox nintendo gaming
"""
# Matched as written, not stemmed: "wine" and "win", "movies" and "move" share a stem.
_EVERYDAY = frozenset(_EVERYDAY_TEXT.split())

OFF_PLAN_SHARE = 0.15  # a turn this sparse in the plan's words is not about the plan


# How a user changes the subject.
_SHIFT_CUE = re.compile(
    r"\b(?:by the way|btw|unrelated|totally different|different (?:question|subject|topic)|"
    r"change (?:of|the) subject|on (?:a|another) (?:different|separate|unrelated)? ?note|"
    r"something else|one more thing|(?:been|was) meaning to ask|while i(?:'m| am| have you|'ve got "
    r"you| have got you)|"
    r"since i(?:'ll| will| am|'m) (?:be )?(?:there|here|at it|on)|speaking of|random "
    r"question|off[- ]topic|also wanted to ask|quick (?:side )?question about)\b|"
    r"(?:^|[.!?] )actually, (?!that|it|i (?:meant|mean))"
)


@dataclass(frozen=True)
class DriftEvidence:
    """The run of turns at the end that leave the plan, and what they talk about."""

    start: int  # index of the run's first turn
    length: int
    new_share: float  # share of the run's words the conversation had not used before
    recurring: list[str]  # new words that come back within the run (a subject)
    everyday: list[str]  # everyday-life words outside the business's vocabulary
    other_topic: str
    other_hits: int
    planned_in_run: int
    foreign: float  # share of the recurring new words the business's plan never uses
    closed: bool  # the last turns wrap up
    shift_cue: str | None  # the user turns the conversation ("by the way", "unrelated")

    def points(self) -> int:
        """Independent signs of a new subject; each one alone is weak."""
        score = (self.new_share >= 0.6) + (self.new_share >= 0.75)
        score += (len(self.recurring) >= 3) + (len(self.recurring) >= 5)
        score += 2 * (len(self.everyday) >= 2) + (len(self.everyday) >= 3)
        score += self.other_hits >= 2
        score += 2 * (self.other_hits >= 3 and self.other_hits > 2 * self.planned_in_run)
        # A subject the business's whole plan (every topic, persona, intent) never names;
        # one it mostly does name is the business's own (another topic counts apart).
        score += len(self.recurring) >= 4 and self.foreign >= 0.9
        score -= len(self.recurring) >= 3 and self.foreign <= 0.5
        score += (self.length >= 4) + (1 if not self.closed else -1)
        score += 2 * bool(self.shift_cue)
        # The plan's words all through the run: the topic is still being discussed.
        score -= 2 * (self.planned_in_run >= 1.5 * self.length)
        score -= self.planned_in_run >= 3.5 * self.length
        # ... and next to none of them: whatever the run is about, it is not the plan
        score += self.planned_in_run <= 0.25 * self.length
        return int(score)


def drift_evidence(ctx: CheckContext) -> DriftEvidence | None:
    conv = ctx.conversation
    turns = ctx.turns
    if len(turns) < 6:
        return None
    stems = [_stems(ctx.text(t)) for t in turns]
    raw = [set(words(ctx.text(t))) for t in turns]
    # The plan's words, and the opening exchange's: what the conversation set out to
    # discuss in its own terms (a topic's description is often a dozen words).
    core = _vocab(ctx.taxonomy, "topics", conv.topic)
    core |= _stems(conv.scenario or "") | _stems(ctx.chunk_text or "")
    # The opening's own words ("hope", "sensible", "small") are half the subject at best.
    opening = (stems[0] | stems[1]) - core
    planned = core | opening

    def off_plan(words_of_turn: frozenset[str]) -> bool:
        # A word or two of the plan in passing ("save money") is not coming back.
        hits = len(words_of_turn & core) + 0.5 * len(words_of_turn & opening)
        return hits <= 1 or hits <= OFF_PLAN_SHARE * len(words_of_turn)

    plan_text = set(words(" ".join((conv.topic, conv.scenario or "", ctx.chunk_text or ""))))
    plan_text |= _taxonomy_words(ctx.taxonomy)

    business = _stems(" ".join(_taxonomy_words(ctx.taxonomy))) | core

    def everyday_in(i: int) -> set[str]:
        return (raw[i] & _EVERYDAY) - plan_text

    def evidence_from(start: int) -> DriftEvidence | None:
        run = list(range(start, len(turns)))
        before = set().union(*stems[:start]) if start else set()
        if len(run) < 3 or start < 2 or len(before & planned) < 2:
            return None
        run_words = set().union(*(stems[i] for i in run))
        new_words = run_words - planned - before
        counts = Counter(w for i in run for w in stems[i] & new_words)
        other_name, other_hits = "", 0
        if ctx.taxonomy:
            for entry in ctx.taxonomy.topics:
                if entry.name != conv.topic:
                    vocab = _vocab(ctx.taxonomy, "topics", entry.name) - planned
                    hits = len(vocab & run_words)
                    if hits > other_hits:
                        other_name, other_hits = entry.name, hits
        tail = " ".join(ctx.text(t) for t in turns[-2:]).lower()
        opening = [ctx.text(t).lower() for t in turns[max(0, start - 1) : start + 2]]
        cue = next((m.group(0) for text in opening for m in [_SHIFT_CUE.search(text)] if m), None)
        recurring = sorted(w for w, n in counts.items() if n >= 2)
        return DriftEvidence(
            start=start,
            length=len(run),
            new_share=len(new_words) / len(run_words) if run_words else 0.0,
            recurring=recurring,
            foreign=sum(w not in business for w in recurring) / len(recurring) if recurring else 0,
            everyday=sorted(
                set().union(*(everyday_in(i) for i in run)) - set().union(*raw[:start])
            ),
            other_topic=other_name,
            other_hits=other_hits,
            planned_in_run=sum(len(stems[i] & planned) for i in run),
            closed=bool(_CLOSING_CUES.search(tail)),
            shift_cue=cue,
        )

    # Where the drift may start: the run at the end that leaves the plan's words, or the
    # last user turn of the second half that changes the subject.
    start = len(turns)
    while start > 0 and (
        off_plan(stems[start - 1]) or len(everyday_in(start - 1)) >= len(stems[start - 1] & planned)
    ):
        start -= 1
    # The run may begin with a turn or two still on the plan (a short answer, a thank-you):
    # any later start inside it may be where the subject really changes.
    starts = set(range(start, len(turns) - 2)) or {start}
    for i in range(len(turns) // 2, len(turns) - 2):
        if turns[i].role == "user" and _SHIFT_CUE.search(ctx.text(turns[i]).lower()):
            starts.add(i)
    candidates = [e for e in (evidence_from(s) for s in sorted(starts)) if e is not None]
    return max(candidates, key=lambda e: e.points(), default=None)


DRIFT_POINTS = 5  # signs of a new subject that make a drift a defect
DRIFT_SUSPECT_POINTS = 4
EDGE_CASE_DRIFT_ALLOWANCE = 3
MIN_DRIFT_TURNS = 6  # a shorter conversation has no middle to drift from


def drift_lean(drift_model: style_model.LeanModel, texts: Sequence[str]) -> tuple[float, int]:
    """The drift model's highest mean lean over the runs of closing turns (two or more,
    starting after the first third), and the index where that run starts."""
    leans = [drift_model.lean(text) for text in texts]
    best, best_start = float("-inf"), len(leans)
    for start in range(max(2, len(leans) // 3), len(leans) - 1):
        mean = sum(leans[start:]) / (len(leans) - start)
        if mean > best:
            best, best_start = mean, start
    return best, best_start


def _lean_points(lean: float) -> int:
    """The drift model's say in the points: closing turns that read like a drift add one,
    turns that read like the business at work take up to three away (a clean ending on
    bookings and prices is rarely a drift, however many new words it brings)."""
    return (lean >= 0.02) - (lean < -0.03) - (lean < -0.06) - (lean < -0.09)


def check_topic_drift(ctx: CheckContext, weight: float = 1.0) -> QualityCheck:
    """The conversation leaves its planned topic (or excerpt) and does not come back.

    The drifted part is the run of turns at the end that never touch the plan's words
    (topic name and description, scenario, excerpt). It is a drift when those turns talk
    about something new: mostly words the conversation had not used, recurring across the
    run (a subject, not noise), everyday life, or another topic of the taxonomy; and the
    conversation ends there without wrapping up. A conversation on its topic brings in new
    terms of its field at every turn, so no one sign decides.

    The drift model (learned from planted drifts against clean conversations' later turns)
    reads how the closing turns are written: chat about the city, the weather or a hobby
    reads like a drift, bookings and prices like the business at work. Its lean adds to
    the points, and alone it finds a drift that keeps a few of the plan's words."""
    findings: list[Finding] = []
    turns = ctx.turns
    if len(turns) < MIN_DRIFT_TURNS:
        return _result("topic_drift", "major", findings, weight, "stays on the planned topic")
    drift_model = style_model.model("drift")
    lean, lean_start = drift_lean(drift_model, [ctx.text(t) for t in turns])
    evidence = drift_evidence(ctx)
    if evidence is not None:
        points = evidence.points() + _lean_points(lean)
        if ctx.conversation.tier == Tier.EDGE_CASE:
            # an off-topic, out-of-scope or hostile user leaves the plan by design
            points -= EDGE_CASE_DRIFT_ALLOWANCE
        strength = 1.0 if points >= DRIFT_POINTS else 0.5 if points >= DRIFT_SUSPECT_POINTS else 0.0
        if strength:
            toward = evidence.other_hits >= 3 and evidence.other_hits > 2 * evidence.planned_in_run
            where = f" toward {evidence.other_topic}" if toward else ""
            shown = evidence.everyday or evidence.recurring
            run = turns[evidence.start :]
            subject = ", ".join(_spellings(run, ctx, set(shown))[:4])
            findings.append(
                Finding(
                    turns[evidence.start].turn_number,
                    f"the conversation drifts away from {ctx.conversation.topic}{where}"
                    + (f" ({subject})" if subject else "")
                    + " from here on and does not come back",
                    strength,
                )
            )
    if lean >= DRIFT_LEAN_SUSPECT and not any(f.strength >= 1.0 for f in findings):
        closing = " ".join(ctx.text(t) for t in turns[lean_start:])
        said = ", ".join(f'"{w}"' for w in drift_model.evidence(closing))
        findings.append(
            Finding(
                turns[lean_start].turn_number,
                f"from here on the conversation reads like a drift away from "
                f"{ctx.conversation.topic} ({said}), not like the business at work",
                1.0 if lean >= DRIFT_LEAN_FLAG else 0.5,
            )
        )
    return _result("topic_drift", "major", findings, weight, "stays on the planned topic")


# --------------------------------------------------------------------------- persona

_DECADES = {
    "twenties": 20,
    "thirties": 30,
    "forties": 40,
    "fifties": 50,
    "sixties": 60,
    "seventies": 70,
    "eighties": 80,
}
_PART = {"early": (0, 3), "mid": (3, 7), "late": (6, 9), "": (0, 9)}
# Life stages a persona can be, and how a user gives theirs away.
_STAGE_OF_PERSONA: tuple[tuple[str, GatedPattern], ...] = tuple(
    (stage, gated(p))
    for stage, p in (
        (
            "pre_retiree",
            r"\bpre-?retire|\bnearing retirement|\bapproaching retirement|\bclose to "
            r"retirement|\bbefore retirement",
        ),
        ("retired", r"\b(?<!pre-)(?<!pre)retire(?:e|es|d)\b|\bin retirement\b|\bpensioner"),
        ("student", r"\bstudents?\b|\bundergrad|\bcollege\b|\buniversity\b"),
        (
            "early_career",
            r"\byoung professional|\bearly[- ]career|\bfirst (?:job|401)|\brecent "
            r"grad|\bentry[- ]level",
        ),
        (
            "business_owner",
            r"\bbusiness owner|\bruns? a (?:small )?(?:company|business|shop|"
            r"firm|practice)|\bself-employed|\bentrepreneur|\bfounder|\bemployees\b|"
            r"\bfreelanc|\bsole trader|\brunning (?:their|his|her) own business",
        ),
        (
            "newcomer",
            r"\bfirst[- ]time\b|\bfor the first time\b|\bfirst (?:trip|visit|stay|holiday)\b|"
            r"\bnew to\b|\bnever (?:been|visited|stayed|travelled|traveled)\b",
        ),
    )
)
_STAGE_OF_USER: dict[str, GatedPattern] = {
    stage: gated(p)
    for stage, p in (
        (
            "student",
            r"\b(?:i'm|i am) (?:a |an )?(?:college |university |grad |graduate |high "
            r"school |full-time |part-time |first-year |second-year |final-year )?student\b|\bmy "
            r"(?:dorm|professor|semester|tuition bill|classes)\b|\bstill in (?:college|school|"
            r"university)\b",
        ),
        (
            "retired",
            r"\b(?:i'm|i am|we're|we are) (?:\d{2} and |now |fully |recently |already |happily )?"
            r"retired\b|\bsince (?:i|we) retired\b|\b(?:i|we) retired (?:last|in|two|three|four|"
            r"five|a few|about|\d)|\bmy pension (?:pays|is paying|started|checks?)\b",
        ),
        (
            "early_career",
            r"\bmy first (?:real |full-time )?(?:job|paycheck|401\(?k\)?)\b|\bjust "
            r"(?:graduated|finished (?:college|university|school))\b|\bstarted my first job\b",
        ),
        (
            "grandparent",
            r"\b(?:my|our) grand(?:kids|children|sons?|daughters?|child|babies)\b|(?<!her )(?<!his )"
            r"(?<!their )(?<!'s )\bthe grand(?:kids|children)\b",
        ),
        (
            "retiring",
            r"\b(?:i'm|i am|we're|we are) (?:retiring|about to retire|due to retire|going to "
            r"retire)\b|\bwhen (?:i|we) retire (?:next|this|in)\b",
        ),
        (
            "returning",
            # someone who has been here, done this, before
            r"\b(?:we're|we are|i'm|i am) (?:coming|going) back (?:to|for)\b(?! (?:you|the "
            r"(?:office|bank|form)))|\b(?:we|i) lived (?:in|near) [a-z]+ for (?:\w+ )?(?:years|"
            r"months)\b|\blast time (?:we|i) (?:came|visited|stayed|were here|was here)\b|\bmy "
            r"(?:second|third|fourth|fifth) (?:time|visit|trip|stay)\b|\b(?:we've|we have|i've|i "
            r"have) (?:stayed|been) (?:here|with you|at your [a-z]+) before\b",
        ),
        (
            "salaried",
            r"\bmy (?:payslips?|pay slips?|pay stubs?|line manager|boss)\b|\bhr "
            r"(?:takes|says|department|has|signs?|won't)\b|\bsalary (?:goes |is paid |comes )?"
            r"straight into\b|\bmy (?:employer|company) (?:pays|has confirmed)\b",
        ),
        (
            "child",
            # a schoolchild: the class they are in, their school day, what a parent allows
            r"\b(?:i'm|i am) (?:in|only in) (?:class|grade|year|standard|std\.?|form) \d{1,2}\b|"
            r"\bmy (?:school bus|homework|school friends|class teacher)\b|\bafter (?:my )?"
            r"homework\b|\bmy (?:mom|mum|dad|parents|mother|father) (?:only )?(?:lets|let|won't "
            r"let|allows?|doesn't let) me\b",
        ),
        (
            "employed",
            r"\bmy (?:company|employer) (?:will|is going to|pays|covers|reimburses|is "
            r"paying|is covering)\b|\bfor (?:a|my) (?:work|business) (?:trip|conference|meeting)\b|"
            r"\b(?:i'm|i am) (?:here|in [a-z]+) for (?:a|the|my) (?:[a-z]+ )?(?:conference|"
            r"work trip|business trip|client meetings?)\b|\breceipt for my expenses\b|\bmy "
            r"(?:firm|company|employer) (?:transferred|sent|moved|posted|relocated) me\b|\b(?:i'm|"
            r"i am) still (?:with|at|working for) (?:them|the (?:firm|company)|my (?:firm|company|"
            r"employer))\b|\bi (?:currently |still )?(?:work|teach) (?:[a-z]+ )?(?:at|for|in) "
            r"(?:a|an|the|my|our)\b|\b(?:i'm|i am) on the (?:[a-z]+ )?(?:timetable|shift|rota) "
            r"(?:at|this)\b",
        ),
        (
            "business_owner",
            r"\bmy (?:employees|staff)\b|\b(?:i|we) (?:own|run) (?:a|an|my|our) "
            r"(?:small )?(?:business|company|shop|store|restaurant|practice|firm|startup)\b|"
            r"\b(?:i'm|i am) self-employed\b",
        ),
    )
}
_INCOMPATIBLE: dict[str, frozenset[str]] = {
    "student": frozenset({"retired", "grandparent", "business_owner"}),
    "early_career": frozenset({"retired", "grandparent", "student"}),
    "pre_retiree": frozenset({"student", "early_career", "retired"}),
    "retired": frozenset({"student", "early_career"}),
    "business_owner": frozenset({"student", "retired", "salaried"}),
    "newcomer": frozenset({"returning"}),
}
_INCOMPATIBLE["retired"] = _INCOMPATIBLE["retired"] | {"employed", "salaried"}
# The ages a life stage the user gives away usually means.
_STAGE_AGES: dict[str, tuple[int, int]] = {
    "employed": (20, 67),
    "student": (16, 25),
    "retired": (58, 100),
    "grandparent": (45, 100),
    "retiring": (50, 75),
    "child": (6, 16),
    "early_career": (21, 32),
}
_STATED_AGE = re.compile(
    r"\b(?:i'm|i am|i just turned|i turned|i'll be|i will be|as)\s+(?:an? )?(\d{2})(?:\s*(?:years?|"
    r"yrs?)[- ]old|-year-old)?\b(?!\s*(?:%|percent|k\b|grand|minutes|hours|days|weeks|months|"
    r"years? (?:ago|in|into|of|since|from|away|until|left)|dollars|thousand|times))|"
    r"(?<!my )(?<!our )(?<!his )(?<!her )\b(\d{2})[- ](?:years?|yrs?)[- ]old\b(?! "
    r"(?:son|daughter|kid|child|boy|girl|car|house|roof|mother|father|mom|dad))|"
    r"\bin (?:my|our) (early |mid |late )?(twenties|thirties|forties|fifties|sixties|seventies|eighties)\b|"
    r"\b(?:we're|we are|are) (?:both )?(?:[a-z]+ )?(\d{2}) and (\d{2})\b|"
    # "I'm a hospitalist at a county hospital, 61, and ..."
    r"\b(?:i'm|i am) an? [a-z][a-z' -]{2,60}?, (\d{2})(?=,| and\b|\.)|"
    # "We're Megan and Ryan, both 58", "my wife and I are both 61"
    r"(?:\b(?:we're|we are|are)|,) both (\d{2})\b(?=\s*(?:,|\.|;|!| and\b|years? old))|"
    # "Hi, I'm Lena, 17, from Berlin"
    r"\b(?:i'm|i am|my name is|my name's) [a-z]+(?: [a-z]+)?, (\d{2})\b(?=\s*(?:,|\.|;|!| and\b|"
    r"from\b|years? old))"
)
_AGE_RANGE = re.compile(
    r"\b(?:aged?|ages?|between)\s*(\d{2})\s*(?:-|to|and)\s*(\d{2})\b|\b(\d{2})\s*(?:-|to)\s*"
    r"(\d{2})\s*(?:years? old|year-olds?|yo)\b|\b(early|mid|late)?[- ]?(\d)0s\b|\b(\d{2})\+|"
    r"\b(?:over|older than|above|past) (\d{2})\b|\b(\d{2}) or (?:older|over)\b|\b(?:under|younger "
    r"than) (\d{2})\b|\bin (?:their|his|her) (early |mid |late )?(twenties|thirties|forties|"
    r"fifties|sixties|seventies|eighties)\b|\b(early|mid|late)[- ](twenties|thirties|forties|"
    r"fifties|sixties|seventies|eighties)\b"
)


_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_TEENS = {
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_UNITS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
}
_SPELLED_AGE = re.compile(
    r"\b(?:("
    + "|".join(_TENS)
    + r")(?:[- ]("
    + "|".join(_UNITS)
    + r"|something|ish))?|("
    + "|".join(_TEENS)
    + r"))\b"
)
# "19 to 22, a year into a first job": an age range opening a persona's description
_LEADING_RANGE = re.compile(
    r"(?:^|[.;]\s+)(\d{2})\s*(?:-|to|\u2013)\s*(\d{2})\b(?!\s*(?:%|years? "
    r"(?:at|of|with|in|on)))"
)


_LEADING_AGE = re.compile(r"(?:^|[.;]\s+)(?:both |aged? |about |around )?(\d{2})[,;]\s+(?=[a-z])")


def _digits_for_ages(text: str) -> str:
    """Spelled ages as digits: "fifty-something" -> "50s", "twenty-two" -> "22"."""

    def one(m: re.Match[str]) -> str:
        if m.group(3):
            return str(_TEENS[m.group(3)])
        tens, unit = _TENS[m.group(1)], m.group(2)
        if unit in ("something", "ish"):
            return f"{tens}s"
        return str(tens + _UNITS[unit]) if unit else str(tens)

    return _SPELLED_AGE.sub(one, text)


def persona_age_range(text: str) -> tuple[int, int] | None:
    """The ages a persona's name and description allow, if they say."""
    lows: list[int] = []
    highs: list[int] = []
    text = _digits_for_ages(text.lower())
    for m in _LEADING_RANGE.finditer(text):
        lows.append(int(m.group(1)))
        highs.append(int(m.group(2)))
    for m in _LEADING_AGE.finditer(text):  # "Fifty-four, left an engineering employer ..."
        lows.append(int(m.group(1)) - 2)
        highs.append(int(m.group(1)) + 2)
    for m in _AGE_RANGE.finditer(text):
        if m.group(1) and m.group(2):
            lows.append(int(m.group(1)))
            highs.append(int(m.group(2)))
        elif m.group(3) and m.group(4):
            lows.append(int(m.group(3)))
            highs.append(int(m.group(4)))
        elif m.group(6):
            decade = int(m.group(6)) * 10
            if decade < 20:
                continue
            a, b = _PART[(m.group(5) or "").lower()]
            lows.append(decade + a)
            highs.append(decade + b)
        elif re.search(
            r"\b(?:children|kids|child|sons?|daughters?|babies|pets?|dogs?|cats?)"
            r"\b[^.;]{0,20}$",
            text[max(0, m.start() - 30) : m.start()],
        ):
            continue  # "two children under 10": someone else's age
        elif m.group(7) or m.group(8) or m.group(9):
            lows.append(int(m.group(7) or m.group(8) or m.group(9)))
            highs.append(110)
        elif m.group(10):
            lows.append(14)
            highs.append(int(m.group(10)))
        elif m.group(12) or m.group(14):
            decade = _DECADES[m.group(12) or m.group(14)]
            a, b = _PART[(m.group(11) or m.group(13) or "").strip()]
            lows.append(decade + a)
            highs.append(decade + b)
    if not lows:
        lowered = text.lower()
        if re.search(r"\bpre-?retire", lowered):
            return (50, 68)
        if re.search(r"\bretire(?:e|d)\b", lowered):
            return (58, 100)
        if re.search(r"\bstudents?\b|\bundergrad", lowered):
            return (16, 30)
        if re.search(r"\byoung professional|\bearly[- ]career|\brecent grad", lowered):
            return (21, 38)
        # a parent of young or school-age children
        if re.search(
            r"\b(?:school-age|school-aged|young|small|little|primary-school|toddler|baby|"
            r"newborn|infant)(?: [a-z-]+)? (?:children|kids|child|sons?|daughters?|twins)\b|"
            r"\b(?:a|two|three) (?:toddlers?|babies|baby)\b",
            lowered,
        ):
            return (22, 55)
        if re.search(r"\bmid[- ]career", lowered):
            return (32, 55)
        return None
    return min(lows), max(highs)


# Someone other than the user as a clause's subject: their age or years are not the user's.
_OTHER_PERSON = re.compile(
    r"\b(?:my|our) (?:husband|wife|partner|father|mother|dad|mum|mom|son|daughter|brother|"
    r"sister|friend|colleague|boss|uncle|aunt|neighbou?r|kids?|children|boys|girls|twins|"
    r"teenagers?|parents|grandparents?)\b|\b(?:he|she|they)(?:'s|'ve| has| have| is)?\b"
)
_US = re.compile(r"\b(?:and i|i and|we|we're|both of us)\b")
# A thing as the clause's subject ("our gas boiler is about twenty years old").
_THING = re.compile(
    r"\b(?:my|our|the|this|that|its|their|your) [a-z]+(?: [a-z]+)? (?:is|was|are)\b"
)


def stated_age(text: str) -> tuple[int, int] | None:
    lowered = _digits_for_ages(text.lower())  # "I'm twenty-nine" as "I'm 29"
    for m in _STATED_AGE.finditer(lowered):
        if not m.group(0).startswith(("i'm", "i am", "i just", "i turned", "i'll", "i will")):
            # "My kids are 14 and 16", "She is Filipino, 29 years old": someone else's age
            clause = re.split(r"[.!?;]", lowered[max(0, m.start() - 60) : m.start()])[-1]
            if (_OTHER_PERSON.search(clause) or _THING.search(clause)) and not _US.search(clause):
                continue
        if m.group(5) and m.group(6):
            a, b = sorted((int(m.group(5)), int(m.group(6))))
            if 14 <= a <= 99 and b <= 99:
                return a, b
            continue
        single = m.group(1) or m.group(2) or m.group(7) or m.group(8) or m.group(9)
        if single:
            age = int(single)
            # "I'm 11" is a child; "as 12 ..." too often counts something else
            youngest = 10 if m.group(0).startswith(("i'm", "i am", "i just", "i turned")) else 14
            if youngest <= age <= 99:
                return age, age
        elif m.group(4):
            decade = _DECADES[m.group(4).lower()]
            a, b = _PART[(m.group(3) or "").strip().lower()]
            return decade + a, decade + b
    return None


def _persona_stages(text: str) -> set[str]:
    lowered = text.lower()
    stages = {stage for stage, p in _STAGE_OF_PERSONA if p.search(lowered)}
    if "pre_retiree" in stages:
        stages.discard("retired")
    return stages


_ORDINALS = {
    w: i
    for i, w in enumerate(
        [
            "first",
            "second",
            "third",
            "fourth",
            "fifth",
            "sixth",
            "seventh",
            "eighth",
            "ninth",
            "tenth",
            "eleventh",
            "twelfth",
            "thirteenth",
            "fourteenth",
            "fifteenth",
            "sixteenth",
            "seventeenth",
            "eighteenth",
            "nineteenth",
            "twentieth",
        ],
        start=1,
    )
}
# Years the user has spent at work or married: someone cannot have been at it longer than
# their age allows ("twenty-six years at the agency" from a planned 29-year-old).
_TENURE = re.compile(
    r"\b(\d{1,2}) years? (?:on the wards|in (?:the )?(?:same |one )?(?:job|company|agency|firm|"
    r"business|trade|industry|profession|practice|school|office|post)|at (?:the|my|one|this|that) "
    r"[a-z]+|with (?:the|my|one|this) (?:[a-z]+ )?(?:company|firm|agency|employer|bank|school)|of "
    r"(?:work|working|service|practice|teaching|nursing|marriage)|as an? [a-z]+|working|married|"
    r"self-employed|in business)\b|\b(?:my|our) (\d{1,2})(?:st|nd|rd|th) year (?:at|in|with|"
    r"working|of)\b|\bthis is my (\d{1,2})(?:st|nd|rd|th) year\b|\b(?:for|after) (\d{1,2}) "
    r"years,? (?:i|we) (?:worked|have worked|was|were|have been|ran|taught)\b|\b(?:celebrate|"
    r"celebrating|married for) (\d{1,2}) years\b"
)
_FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|my|me|we|we're|we've|our)\b")
ADULT_AT = 18  # the youngest a working or married life usually starts


def stated_tenure(text: str) -> tuple[int, str] | None:
    """The longest span of work or marriage the user gives as their own, with its words."""
    lowered = text.lower()
    if "year" not in lowered:
        return None
    for word, number in _ORDINALS.items():
        lowered = re.sub(rf"\b{word}\b", f"{number}th", lowered)
    lowered = _digits_for_ages(lowered)
    best: tuple[int, str] | None = None
    for sentence in re.split(r"(?<=[.!?])\s+", lowered):
        for m in _TENURE.finditer(sentence):
            years = int(next(g for g in m.groups() if g))
            before = sentence[max(0, m.start() - 60) : m.start()]
            if _OTHER_PERSON.search(before) or not _FIRST_PERSON.search(sentence):
                continue
            if best is None or years > best[0]:
                best = (years, m.group(0))
    return best


def check_persona(ctx: CheckContext, weight: float = 1.0) -> QualityCheck:
    """The user presents as someone other than the planned persona."""
    conv = ctx.conversation
    description = ctx.taxonomy.describe("personas", conv.persona) if ctx.taxonomy else ""
    persona_text = f"{conv.persona}. {description}"
    allowed = persona_age_range(persona_text)
    stages = _persona_stages(persona_text)
    ruled_out = frozenset().union(*(_INCOMPATIBLE.get(s, frozenset()) for s in stages))
    findings: list[Finding] = []
    for turn in ctx.of_role("user"):
        text = ctx.text(turn)
        age = stated_age(text)
        if allowed and age:
            lo, hi = allowed
            gap = max(lo - age[1], age[0] - hi)
            if gap >= 5:
                said = f"{age[0]}" if age[0] == age[1] else f"{age[0]}-{age[1]}"
                findings.append(
                    Finding(
                        turn.turn_number,
                        f"the user says they are {said}, but {conv.persona} is {lo}-{hi}",
                        1.0 if gap >= 8 else 0.8,
                    )
                )
                continue
        tenure = stated_tenure(text) if allowed else None
        if allowed and tenure:
            gap = tenure[0] + ADULT_AT - allowed[1]
            if gap >= 3:
                findings.append(
                    Finding(
                        turn.turn_number,
                        f'the user speaks of "{short(tenure[1], 40)}", more than {conv.persona} '
                        f"({allowed[0]}-{allowed[1]}) can have behind them",
                        1.0 if gap >= 8 else 0.8,
                    )
                )
                continue
        lowered = text.lower()
        for stage, pattern in _STAGE_OF_USER.items():
            match = pattern.search(lowered)
            if not match:
                continue
            source = text if len(text) == len(lowered) else lowered
            said = short(source[match.start() : match.end()], 40)
            if stage in ruled_out:
                findings.append(
                    Finding(
                        turn.turn_number,
                        f'the user presents as someone other than {conv.persona} ("{said}")',
                    )
                )
                break
            implied = _STAGE_AGES.get(stage)
            if allowed and implied:
                gap = max(allowed[0] - implied[1], implied[0] - allowed[1])
                if gap >= 1:
                    findings.append(
                        Finding(
                            turn.turn_number,
                            f'the user presents as someone other than {conv.persona} ("{said}"; '
                            f"{conv.persona} is {allowed[0]}-{allowed[1]})",
                            1.0 if gap >= 15 else 0.8 if gap >= 8 else 0.5,
                        )
                    )
                    break
    if not findings and ctx.taxonomy and len(ctx.taxonomy.personas) > 1:
        findings.extend(_named_as_another_persona(ctx) or _persona_contrast(ctx))
    return _result("persona", "major", findings, weight, "the user matches the planned persona")


_DEGREE = frozenset(
    ["bit", "little", "lot", "tad", "very", "really", "so", "quite", "bundle", "touch", "fan"]
)
_PHRASE_ENDS_TEXT = (
    "for that this these those in at on to of from with by about because since so and but or "
    "who which when where while if than as"
)
_PHRASE_ENDS = frozenset(_PHRASE_ENDS_TEXT.split())
_SELF_ID = re.compile(r"\b(?:i'm|i am|i work as|i'm working as|as) an? ((?:[a-z-]+ ){0,3}[a-z-]+)")


# How far along someone is with the business, not who they are: any persona can be a
# beginner at the gym or a regular at the shop.
_STANDING_WORDS = frozenset(
    {
        "beginner",
        "beginners",
        "novice",
        "learner",
        "regular",
        "member",
        "customer",
        "client",
        "guest",
        "visitor",
        "user",
        "newcomer",
        "first-timer",
    }
)


def _named_as_another_persona(ctx: CheckContext) -> list[Finding]:
    """The user calls themselves by another persona's name ("I'm a freelance designer",
    "I'm an early childhood educator" when the taxonomy has "Teacher or daycare educator")."""
    taxonomy = ctx.taxonomy
    assert taxonomy is not None
    mine = set(words(ctx.conversation.persona)) - STOPWORDS
    mine_stems = {stem(w) for w in mine}
    names = {e.name: set(words(e.name)) - STOPWORDS for e in taxonomy.personas}
    # A word only one persona's name has: it tells that persona apart.
    counts = Counter(w for ws in names.values() for w in ws)
    for turn in ctx.of_role("user"):
        lowered = ctx.text(turn).lower()
        for m in _SELF_ID.finditer(lowered):
            phrase = words(m.group(1))
            # the noun phrase ends at its first function word: "a tourist for that long"
            cut = next((i for i, w in enumerate(phrase) if w in _PHRASE_ENDS), len(phrase))
            phrase = phrase[:cut]
            if not phrase or phrase[0] in _DEGREE or {stem(w) for w in phrase} & mine_stems:
                continue
            said = {phrase[-1]}  # the head noun: "an early childhood educator"
            for entry in taxonomy.personas:
                if entry.name == ctx.conversation.persona:
                    continue
                name = names[entry.name]
                distinctive = {
                    w for w in name if counts[w] == 1 and len(w) > 3 and w not in _STANDING_WORDS
                }
                shared = {stem(w) for w in distinctive} & {stem(w) for w in said}
                if shared and not ({stem(w) for w in distinctive} & mine_stems):
                    return [
                        Finding(
                            turn.turn_number,
                            f"the user presents as {entry.name}, not {ctx.conversation.persona} "
                            f'("{short(m.group(0), 40)}")',
                        )
                    ]
    return []


_NUMBER_STEMS = frozenset(stem(w) for w in [*_TENS, *_DECADES, "teens", "teenager"])
# The words after the first of a capitalised run ("Ngong Road", "Total Energies") name a
# place or a firm, not the user.
_CAPITALISED_RUN = re.compile(r"\b[A-Z][\w'-]*(?: [A-Z][\w'-]*)+")
_SELF_WORDS = frozenset({"I", "I'm", "I've", "I'd", "I'll"})


def _without_name_tails(sentence: str) -> str:
    def first_only(m: re.Match[str]) -> str:
        run = m.group(0).split()
        # "I'm German": the word after the user's "I" is about the user
        return " ".join(run[:2]) if run[0] in _SELF_WORDS else run[0]

    return _CAPITALISED_RUN.sub(first_only, sentence)


def _persona_contrast(ctx: CheckContext) -> list[Finding]:
    """The user's self-description matches another persona of the taxonomy, not theirs."""
    taxonomy = ctx.taxonomy
    assert taxonomy is not None
    conv = ctx.conversation
    # Ages are the age checks' to compare: "twenty minutes" is not "Twenty-three".
    vocab = {
        e.name: _vocab(taxonomy, "personas", e.name) - _NUMBER_STEMS for e in taxonomy.personas
    }
    if conv.persona not in vocab:
        return []
    shared = set.intersection(*vocab.values()) if vocab else set()
    distinct = {name: v - shared for name, v in vocab.items()}
    mine = distinct[conv.persona]
    user_stems: set[str] = set()
    for turn in ctx.of_role("user"):
        for sentence in sentences(ctx.text(turn)):
            tokens = set(words(sentence))
            if tokens & {"i", "i'm", "i've", "my", "we", "we're", "our", "me"}:
                user_stems |= _stems(_without_name_tails(sentence))
    own = len(mine & user_stems)
    best_name, best = max(
        ((name, len(v & user_stems)) for name, v in distinct.items() if name != conv.persona),
        key=lambda x: x[1],
        default=("", 0),
    )
    if best >= 3 and own == 0:
        strength = 0.8
    elif (best >= 2 and own == 0) or (best >= 4 and best >= 3 * own):
        strength = 0.5
    else:
        return []
    return [
        Finding(
            None,
            f"the user describes themselves like {best_name}, not {conv.persona}",
            strength,
        )
    ]


# --------------------------------------------------------------------------- grounding

_HYPOTHETICAL = re.compile(
    r"\b(?:for example|for instance|e\.g\.|say you|let's say|imagine|suppose|if you (?:had|"
    r"have|invest|put|were|earn|spend|save)|hypothetically|as an illustration|roughly|"
    r"ballpark)\b"
)
_STRONG_KINDS = frozenset({"money", "percent", "phone", "email", "url", "name"})
# Who and how to reach them: never worked out, so one not in the excerpt is invented.
_IDENTITY_KINDS = frozenset({"phone", "email", "url", "name"})
# A sentence without a digit, an @, a web address or a capitalised name after a title or a
# role holds no checkable specific: most sentences, skipped at the cost of one scan.
_MAY_HOLD_SPECIFICS = re.compile(
    r"\d|@|www\.|\.(?:com|org|net)\b|\b(?:Dr|Mr|Mrs|Ms|Prof)\b|, [A-Z][a-z]+|(?:named|called|ask for|speak (?:to|with)|contact) [A-Z]|"
    r"(?:would be|will be|is) [A-Z][a-z]+ [A-Z][a-z]+"
)


# A figure that names a charge of the business ("a once-off R1,500 admin fee") is stated,
# not worked out, even in a sentence that also does arithmetic ("..., so two weeks").
_CHARGE_AFTER = re.compile(
    r"^\s*(?:[a-z-]+ ){0,2}(?:fee|fees|charge|deposit|surcharge|premium|levy|penalty|excess|"
    r"discount|rebate|credit|bonus|voucher|refund|allowance|grant|contribution|subsidy)\b"
)


def _names_a_charge(sentence: str, figure: str) -> bool:
    at = sentence.find(figure)
    return at >= 0 and bool(_CHARGE_AFTER.match(sentence[at + len(figure) :].lower()))


def check_grounding(ctx: CheckContext, weight: float = 1.0) -> QualityCheck:
    """Scenario conversations: the assistant's facts come from the excerpt (or the user)."""
    conv = ctx.conversation
    findings: list[Finding] = []
    if ctx.chunk_text and conv.tier == Tier.SCENARIO:
        sources = [ctx.chunk_text, conv.scenario or "", ctx.business_name or ""]
        if ctx.taxonomy:
            sources += [
                ctx.taxonomy.describe("personas", conv.persona),
                ctx.taxonomy.describe("topics", conv.topic),
            ]
        sources += [ctx.text(t) for t in ctx.of_role("user")]
        grounded = grounding.Grounding(sources)
        source_specifics = grounding.specifics(ctx.chunk_text)
        strong = 0
        weak = 0
        for turn in ctx.of_role("assistant"):
            for sentence in sentences(ctx.text(turn)):
                if _HYPOTHETICAL.search(sentence.lower()):
                    continue
                reported: list[str] = []
                for name in grounding.invented_names(sentence, grounded):
                    strong += 1
                    reported.append(name)
                    findings.append(
                        Finding(
                            turn.turn_number,
                            f'the assistant names "{short(name, 30)}", which is not in the excerpt',
                            0.8,
                        )
                    )
                if not _MAY_HOLD_SPECIFICS.search(sentence):
                    continue
                for item in grounding.ungrounded(sentence, grounded, source_specifics):
                    if item.specific.kind == "name" and any(
                        item.specific.text in name or name in item.specific.text
                        for name in reported
                    ):
                        continue
                    spec = item.specific
                    if item.contradicts is not None:
                        findings.append(
                            Finding(
                                turn.turn_number,
                                f'the assistant says "{short(spec.text, 30)}" where the excerpt '
                                f'says "{short(item.contradicts.text, 30)}"',
                            )
                        )
                    elif spec.kind in _IDENTITY_KINDS:
                        strong += 1
                        findings.append(
                            Finding(
                                turn.turn_number,
                                f'the assistant states "{short(spec.text, 30)}", which is not in '
                                "the excerpt",
                                0.8,
                            )
                        )
                    elif (
                        spec.kind in _STRONG_KINDS
                        and not item.derivable
                        and (not item.worked_out or _names_a_charge(sentence, spec.text))
                    ):
                        # An amount or rate stated flatly ("the penalty is 4.75%") that the
                        # excerpt does not have: an invented fact of the business.
                        strong += 1
                        findings.append(
                            Finding(
                                turn.turn_number,
                                f'the assistant states "{short(spec.text, 30)}", which is not in '
                                "the excerpt",
                                0.8,
                            )
                        )
                    else:
                        # Worked out in more steps than can be followed, or a date or a
                        # duration: doubtful, not proof.
                        weak += 2 if spec.kind in _STRONG_KINDS else 1
                        findings.append(
                            Finding(
                                turn.turn_number,
                                f'the assistant states "{short(spec.text, 30)}", which is not in '
                                "the excerpt",
                                0.35 if spec.kind in _STRONG_KINDS else 0.25,
                            )
                        )
        if strong >= 2 or (strong and weak >= 1):
            findings = [
                Finding(f.turn, f.reason, max(f.strength, 1.0 if f.strength >= 0.75 else 0.5))
                for f in findings
            ]
        elif weak >= 6:
            findings = [Finding(f.turn, f.reason, max(f.strength, 0.75)) for f in findings]
        elif weak >= 3:
            findings = [Finding(f.turn, f.reason, max(f.strength, 0.5)) for f in findings]
    return _result(
        "grounding", "major", findings, weight, "facts and figures come from the excerpt"
    )


# --------------------------------------------------------------------------- copied turns

COPY_SIMILARITY = 0.8  # word-bigram Jaccard of two near-identical turns
COPY_CONTAINMENT = 0.7  # share of a turn's word 4-grams found in an earlier turn
COPY_EDIT_RATIO = 0.85  # word-sequence similarity of a turn repeated with small edits
MIN_COPY_WORDS = 8  # short turns ("Thanks, that helps!") may legitimately repeat


def _grams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


# The two sides' pronouns are one token: parroting the other side swaps "I" for "you".
_PERSON = {
    w: "<p>"
    for w in [
        "i",
        "me",
        "you",
        "i'm",
        "you're",
        "i've",
        "you've",
        "i'd",
        "you'd",
        "i'll",
        "you'll",
        "my",
        "your",
        "mine",
        "yours",
        "myself",
        "yourself",
        "we",
        "us",
        "our",
        "ours",
    ]
}


def _copy_tokens(text: str) -> list[str]:
    return [_PERSON.get(w, w) for w in words(text)]


def _char_similarity(a: str, b: str) -> float:
    a, b = a.lower(), b.lower()
    return SequenceMatcher(None, a, b, autojunk=False).ratio() if min(len(a), len(b)) else 0.0


def check_copied_turns(ctx: CheckContext, weight: float = 1.0) -> QualityCheck:
    """Turns that repeat an earlier turn, whole or nearly, or parrot the other side."""
    tokens = [_copy_tokens(ctx.text(t)) for t in ctx.turns]
    bigrams = [_grams(tok, 2) for tok in tokens]
    fourgrams = [_grams(tok, 4) for tok in tokens]
    findings: list[Finding] = []
    for j, turn in enumerate(ctx.turns):
        if not tokens[j]:
            continue
        for i in range(j):
            if not tokens[i]:
                continue
            earlier = ctx.turns[i]
            if tokens[i] == tokens[j]:
                findings.append(
                    Finding(
                        turn.turn_number,
                        f"{speaker(turn.role)} repeats turn {earlier.turn_number} word for word",
                    )
                )
                break
            if min(len(tokens[i]), len(tokens[j])) < MIN_COPY_WORDS:
                continue
            union = bigrams[i] | bigrams[j]
            similarity = len(bigrams[i] & bigrams[j]) / len(union) if union else 0.0
            shared = fourgrams[j] & fourgrams[i]
            contained = len(shared) / len(fourgrams[j]) if fourgrams[j] else 0.0
            # The whole earlier turn said again inside a longer one (parroting it back).
            swallowed = len(shared) / len(fourgrams[i]) if len(fourgrams[i]) >= 10 else 0.0
            # A short turn said again with a word or two changed ("... exactly?", "... now")
            # breaks many 4-grams but few words: compare the word sequences too.
            edited = (
                SequenceMatcher(None, tokens[i], tokens[j], autojunk=False).ratio()
                if contained >= 0.4 or similarity >= 0.5
                else 0.0
            )
            if COPY_EDIT_RATIO > edited >= 0.6 and earlier.role == turn.role:
                # Small edits to short words ("Good to know" for "OK great") move the word
                # sequence more than the characters.
                edited = max(edited, _char_similarity(ctx.text(earlier), ctx.text(turn)))
            if (
                similarity >= COPY_SIMILARITY
                or edited >= COPY_EDIT_RATIO
                or contained >= COPY_CONTAINMENT
                or swallowed >= 0.8
                or (swallowed >= 0.5 and len(tokens[i]) >= 20)
            ):
                how = (
                    f"parrots turn {earlier.turn_number}"
                    if earlier.role != turn.role
                    else f"copies turn {earlier.turn_number}"
                )
                same = max(similarity, contained, swallowed, edited)
                findings.append(
                    Finding(turn.turn_number, f"{speaker(turn.role)} {how} ({same:.0%} the same)")
                )
                break
            if contained >= 0.45 or swallowed >= 0.6:
                findings.append(
                    Finding(
                        turn.turn_number,
                        f"{speaker(turn.role)} reuses much of turn {earlier.turn_number} "
                        f"({max(contained, swallowed):.0%} of its phrases)",
                        0.5,
                    )
                )
                break
    return _result("repeated_turns", "major", findings, weight, "no repeated turns")


# --------------------------------------------------------------------------- business rules


def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    """``phrase`` matched case-insensitively on word boundaries, any spacing."""
    parts = [re.escape(p) for p in normalise(phrase).split()]
    body = r"[\s\-]+".join(parts)
    lead = r"\b" if phrase[:1].isalnum() else ""
    tail = r"\b" if phrase[-1:].isalnum() else ""
    return re.compile(lead + body + tail, re.IGNORECASE)


_LOOSE_DROP = re.compile(r"[^a-z0-9]")


def _ascii_fold(text: str) -> str:
    """ "Ó Briain" -> "O Briain": accented letters keep their base letter."""
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _loose(text: str) -> str:
    """Lower-cased letters and digits only, '&' read as 'and': for brand spellings."""
    return _LOOSE_DROP.sub("", _ascii_fold(normalise(text)).lower().replace("&", "and"))


def _common_in_order(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence: shared words in the same order."""
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


DISCLAIMER_COVERAGE = 0.85  # share of its words, in order, a reworded disclaimer keeps


def _disclaimer_present(disclaimer: str, texts: Sequence[str]) -> bool:
    wanted = [stem(w) for w in words(disclaimer) if w not in STOPWORDS]
    if not wanted:
        return True
    pattern = _phrase_pattern(disclaimer)
    for text in texts:
        if pattern.search(text):
            return True
        # Reworded punctuation or a word or two changed still counts, within a sentence or
        # two; the disclaimer's words scattered over a turn (its key word missing) do not.
        said = [[stem(w) for w in words(x) if w not in STOPWORDS] for x in sentences(text)]
        for i in range(len(said)):
            window = said[i] + (said[i + 1] if i + 1 < len(said) else [])
            if _common_in_order(wanted, window) >= DISCLAIMER_COVERAGE * len(wanted):
                return True
    return False


def check_business_rules(ctx: CheckContext, weight: float = 1.0) -> QualityCheck:
    rules = ctx.rules
    findings: list[Finding] = []
    if rules is not None and not rules.is_empty():
        assistant = ctx.of_role("assistant")
        for phrase in rules.banned_phrases:
            pattern = _phrase_pattern(phrase)
            for turn in assistant:
                if pattern.search(ctx.text(turn)):
                    findings.append(
                        Finding(
                            turn.turn_number, f'the assistant says the banned phrase "{phrase}"'
                        )
                    )
                    break
        topic = ctx.conversation.topic.casefold()
        texts = [ctx.text(t) for t in assistant]
        for rule in rules.required_disclaimers:
            applies = not rule.topics or topic in {t.casefold() for t in rule.topics}
            if applies and not _disclaimer_present(rule.text, texts):
                findings.append(
                    Finding(
                        None,
                        f'the required disclaimer "{short(rule.text, 60)}" is missing '
                        f"for {ctx.conversation.topic}",
                    )
                )
        for brand in rules.brand_terms:
            for turn in assistant:
                bad = misspelled_brand(ctx.text(turn), brand.term, brand.wrong)
                if bad:
                    findings.append(
                        Finding(
                            turn.turn_number,
                            f'the assistant writes "{short(bad, 40)}" instead of "{brand.term}"',
                        )
                    )
                    break
    return _result("business_rules", "major", findings, weight, "the business's rules are kept")


def _edit_distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance, giving up (limit + 1) once it must exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1]


def misspelled_brand(text: str, term: str, known_wrong: Sequence[str] = ()) -> str | None:
    """A spelling of ``term`` in ``text`` other than the exact one: a listed misspelling,
    the same letters spaced or cased differently ("Quickbooks", "Harbor and Pine"), or
    one letter off ("QuikBooks")."""
    for wrong in known_wrong:
        match = _phrase_pattern(wrong).search(text)
        if match and match.group(0) != term:
            return match.group(0)
    wanted = _loose(term)
    if len(wanted) < 4:
        return None
    tokens = text.split()
    loose_tokens = [_LOOSE_DROP.sub("", _ascii_fold(t).lower().replace("&", "and")) for t in tokens]
    size = len(term.split())
    # Words of the term spelt right: no window inside one is a misspelling of it.
    exact: set[int] = set()
    if term in text:
        first = term.split()[0]
        for i, token in enumerate(tokens):
            if first in token and term in " ".join(tokens[i : i + size]):
                exact.update(range(i, i + size))
    limit = 2 if len(wanted) >= 10 else 1 if len(wanted) >= 6 else 0
    # Windows of up to two more words than the term, compared by their letters (built by
    # joining each word's letters once: this runs on every assistant turn).
    windows: list[tuple[int, int, str]] = []
    for i in range(len(tokens)):
        loose = ""
        for j in range(i + 1, min(len(tokens), i + size + 2) + 1):
            loose += loose_tokens[j - 1]
            if len(loose) > len(wanted) + limit:
                break
            if len(loose) >= len(wanted) - limit and not exact.intersection(range(i, j)):
                windows.append((i, j, loose))

    def spelled(i: int, j: int) -> str:
        return " ".join(tokens[i:j]).strip(" .,;:!?()\"'")

    for i, j, loose in windows:  # same letters, other spacing or case: the tightest match
        if loose == wanted:
            candidate = spelled(i, j)
            if candidate != term and term not in candidate:
                return candidate
    for i, j, loose in windows:  # a letter or two off, as many words as the term
        if (
            limit
            and abs((j - i) - size) <= 1
            # a misspelling keeps the term's first or last letter: skips most windows cheaply
            and (loose[0] == wanted[0] or loose[-1] == wanted[-1])
            and _edit_distance(loose, wanted, limit) <= limit
        ):
            candidate = spelled(i, j)
            if term not in candidate:
                return candidate
    return None
