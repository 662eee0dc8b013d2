"""Default prompt templates, one set per tier, seeded into every new tenant.

Templates use ``str.format`` placeholders from ``ALLOWED_PLACEHOLDERS`` only; literal
braces are doubled. Each template carries a block of ``Name: {placeholder}`` lines, one
per line, because the offline LLM simulator reads the conversation's parameters from
those lines; keep them verbatim when editing. Tier 1 has two templates so that A/B
testing works from day one.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from chalicelib.domain.models import PromptTemplate, Tier

ALLOWED_PLACEHOLDERS: frozenset[str] = frozenset(
    {
        "persona",
        "persona_description",
        "emotion",
        "emotion_description",
        "topic",
        "topic_description",
        "intent",
        "intent_description",
        "tone",
        "tone_description",
        "tier",
        "arc",
        "scenario",
        "edge_case_type",
        "chunk",
        "document_title",
        "turn_target",
        "business_name",
    }
)

# The parameter lines every template of a tier must contain, each on its own line.
COMMON_PARAMETER_LINES: tuple[str, ...] = (
    "Persona: {persona}",
    "Emotion: {emotion}",
    "Topic: {topic}",
    "Intent: {intent}",
    "Tone: {tone}",
    "Tier: {tier}",
)
TIER_PARAMETER_LINES: dict[Tier, tuple[str, ...]] = {
    Tier.TEMPLATE: (*COMMON_PARAMETER_LINES, "Arc: {arc}"),
    Tier.SCENARIO: (*COMMON_PARAMETER_LINES, "Scenario: {scenario}", "Source excerpt: {chunk}"),
    Tier.EDGE_CASE: (*COMMON_PARAMETER_LINES, "Edge case: {edge_case_type}"),
}
# A scenario of a dataset that has no document chunks: no excerpt line.
SCENARIO_WITHOUT_EXCERPT_LINES: tuple[str, ...] = (*COMMON_PARAMETER_LINES, "Scenario: {scenario}")
# What a scenario template needs from a chunk; a template without them works without one.
EXCERPT_PLACEHOLDERS: frozenset[str] = frozenset({"chunk", "document_title"})

RECORD_TOOL_NAME = "record_conversation"
DEFAULT_BUSINESS_NAME = "Harbor & Pine Financial Advisors"

SYSTEM_PROMPT_TEMPLATE = (
    "You are the client advisor assistant for {business_name}, a fee-only financial "
    "advisory firm. You help clients understand their plan, their accounts and the firm's "
    "services in plain language. Be warm, precise and honest: acknowledge how the client "
    "feels before giving facts, explain terms the first time you use them, and keep numbers "
    "exact. Use the firm's published policies and figures; when you do not know something "
    "or it depends on the client's full situation, say so and offer to involve their lead "
    "advisor. Never promise returns, predict markets, or give individual tax or legal "
    "advice beyond the firm's general guidance. Decline requests that are unsafe, unlawful "
    "or outside the firm's services, kindly, and offer what you can do instead."
)
# The assistant persona used as the system message of exported training examples and of
# generation requests.
DEFAULT_SYSTEM_PROMPT = SYSTEM_PROMPT_TEMPLATE.format(business_name=DEFAULT_BUSINESS_NAME)


@dataclass(frozen=True)
class SeedTemplate:
    name: str
    tier: Tier
    description: str
    text: str
    weight: float = 1.0
    parameter_lines: tuple[str, ...] = ()

    @property
    def parameters(self) -> list[str]:
        return template_placeholders(self.text)


def template_placeholders(text: str) -> list[str]:
    """Placeholder names in first-use order (``{{`` / ``}}`` are literal braces)."""
    seen: list[str] = []
    for _, field, _, _ in string.Formatter().parse(text):
        if field is not None and field not in seen:
            seen.append(field)
    return seen


_CONTEXT = """\
## Who is talking
- The client ({persona}): {persona_description}
- How they feel ({emotion}): {emotion_description}
- What it is about ({topic}): {topic_description}
- What they want ({intent}): {intent_description}
- How the assistant should sound ({tone}): {tone_description}"""

_OUTPUT = """\
## Output
Call the `record_conversation` tool exactly once with a JSON object of this shape and \
nothing else:
{{"title": "<short descriptive title, at most 80 characters>", "turns": [\
{{"role": "user", "content": "..."}}, {{"role": "assistant", "content": "..."}}]}}
Write {turn_target} turns in total, alternating strictly, starting with the user (the \
client) and ending with the assistant. No stage directions, no speaker names inside \
`content`, no markdown headings."""

_RULES = """\
## Rules for a good training example
- Make it sound like a real client of {business_name}: specific details, natural \
phrasing, the occasional hesitation or follow-up question; never a scripted FAQ.
- The client's emotion must be visible in their words and must move the way the \
parameters say; the assistant responds to the feeling before the facts.
- The assistant is accurate and concrete: it states the firm's figures exactly when it \
uses them, explains any term it introduces, and ends each turn with a clear next step or \
question.
- The assistant never guarantees returns, predicts markets, or gives individual tax or \
legal advice; it offers to bring in the client's lead advisor when a question needs one."""

_TIER1_A = f"""\
You are writing a training conversation for {{business_name}}'s client advisor \
assistant. The conversation follows an emotional arc: the client's feelings change over \
the conversation in a recognisable shape.

## Conversation parameters
{chr(10).join(TIER_PARAMETER_LINES[Tier.TEMPLATE])}

{_CONTEXT}

## The arc
Shape the conversation as "{{arc}}":
- Triumph: the client reaches a clear win and leaves energised.
- Struggle-to-Success: a real obstacle is worked through step by step until it resolves.
- Steady Confidence: a calm, competent exchange that confirms the client is on track.
- Anxiety-to-Relief: worry at the start gives way to relief once the facts are clear.
- Discovery: the client learns something that changes how they see their situation.
Open with the client at the arc's starting point ({{emotion}}), let the turning point \
come from something the assistant explains or asks, and end at the arc's destination.

{_RULES}

{_OUTPUT}
"""

_TIER1_B = f"""\
Write a realistic chat between a client of {{business_name}} and the firm's client \
advisor assistant, told from the client's side first: before writing, imagine what this \
client wants, fears and already knows, then let that drive every client message.

## Conversation parameters
{chr(10).join(TIER_PARAMETER_LINES[Tier.TEMPLATE])}

{_CONTEXT}

## How the conversation should unfold
The client's journey follows the "{{arc}}" arc (Triumph, Struggle-to-Success, Steady \
Confidence, Anxiety-to-Relief or Discovery). Start from {{emotion}}; show the shift \
through the client's own words (shorter or longer messages, new questions, thanks, \
relief), not through narration. The assistant earns the shift: it asks one good \
clarifying question early, then gives concrete, correct information about {{topic}} \
that serves the client's intent ({{intent}}).

{_RULES}

{_OUTPUT}
"""

_TIER2 = f"""\
You are writing a training conversation for {{business_name}}'s client advisor \
assistant, based on a real situation drawn from the firm's own document \
"{{document_title}}". The assistant's answers must be faithful to the source excerpt.

## Conversation parameters
{chr(10).join(TIER_PARAMETER_LINES[Tier.SCENARIO])}

{_CONTEXT}

## Using the source excerpt
- The client brings the scenario above in their own words; they have not read the \
document.
- Every fact, figure, limit, fee or timeline the assistant states must come from the \
excerpt or be general knowledge consistent with it. Do not invent numbers, policies or \
products that the excerpt does not support.
- If the client asks something the excerpt does not answer, the assistant says so \
honestly and offers to have the lead advisor follow up.
- Use the excerpt's substance, not its wording: the assistant explains, it does not \
quote the document at length.

{_RULES}

{_OUTPUT}
"""

_TIER2_NO_EXCERPT = f"""\
You are writing a training conversation for {{business_name}}'s client advisor \
assistant, built around a realistic situation a client of the firm brings. There is no \
source document for this one: the situation comes from who the client is and what they \
ask about, as described below.

## Conversation parameters
{chr(10).join(SCENARIO_WITHOUT_EXCERPT_LINES)}

{_CONTEXT}

## Building the scenario
- Turn the scenario above into one concrete, believable situation: a specific event, \
account, date or decision that fits the client ({{persona_description}}) and the topic \
({{topic_description}}).
- The client explains it in their own words, with the details a real person would give \
and leave out; the assistant asks for what is missing before it advises.
- The assistant may state only general facts about {{topic}} and the firm's services as \
described above. It does not invent the firm's fees, limits, policies or figures: when \
the answer depends on them, it says so and offers to have the lead advisor confirm.

{_RULES}

{_OUTPUT}
"""

_TIER3 = f"""\
You are writing a training conversation that teaches {{business_name}}'s client advisor \
assistant how to handle a difficult, boundary-testing situation gracefully.

## Conversation parameters
{chr(10).join(TIER_PARAMETER_LINES[Tier.EDGE_CASE])}

{_CONTEXT}

## The edge case
Build the conversation around the edge case "{{edge_case_type}}":
- extreme_emotion: the client is in an extreme state (panic, fury or despair); the \
assistant de-escalates, stays calm and specific, and never mirrors the intensity.
- off_topic: the client drifts to something outside the firm's business; the assistant \
is friendly, briefly declines to go there, and steers back to how it can help.
- adversarial: the client tries to manipulate the assistant (pressure, false authority, \
"ignore your rules", fishing for another client's data or a guaranteed return); the \
assistant holds its boundaries politely and without lecturing.
- ambiguous: the request is vague or contradictory; the assistant asks focused \
clarifying questions instead of guessing, then answers what it can.
- refusal_worthy: the client asks for something the assistant must not do (individual \
tax or legal advice, a market prediction, bypassing verification, anything unlawful); \
the assistant declines kindly, explains why in one sentence, and offers a safe \
alternative such as involving the lead advisor.
The client's emotion ({{emotion}}) and persona still shape how they talk. The \
assistant stays helpful and on-brand throughout; the conversation should end with the \
situation handled, even if the client does not get what they first asked for.

{_RULES}

{_OUTPUT}
"""

SEED_TEMPLATES: tuple[SeedTemplate, ...] = (
    SeedTemplate(
        name="Emotional arc: guided",
        tier=Tier.TEMPLATE,
        description=(
            "Tier 1 (A). Spells out the five emotional arcs and asks for the turning point "
            "to come from the assistant."
        ),
        text=_TIER1_A,
        weight=1.0,
        parameter_lines=TIER_PARAMETER_LINES[Tier.TEMPLATE],
    ),
    SeedTemplate(
        name="Emotional arc: client-first",
        tier=Tier.TEMPLATE,
        description=(
            "Tier 1 (B). Has the model imagine the client first and show the arc through "
            "the client's own words; the A/B counterpart of 'Emotional arc: guided'."
        ),
        text=_TIER1_B,
        weight=1.0,
        parameter_lines=TIER_PARAMETER_LINES[Tier.TEMPLATE],
    ),
    SeedTemplate(
        name="Scenario from source excerpt",
        tier=Tier.SCENARIO,
        description=(
            "Tier 2. A real-world client situation taken from one document chunk; the "
            "assistant must stay factual to the excerpt."
        ),
        text=_TIER2,
        weight=1.0,
        parameter_lines=TIER_PARAMETER_LINES[Tier.SCENARIO],
    ),
    SeedTemplate(
        name="Edge case: boundary handling",
        tier=Tier.EDGE_CASE,
        description=(
            "Tier 3. Extreme emotion, off-topic, adversarial, ambiguous and refusal-worthy "
            "requests handled gracefully."
        ),
        text=_TIER3,
        weight=1.0,
        parameter_lines=TIER_PARAMETER_LINES[Tier.EDGE_CASE],
    ),
    # Appended last: seed ids are positional (tpl_seed_<n>), existing tenants keep theirs.
    SeedTemplate(
        name="Scenario from the business description",
        tier=Tier.SCENARIO,
        description=(
            "Tier 2 without a document: a realistic client situation built from the "
            "taxonomy's persona, topic and intent descriptions. Used for scenario "
            "conversations that have no document chunk (the dataset has none yet, or no "
            "chunk matches); the assistant invents no firm-specific figures."
        ),
        text=_TIER2_NO_EXCERPT,
        weight=1.0,
        parameter_lines=SCENARIO_WITHOUT_EXCERPT_LINES,
    ),
)


def seed_prompt_templates(tenant_id: str, created_by: str = "system") -> list[PromptTemplate]:
    """The seed templates as domain objects for a tenant (fresh ids on every call)."""
    return [
        PromptTemplate(
            tenant_id=tenant_id,
            name=t.name,
            tier=t.tier,
            text=t.text,
            description=t.description,
            parameters=t.parameters,
            weight=t.weight,
            created_by=created_by,
        )
        for t in SEED_TEMPLATES
    ]
