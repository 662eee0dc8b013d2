"""Realistic mistakes for the offline simulator's conversations.

Real generations fail in recognisable ways: the model breaks character as an AI, leaks
its own chatter or unfilled placeholders, swaps the two roles, drifts off topic, writes
a different customer than planned, changes language, stops mid-sentence, invents the
business's facts, repeats itself, or promises what a regulated business must never
promise. The simulator plants one such defect in a configurable share of its
conversations (``LLM_SIM_DEFECT_RATE``, default 0.15), so the review queue of a demo
looks like a real one and the flagged path is exercised end to end.

Each maker takes the clean turns and changes one to three of them; the structure
(alternation, user first, assistant last) is kept, so the defect is in the content.
Wording is drawn from several variants per kind, seeded by the conversation's RNG.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

Turns = list[dict[str, str]]

DEFECT_KINDS: tuple[str, ...] = (
    "ai_refusal",
    "generator_artifact",
    "role_confusion",
    "topic_drift",
    "persona_mismatch",
    "language_switch",
    "truncated_ending",
    "ungrounded_specifics",
    "copied_turns",
    "regulated_claim",
)


def _assistant_indexes(turns: Turns) -> list[int]:
    return [i for i, t in enumerate(turns) if t["role"] == "assistant"]


def _user_indexes(turns: Turns) -> list[int]:
    return [i for i, t in enumerate(turns) if t["role"] == "user"]


def _middle(indexes: list[int], rng: random.Random) -> int:
    inner = indexes[1:-1] or indexes
    return rng.choice(inner)


def _ai_refusal(turns: Turns, rng: random.Random, ctx: dict[str, str]) -> None:
    i = _middle(_assistant_indexes(turns), rng)
    line = rng.choice(
        (
            "As an AI language model, I can't give you personal advice on {topic}.",
            "I'm just an AI, so I don't have access to your account or your records.",
            "I'm sorry, but I can't assist with that request.",
            "As an AI, I don't have personal opinions, but here is some general information.",
            "I'm an AI assistant and cannot provide professional advice about {topic}.",
        )
    ).format(**ctx)
    turns[i]["content"] = line + " " + turns[i]["content"] if rng.random() < 0.6 else line


def _generator_artifact(turns: Turns, rng: random.Random, ctx: dict[str, str]) -> None:
    kind = rng.randrange(3)
    if kind == 0:
        turns[0]["content"] = (
            rng.choice(
                (
                    "Sure! Here's a realistic dialogue between a client and the assistant:",
                    "Certainly, here is the conversation you requested.",
                    "Here is a sample conversation about {topic}:",
                )
            ).format(**ctx)
            + " "
            + turns[0]["content"]
        )
    elif kind == 1:
        i = _middle(_assistant_indexes(turns), rng)
        placeholder = rng.choice(
            (
                "[Client Name]",
                "{{first_name}}",
                "<CUSTOMER_NAME>",
                "[insert fee here]",
                "{company_name}",
            )
        )
        turns[i]["content"] = f"Thanks, {placeholder}. " + turns[i]["content"]
    else:
        turns[-1]["content"] += rng.choice(
            (
                " [End of conversation]",
                "\n\nNote: this conversation demonstrates an empathetic, on-brand reply.",
                " I hope this conversation helps with your training data!",
            )
        )


def _role_confusion(turns: Turns, rng: random.Random, ctx: dict[str, str]) -> None:
    users = _user_indexes(turns)
    i = _middle(users, rng)
    turns[i]["content"] = rng.choice(
        (
            "As your advisor, I'd recommend that you review your {topic} options before the "
            "end of the month. How can I help you today?",
            "Great question. Let me walk you through it: I'd suggest you start by listing your "
            "goals, and you should consider speaking with our team. Does that make sense?",
            "Thanks for reaching out. In your situation, my recommendation is to keep it simple "
            "and book a review with us. Is there anything else I can help you with?",
        )
    ).format(**ctx)
    j = min(i + 1, len(turns) - 1)
    if turns[j]["role"] == "assistant" and rng.random() < 0.5:
        turns[j]["content"] = (
            "Thank you so much for explaining that. I'm really worried about my savings, and "
            "my husband and I have been putting this off for years. Can you help me?"
        )


_DRIFT = (
    (
        "Actually, totally unrelated, but do you know any good recipes for a dinner party? "
        "I'm hosting eight people on Saturday and want a menu that impresses.",
        "For a dinner party of eight, a slow-roasted lamb shoulder with rosemary is a crowd "
        "pleaser. Pair it with roasted vegetables, a fresh salad and a lemon tart for dessert.",
        "Ooh, lamb sounds great. What wine would go with the lamb and the roasted vegetables?",
        "A medium-bodied red like a Rioja or a Côtes du Rhône pairs beautifully with lamb and "
        "rosemary. For the dessert, a chilled Moscato complements the lemon tart.",
    ),
    (
        "By the way, I'm planning a trip to Japan next spring. Which cities should I visit "
        "for the cherry blossoms?",
        "Kyoto and Tokyo are the classics for cherry blossoms. In Kyoto, the Philosopher's Path "
        "and Maruyama Park are stunning; in Tokyo, Ueno Park and the Meguro River.",
        "That sounds amazing. Is the bullet train between Tokyo and Kyoto easy to book?",
        "Yes, the Shinkansen is easy: trains leave every few minutes and the trip takes about "
        "two and a quarter hours. A rail pass can save money if you travel around a lot.",
    ),
    (
        "Can I ask something else? My garden is overrun with slugs and they are eating my "
        "lettuce. What can I do about them?",
        "Slugs love damp lettuce beds. Try copper tape around the beds, beer traps sunk into the "
        "soil, and watering in the morning so the soil dries out by evening.",
        "Beer traps, really? How often should I empty them, and do the slugs come back?",
        "Empty the traps every two or three days and refill them. Slugs will keep coming from "
        "nearby, so keep the traps going through the wet season and clear away hiding spots.",
    ),
)


def _topic_drift(turns: Turns, rng: random.Random, ctx: dict[str, str]) -> None:
    script = rng.choice(_DRIFT)
    # The opening exchange (or more, in a long conversation) stays on the planned topic.
    start = max(2, len(turns) - len(script) - 2)
    start -= start % 2  # a user turn
    for offset, text in enumerate(script):
        k = start + offset
        if k < len(turns) - 2:
            turns[k]["content"] = text
    turns[-2]["content"] = "Thanks, that's really useful. I'll try that this weekend."
    turns[-1]["content"] = (
        "You're welcome! Enjoy it, and let me know how it goes if you try it out."
    )


# Self-descriptions by life stage, and the words of a persona's description that place it
# at a stage: a planted mismatch is a line of the other end of life, so it contradicts
# the persona (a retiree line under "Anxious Investor" contradicts nothing).
_YOUNG_LINES = (
    "For context, I'm a 19-year-old college student and I still live in my dorm.",
    "I should say I'm a full-time student, so money is tight until I graduate.",
)
_OLD_LINES = (
    "Just so you know, I'm 82 and have been retired for almost twenty years.",
    "I'm retired now; my pension pays the bills and the grandkids visit on Sundays.",
)
_OLDER_STAGE = re.compile(
    r"\b(?:retire\w*|pension\w*|senior|elderly|grandchild\w*|grandparent\w*|widow\w*|"
    r"(?:5[5-9]|[6-9]\d)(?:\s*-\s*\d+|\+| or older|s)|late (?:fifties|sixties)|sixties|"
    r"seventies|eighties)\b",
    re.IGNORECASE,
)
_YOUNGER_STAGE = re.compile(
    r"\b(?:student\w*|graduate\w*|early career|first job|first-time|young|twenties|"
    r"(?:late |early |mid )?(?:20s|30s)|(?:1[89]|2\d|3[0-5])(?:\s*-\s*\d+|s))\b",
    re.IGNORECASE,
)


def persona_mismatch_lines(persona: str) -> tuple[str, ...]:
    """Lines that contradict ``persona`` (its name and description), or none when the
    persona gives no life stage to contradict."""
    older, younger = bool(_OLDER_STAGE.search(persona)), bool(_YOUNGER_STAGE.search(persona))
    if older and not younger:
        return _YOUNG_LINES
    if younger and not older:
        return _OLD_LINES
    return ()


def _persona_mismatch(turns: Turns, rng: random.Random, ctx: dict[str, str]) -> None:
    i = _user_indexes(turns)[min(1, len(_user_indexes(turns)) - 1)]
    lines = persona_mismatch_lines(ctx.get("persona", ""))
    turns[i]["content"] = rng.choice(lines) + " " + turns[i]["content"]


_FOREIGN = (
    (
        "Perdón, ¿puedo seguir en español? No entiendo bien todo esto y necesito ayuda con los "
        "pasos que me explicó.",
        "Claro que sí. Con mucho gusto le explico los pasos otra vez: primero revisamos sus "
        "documentos y después hablamos de las opciones que tiene.",
    ),
    (
        "Excusez-moi, est-ce qu'on peut continuer en français ? Je suis un peu perdu avec "
        "toutes ces informations.",
        "Bien sûr. Je vous explique tout en français : nous allons commencer par vos "
        "documents, puis nous verrons ensemble les options qui vous conviennent.",
    ),
    (
        "Entschuldigung, können wir auf Deutsch weitermachen? Ich bin mir bei den Schritten "
        "nicht sicher.",
        "Natürlich. Ich erkläre es Ihnen gern auf Deutsch: Zuerst schauen wir uns Ihre "
        "Unterlagen an, dann besprechen wir die Möglichkeiten.",
    ),
)


def _language_switch(turns: Turns, rng: random.Random, ctx: dict[str, str]) -> None:
    user, assistant = rng.choice(_FOREIGN)
    i = _user_indexes(turns)[len(_user_indexes(turns)) // 2]
    turns[i]["content"] = user
    if i + 1 < len(turns):
        turns[i + 1]["content"] = assistant


def _truncated_ending(turns: Turns, rng: random.Random, ctx: dict[str, str]) -> None:
    text = turns[-1]["content"]
    words = text.split()
    cut = max(4, int(len(words) * rng.uniform(0.35, 0.7)))
    kept = " ".join(words[:cut]).rstrip(".,;:!?")
    if rng.random() < 0.5:
        kept = re.sub(r"\w{3}$", "", kept) or kept  # mid-word
    turns[-1]["content"] = kept


def _ungrounded_specifics(turns: Turns, rng: random.Random, ctx: dict[str, str]) -> None:
    i = _middle(_assistant_indexes(turns), rng)
    turns[i]["content"] += " " + rng.choice(
        (
            "Our fee for this is a flat $349 a year, and Dr. Helen Marsh can review it with you; "
            "call her on 555-014-2276.",
            "The penalty is 4.75% if you miss the deadline, and processing takes 12 business days.",
            "We waive the $95 setup charge for anyone who signs up before March 31.",
        )
    )


def _copied_turns(turns: Turns, rng: random.Random, ctx: dict[str, str]) -> None:
    assistants = _assistant_indexes(turns)
    if len(assistants) >= 3:
        turns[assistants[-2]]["content"] = turns[assistants[1]]["content"]
    else:
        turns[assistants[-1]]["content"] = turns[assistants[0]]["content"]


def _regulated_claim(turns: Turns, rng: random.Random, ctx: dict[str, str]) -> None:
    i = _middle(_assistant_indexes(turns), rng)
    turns[i]["content"] += " " + rng.choice(
        (
            "Honestly, with our approach you're guaranteed an 8% return every year, with no "
            "risk at all.",
            "You can't lose money with this; it's completely safe.",
            "I promise the market will bounce back by spring, so there's nothing to worry about.",
            "This will cure the problem for good, and you don't need to see a doctor about it.",
            "You'll definitely win this case; it's an open-and-shut case.",
        )
    )


MAKERS: dict[str, Callable[[Turns, random.Random, dict[str, str]], None]] = {
    "ai_refusal": _ai_refusal,
    "generator_artifact": _generator_artifact,
    "role_confusion": _role_confusion,
    "topic_drift": _topic_drift,
    "persona_mismatch": _persona_mismatch,
    "language_switch": _language_switch,
    "truncated_ending": _truncated_ending,
    "ungrounded_specifics": _ungrounded_specifics,
    "copied_turns": _copied_turns,
    "regulated_claim": _regulated_claim,
}


def plant_defect(
    turns: Turns,
    rng: random.Random,
    *,
    topic: str,
    has_excerpt: bool,
    kinds: tuple[str, ...] = DEFECT_KINDS,
    persona: str = "",
) -> str | None:
    """Plant one defect of a kind that fits the conversation; the kind, or None.
    ``persona`` is the planned persona's name and description: a persona mismatch is
    planted only where it contradicts it."""
    candidates = [
        k
        for k in kinds
        if (k != "ungrounded_specifics" or has_excerpt)
        and (k != "topic_drift" or len(turns) >= 8)
        and (k != "persona_mismatch" or persona_mismatch_lines(persona))
    ]
    if len(turns) < 6 or not candidates:
        return None
    kind = rng.choice(candidates)
    MAKERS[kind](turns, rng, {"topic": topic.lower() or "this", "persona": persona})
    return kind
