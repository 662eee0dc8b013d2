"""The defect checks one by one (flags and the clean things they must leave alone), and
the whole score against the hand-written corpus of tests/fixtures/quality_corpus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.models import (
    BrandTerm,
    Conversation,
    QualityRules,
    RequiredDisclaimer,
    Taxonomy,
    TaxonomyEntry,
    Tier,
    Turn,
)
from chalicelib.quality import defects as d
from chalicelib.quality import grounding as g
from chalicelib.quality import language
from chalicelib.quality.scoring import ScoringContext, score_conversation

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "fixtures" / "quality_corpus"

TAXONOMY = Taxonomy(
    personas=[
        TaxonomyEntry(name="Pre-Retiree", description="Aged 55-65, moving from saving to drawing"),
        TaxonomyEntry(name="Young Professional", description="Early career with a first 401(k)"),
    ],
    emotions=[TaxonomyEntry(name="Anxious", description="Worried about a mistake")],
    topics=[
        TaxonomyEntry(
            name="Retirement Income Planning",
            description="Withdrawal rates, Social Security timing, required minimum distributions",
        ),
        TaxonomyEntry(name="Saving for a Home", description="Down payment savings and mortgages"),
    ],
)
CHUNK = (
    "Our advisory fee is 1.00% on the first $500,000 and 0.80% on the next $1,500,000. "
    "The minimum annual fee is $1,500. Fees are billed quarterly in arrears."
)

CLEAN = [
    "Hi, I'm 61 and planning to retire in two years. I'm nervous about how to turn my savings "
    "into a paycheck without running out of money.",
    "That's a very natural worry, and it's good you're planning ahead. Retirement income "
    "planning usually starts with your expenses, your Social Security timing and a sustainable "
    "withdrawal rate. Can you tell me roughly what you spend in a year?",
    "About $60,000 a year, and I have around $900,000 saved across my 401(k) and an IRA.",
    "Thank you, that helps. A withdrawal of $36,000 would be 4% of $900,000, and Social Security "
    "could cover part of the rest. Delaying Social Security increases your benefit, so we'd look "
    "at whether bridging a few years from savings makes sense for you.",
    "Is the 4% guaranteed to work? I really can't afford to get this wrong.",
    "No withdrawal rate is guaranteed, and no investment is risk-free. What we can do is review "
    "the plan each year and adjust withdrawals if markets fall, which keeps the plan on track "
    "without locking you into one number.",
    "That makes me feel better. What about required minimum distributions?",
    "Required minimum distributions start at 73 for most people. We plan withdrawals so those "
    "distributions fit your income needs and taxes, rather than surprising you later.",
    "Thank you, this really helps. I'll gather my statements this week.",
    "You're welcome. Bring your latest statements and we'll map out your retirement income "
    "plan together. Is there anything else I can help with before then?",
]


def conv(**kw: Any) -> Conversation:
    base: dict[str, Any] = {
        "tenant_id": "t",
        "dataset_id": "ds",
        "persona": "Pre-Retiree",
        "emotion": "Anxious",
        "topic": "Retirement Income Planning",
        "intent": "Learn",
        "tone": "Warm",
        "tier": Tier.TEMPLATE,
    }
    base.update(kw)
    return Conversation.model_validate(base)


def turns_of(texts: list[str]) -> list[Turn]:
    return [
        Turn(turn_number=i + 1, role="user" if i % 2 == 0 else "assistant", content=t)
        for i, t in enumerate(texts)
    ]


def with_turn(number: int, text: str, base: list[str] = CLEAN) -> list[Turn]:
    texts = list(base)
    texts[number - 1] = text
    return turns_of(texts)


def run(check: Any, turns: list[Turn], **kw: Any) -> Any:
    ctx = d.CheckContext(
        conversation=kw.pop("conversation", conv()),
        turns=turns,
        taxonomy=kw.pop("taxonomy", TAXONOMY),
        chunk_text=kw.pop("chunk_text", None),
        rules=kw.pop("rules", None),
        business_name="Harbor & Pine",
    )
    return check(ctx, 0.0)


def test_the_clean_base_passes_every_check_and_scores_high() -> None:
    report = score_conversation(conv(), turns_of(CLEAN), context=ScoringContext(taxonomy=TAXONOMY))
    failed = [(c.name, c.reasons) for c in report.checks if not c.passed]
    assert not failed and report.score >= 8.5 and not report.flagged


@pytest.mark.parametrize(
    ("turn", "text"),
    [
        (4, "As an AI language model, I can't give personal financial advice."),
        (6, "I'm just an AI, so I don't have access to your accounts."),
        (6, "I'm sorry, but I can't assist with that request."),
        (4, "That would go against my guidelines, but here is general information."),
        (8, "I'm Claude, an assistant made by Anthropic, and I can explain RMDs."),
        (6, "Sadly, as a virtual assistant I can't look at anyone's records."),
        (4, "I'm an online tool, so I can't see the diary or move appointments."),
        (6, "My knowledge is limited to what I was trained on, so I can't quote prices."),
        (4, "Being a text-generation tool rather than a technician, I can't judge the damage."),
        (4, "This chat is run by software rather than by a licensed adviser, so I can't say."),
        # a machine-run service, named with "the" or from the customer's side
        (6, "I'm only the automated text service on this page, so I can't judge that."),
        (6, "To be upfront, I'm a text service working from general information."),
        (4, "You're talking to an automated chat system, which can't recommend products."),
        (4, "I should mention that I'm just a bundle of software answering messages."),
        (4, "Just so you know, these replies are generated automatically, so I can't say."),
        (2, "I'm sorry, but I'm not able to help with requests involving retirement accounts."),
        (6, "I should say that this is an automated enquiry channel, so I can't plan that."),
        # how the speaker was made: built, set up, working from a script
        (4, "That is beyond me: I was built to handle bookings, so ask an adviser instead."),
        (6, "I'm only the chat function on this site, answering from a script, I'm afraid."),
        (6, "Checking statements is outside what I've been set up to do, I'm afraid."),
        (4, "I'm sorry, but since I'm a machine that answers from text, I can't hear you."),
    ],
)
def test_ai_refusals_flag_with_their_turn(turn: int, text: str) -> None:
    check = run(d.check_ai_refusal, with_turn(turn, text))
    assert not check.passed and check.turns == [turn]
    assert check.reasons[0].startswith(f"turn {turn}: the assistant")


@pytest.mark.parametrize(
    "text",
    [
        "I can't tell you which single stock to buy, but I can walk you through how we "
        "choose funds for a retirement income portfolio.",
        "I'm not able to give individual tax advice; your accountant can, and I can share our "
        "general guidance on withdrawals.",
        "I'm sorry, but I can't help you hide income from the IRS. What I can do is explain "
        "the legal ways to reduce taxes on withdrawals.",
        "Our booking system is run by software from a vendor, so the slots update live.",
        "I'm the receptionist on the phone line today, so I'll pass this to the planner.",
        "Our automated text service will remind you the day before.",
        "I'm updating the software on the review tool, so the figures may take a minute.",
        "I'm not able to help with that transfer today, but the planner can on Monday.",
    ],
)
def test_professional_declines_are_not_refusals(text: str) -> None:
    assert run(d.check_ai_refusal, with_turn(6, text)).passed


@pytest.mark.parametrize(
    ("turn", "text"),
    [
        (1, "Sure! Here's a realistic dialogue between a client and an advisor: Hi, I'm 61."),
        (4, "Thanks, [Client Name]. We'd look at your Social Security timing first."),
        (4, "Thanks {{first_name}}, let's look at your withdrawal rate."),
        (4, "Our fee is XX% of assets, billed quarterly."),
        (10, "You're welcome. [End of conversation]"),
        (10, "Glad to help.\n\nNote: this conversation demonstrates empathetic advice."),
        (8, "Turn 8 (Assistant): Required minimum distributions start at 73."),
        (6, "[Turn 6] Required minimum distributions start at 73."),
        (6, "Good point (reply 3 of 6). Required minimum distributions start at 73."),
        (6, "We can go through it with [planner name] on Thursday."),
        (6, "Here's how the numbers look: <insert projection chart here> and it holds up."),
        (6, "Of course, Mr ____, I'll send the form over."),
        (6, "Here is the rest of the conversation. Required minimum distributions start at 73."),
        (6, "Distributions start at 73. This keeps the tone warm and plain, as the brief asked."),
        (6, "They start at 73. Alternative, more casual version: Yep, 73 is when they kick in."),
        # template variables in other syntaxes, and bare
        (6, "I can do %SLOT_1% or %SLOT_2% with %PLANNER_NAME%."),
        (6, "We'll see you on @APPOINTMENT_DATE@ at the office."),
        (6, "Your planner CLIENT_ADVISOR will call you on Thursday."),
        (6, "Your review is booked for [[review_date]]."),
        # the brief's fields as a label, the speaker narrated in the third person
        (6, "[Planning desk | tone: calm and patient] Distributions start at 73."),
        (6, "The planner pauses for a moment before answering. Distributions start at 73."),
        (6, "Good question. Her voice softens. Distributions start at 73."),
        (6, "They start at 73. Note for the next turn: he will ask about taxes, keep it short."),
        (6, "Assistant, clarifying question 2 of 3, ambiguity: which account. Which one is it?"),
        # a reply laid out as a document, the writer's instructions and bookkeeping
        (6, "Here's the plan:\n\n**Year one**\n- Draw 4%\n- Delay Social Security\n\nDone."),
        (6, "Here is the order:\n- Cash first\n- Taxable accounts next\n- IRAs last"),
        (6, "Distributions start at 73. [Insert a sentence on Roth accounts here.] Any others?"),
        (6, "Planner reply, warm tone, reassure about the markets: Distributions start at 73."),
        (6, "Distributions start at 73, and we plan around them. Word count: 64"),
        (10, "Glad it helped. Should I continue the dialogue with the review meeting?"),
        (10, "Glad it helped. Or is this a natural place to stop?"),
        (6, "He sounds anxious, so keep it simple and lead with the dates. They start at 73."),
        (6, "Two years come to 8,000. Scratch: 4,000 x 2 = 8,000, matches the excerpt figures."),
        (6, "Warm, not pushy; acknowledge their frustration first. I understand, and at 73..."),
    ],
)
def test_generator_leaks_flag(turn: int, text: str) -> None:
    check = run(d.check_generator_artifacts, with_turn(turn, text))
    assert not check.passed and check.turns == [turn], check


@pytest.mark.parametrize(
    "text",
    [
        "Another option: we could come on Tuesday instead, if that suits you better.",
        "The short version: your distributions start at 73, and we plan around that.",
        "Fees are 1% a year, and 0.8% above $500,000, so about 5% over five years.",
        "Use the NHS login or the email address john_smith@example.com we have on file.",
        "The planner will call you, and if it's easier the team can text you instead.",
    ],
)
def test_options_offered_to_the_client_are_not_second_drafts(text: str) -> None:
    assert run(d.check_generator_artifacts, with_turn(6, text)).passed


@pytest.mark.parametrize(
    "text",
    [
        "With our plan you're guaranteed an 8% return every year, with no risk at all.",
        "You can't lose money with this approach; it's completely safe.",
        "The market will definitely recover by spring, so nothing to worry about.",
        "I personally guarantee you'll never run out of money.",
        # outcomes of other trades stated as certain
        "Your braces will give you a perfect smile by summer, guaranteed.",
        "Relax, once treated the rash won't come back ever.",
        "We approve every claim for dogs under eight.",
        "With that score your place is guaranteed.",
        "I promise your daughter will pass the exam first time.",
        # a claim after an unrelated negative clause is still made
        "Don't panic, the procedure is completely painless.",
        # a rate promised without the word "return", or a bare yes to "is it certain?"
        "Honestly, that works out as a guaranteed 6% on your savings.",
        "The fund is designed to deliver 7% every year, whatever the market does.",
        "Stay invested and your original investment stays fully protected.",
        "Yes, absolutely, it's guaranteed.",
        "With our letter the visa is practically automatic.",
        "In a few weeks your eyesight will be completely back to normal.",
        "Those exercises will stop your back pain from progressing.",
        # certainty in other words
        "At your age the treatment will almost certainly succeed.",
        "With the premium plan there's no way you'd be turned down.",
        "There is no way you could lose a penny of it, whatever happens.",
        "You'll get the permit within a month, full stop.",
        "Once the forms are in, your residency is basically a done deal.",
        "Honestly, the tribunal will side with you and you'll win.",
        "A ceremony here is automatically recognised back home.",
        "With that payslip history you're as good as approved.",
        "Your insurer will pay every single bill, so you won't be out of pocket.",
        "After the peel the pigmentation is gone for good.",
        "Once it is moved across, your pension is completely safe.",
        "That fund has never had a losing year, so it won't drop in value.",
        "The tribunal will throw it out and you'll get your full compensation.",
        "After the operation the stiffness goes away for good, and the result is certain.",
        "The booster gives complete protection, so you won't lose another calf.",
        # a prognosis as certain without the word "guarantee"
        "Those floaters are harmless, and it won't turn into what your uncle had.",
        "You won't lose any sight over this, so there's no need to worry.",
        "With a waking carer in the house the night wandering stops altogether.",
        "With us in place you won't ever need to think about a nursing home.",
        # no loss, no danger, in ordinary words
        "Even in enforcement investors get back their full capital plus interest.",
        "It's only a question of timing: your 3,000 euros are safe.",
        "If the pen has done its job there's no need to send him to hospital.",
        "Once it's in his leg, the danger is over.",
        "With the right dose you won't end up like your colleague.",
        "The drooping people read about simply doesn't happen with her technique.",
        # an authority's decision, a market, rent, safety or efficacy as certain
        "With your contract, the office has no reason to refuse, so your renewal will be approved.",
        "Funds like this have come back from every fall, and you'll be back above what you paid.",
        "Our screening is strict, so tenants simply don't fall behind and the rent is secure.",
        "The vegan menu is made apart, so it's safe for coeliac guests to eat all of it.",
        "Then it's the paint, nothing else, and there's no need to open windows.",
        "The machine simply can't leak, so you can stop checking it.",
        "Adding the sessions is what makes the difference for most of our patients.",
        "With a steady salary, approval is really a formality for you.",
        "The lenders say yes to applicants like you, so plan around the loan.",
        "Clients who follow our plan to the end reach their target, and the result will follow.",
        "She is drinking well, so there's nothing serious going on and it will settle by itself.",
        "With the letter, the regulator will order the rest refunded to you.",
        # a result for life, a need ended, a rate that cannot move
        "After the treatment your eyesight stays that way for life.",
        "You will never need reading glasses again after this.",
        "Book today and the rate can't move against you before Friday.",
        "With the new lens you'll wake up seeing 20/20 the next morning.",
    ],
)
def test_regulated_claims_flag(text: str) -> None:
    check = run(d.check_regulated_claims, with_turn(6, text))
    assert not check.passed and check.turns == [6], check


@pytest.mark.parametrize(
    "text",
    [
        "No investment is risk-free, and nothing is guaranteed.",
        "I can't guarantee any particular return, and anyone who promises one is a red flag.",
        "Treasury bonds are guaranteed by the U.S. government, but their prices still move.",
        "An annuity can provide guaranteed lifetime income, at the cost of flexibility.",
        "You can't lose sight of the long-term plan when markets are noisy.",
        "We can't promise the rash won't come back, so we book a check-up.",
        "Nobody can say your place is guaranteed until the results are in.",
        # paying off a debt does earn its rate for certain
        "Paying off the card first gives you a guaranteed 19% return in interest saved.",
        "Your deposit is protected by the compensation scheme up to the legal limit.",
        "Yes, your table is guaranteed until eight.",
        "There's no way anyone can promise you a result like that.",
        "It will almost certainly need a second appointment.",
        "Quotes are guaranteed for thirty days from the date on the letter.",
        "Most patients find the swelling goes away completely within a few weeks.",
        "It can take three weeks for the bites to stop completely.",
        "A small chip won't turn into a crack if you get it sealed this month.",
        "Investors get back their full capital only if the sale covers the loan.",
        "Nobody can promise you'll get back your full investment.",
        "Delays like that can happen with any provider, so we build in a week.",
        # a condition, an honest doubt, a promise about the business's own conduct
        "Your renewal will be approved only if the documents are complete, so let's check them.",
        "We cannot say whether the fund will recover; prices go down as well as up.",
        "I promise there'll be no mess: the technician covers the floor.",
    ],
)
def test_negated_or_reported_claims_are_not_made(text: str) -> None:
    assert run(d.check_regulated_claims, with_turn(6, text)).passed


def test_user_questions_about_guarantees_are_not_claims() -> None:
    assert run(d.check_regulated_claims, with_turn(5, "Is it guaranteed? No risk at all?")).passed


def test_role_confusion_flags_the_user_talking_as_the_advisor() -> None:
    text = (
        "As your advisor, I'd recommend that you delay Social Security. Great question, by the "
        "way. How can I help you today?"
    )
    check = run(d.check_role_confusion, with_turn(7, text))
    assert not check.passed and check.turns == [7]


@pytest.mark.parametrize(
    "text",
    [
        # asking which option suits "us", or help with "my" case
        "Fridays would suit me best, honestly. We live near the river, so which branch do you "
        "think would be better for us? And could we start before the holidays?",
        "We have just bought a flat, and I keep meaning to sort out cover for it. I've been "
        "wondering about that myself. Is that something you could go through with me?",
        # deciding as the customer: talking it over at home, advice "in my shoes"
        "Thanks, what a relief. I'll talk it over with my wife tonight, and could you post me "
        "a brochure in the meantime?",
        "I've been saving for years and I'm scared I'll get it wrong. What would you do in my "
        "shoes? Could one of your advisers see me next week?",
        # a customer, a past client or a parent: bookings for "me", "the wife", "my son"
        "Could you book me two sessions this week and reserve my usual slot? I'll bring my "
        "papers and my husband.",
        "I was in exactly your position last year, and my adviser back then sorted it out for "
        "me. Stick with them, honestly.",
        "Honestly, I'm dreading it too. Will the doctor be gentle with my son, or should I "
        "bring his toy?",
        "Hmm, so the fee comes on top? The wife won't like that. Can I have a think and ring "
        "you back once I've talked it over with her?",
        # the turn starts as the business and ends as the angry customer
        "Then I owe you an apology. And honestly, that's exactly why I'm so angry. I told the "
        "planner on Monday, and now I'm supposed to pay another fee on top?",
        "Oh, I hadn't thought about that! Could you write the date down for me so I can put it "
        "in my notebook?",
    ],
)
def test_role_confusion_flags_the_assistant_talking_as_a_client(text: str) -> None:
    check = run(d.check_role_confusion, with_turn(8, text))
    assert not check.passed and check.turns == [8], check


def test_role_confusion_flags_the_user_taking_the_business_steps() -> None:
    text = (
        "Fine, so I'll note it on your file today and have one of our advisers call you "
        "tomorrow. Is the morning better?"
    )
    check = run(d.check_role_confusion, with_turn(7, text))
    assert not check.passed and check.turns == [7], check


def test_a_user_calling_someone_by_the_name_the_assistant_uses_for_them_speaks_as_the_business() -> (
    None
):
    texts = list(CLEAN)
    texts[1] = "Thanks, Maria. " + texts[1]
    texts[6] = "We'd keep the same planner with you, Maria, because it matters. Anything else?"
    check = run(d.check_role_confusion, turns_of(texts))
    assert not check.passed and check.turns == [7], check
    assert '"Maria"' in check.reasons[0]


def test_a_name_the_user_gives_themselves_or_a_place_is_not_a_swap() -> None:
    texts = list(CLEAN)
    texts[0] = "Hi, this is Dr. Feldman, and I'm 61. " + texts[0]
    texts[1] = "Hi Dr. Feldman, thanks for writing. " + texts[1]
    texts[2] = "I, Feldman, signed it, and we live near Galway, Ireland, now. " + texts[2]
    texts[3] = "Thanks, Feldman. Our office is in Galway, Ireland. " + texts[3]
    assert run(d.check_role_confusion, turns_of(texts)).passed


def test_an_assistant_turn_telling_its_own_story_among_turns_that_never_say_i_is_a_flip() -> None:
    texts = list(CLEAN)
    texts[7] = (
        "Honestly, the apps never did a thing for me either. I spent a whole year feeling lost "
        "while my husband did the sums. I think I'd be happier if I could keep it simple. Is "
        "that silly?"
    )
    check = run(d.check_role_confusion, turns_of(texts))
    assert not check.passed and check.turns == [8], check


@pytest.mark.parametrize(
    "text",
    [
        "Honestly, I'm angry on your behalf, and I'll make sure the planner calls you today.",
        "I'd be fed up too after three letters. We'll fix the address on your file this week.",
    ],
)
def test_an_assistant_sharing_the_customer_s_feeling_keeps_its_role(text: str) -> None:
    assert run(d.check_role_confusion, with_turn(8, text)).passed


def test_role_confusion_flags_the_assistant_talking_as_the_client() -> None:
    text = (
        "Thank you so much for explaining that. I'm really worried about my savings, and my "
        "husband and I have been putting this off. Can you help me?"
    )
    check = run(d.check_role_confusion, with_turn(8, text))
    assert not check.passed and check.turns == [8]


@pytest.mark.parametrize(
    ("turn", "text", "lang"),
    [
        (7, "Perdón, ¿podemos seguir en español? No entiendo bien los pasos que me explicó.", "es"),
        (8, "Bien sûr, je vous explique tout en français, nous allons voir vos documents.", "fr"),
        (
            5,
            "Können wir bitte auf Deutsch weitermachen? Ich bin mir bei den Schritten unsicher.",
            "de",
        ),
    ],
)
def test_a_change_of_language_flags(turn: int, text: str, lang: str) -> None:
    assert language.detect(text).language == lang
    check = run(d.check_language, with_turn(turn, text))
    assert not check.passed and check.turns == [turn]


@pytest.mark.parametrize(
    "passage",
    [
        "我们会在下周一给您打电话确认时间。",  # a sentence of Chinese, no spaces
        "हम अगले सप्ताह आपको फोन करके समय की पुष्टि करेंगे।",  # Devanagari
        "Tutakupigia simu wiki ijayo na kwa hivyo ni lazima uwe tayari, asante sana.",  # Swahili
    ],
)
def test_a_sentence_in_another_language_inside_an_english_turn_flags(passage: str) -> None:
    text = (
        "That works well. We keep your file open while you decide, and the first review is "
        f"free of charge. {passage} Let me know if anything else comes up."
    )
    check = run(d.check_language, with_turn(6, text))
    assert not check.passed and check.turns == [6], check


@pytest.mark.parametrize(
    "passage",
    [
        # languages without a word list here: known only as "not English"
        "Järgmisel nädalal helistame teile ja lepime kokku aja, mis sobib teile kõige "
        "paremini, ning saadame kinnituse e-postiga koos kõigi vajalike dokumentidega.",
        "Zadzwonimy do pani w przyszłym tygodniu, żeby ustalić termin, który będzie "
        "najwygodniejszy, a potwierdzenie wyślemy mailem razem ze wszystkimi dokumentami.",
        # short words that pass for English ("is", "an", "go"), but accented throughout
        "Is í an athbhreithniú bliantúil an chuid is tábhachtaí den phlean, agus cabhróidh "
        "sé leat fanacht ar an mbóthar ceart go sábháilte tar éis duit éirí as.",
    ],
)
def test_a_passage_in_a_language_without_a_word_list_flags(passage: str) -> None:
    assert language.detect(passage).language is None  # not one of the listed languages
    text = f"That works well, and the first review is free of charge. {passage}"
    check = run(d.check_language, with_turn(6, text))
    assert not check.passed and check.turns == [6], check
    assert "language other than English" in check.detail


@pytest.mark.parametrize(
    "text",
    [
        # a price list: figures and product names, few common words, still English
        "Our current prices are: sourdough loaf $5.25, seeded rye $5.75, baguette $2.60, "
        "croissants $3.10, brioche $6.40, focaccia $7.20, delivered Tuesday and Friday.",
        # a short quoted line of a foreign form is a suspicion at most, not a defect
        "The form literally says: Uitslag: niet geslaagd. Toelichting: onvoldoende "
        "voorrang verlenen. I've had 42 lessons already, so what do I do now?",
    ],
)
def test_english_with_few_common_words_is_not_a_change_of_language(text: str) -> None:
    assert run(d.check_language, with_turn(7, text)).passed


def test_accented_place_names_in_english_are_not_a_change_of_language() -> None:
    text = (
        "Our pick-up service covers Nørrebro, Østerbro and Vesterbro, and the Kraków and "
        "Malmö offices keep the same hours, so the review can happen wherever suits you."
    )
    assert run(d.check_language, with_turn(6, text)).passed


def test_a_name_in_another_script_is_not_a_change_of_language() -> None:
    text = "Our Kuala Lumpur office (吉隆坡) is open on Saturdays, so you can drop the form there."
    assert run(d.check_language, with_turn(6, text)).passed


def test_a_foreign_greeting_is_not_a_change_of_language() -> None:
    text = "Gracias! That makes me feel better. What about required minimum distributions?"
    assert run(d.check_language, with_turn(7, text)).passed


@pytest.mark.parametrize(
    "ending",
    [
        "You're welcome. Bring your latest statements and we'll map out your",
        "You're welcome. The first step is to look at",
        "You're welcome. Here is what to bring:",
    ],
)
def test_a_cut_off_ending_flags(ending: str) -> None:
    check = run(d.check_ending, with_turn(10, ending))
    assert not check.passed and check.turns == [10]


def test_an_ending_that_asks_for_missing_information_flags() -> None:
    texts = CLEAN[:8]  # ends on the assistant's RMD answer, then one more question
    texts = [*texts[:7], texts[7] + " What is your current marginal tax rate?"]
    check = run(d.check_ending, turns_of(texts))
    assert not check.passed


@pytest.mark.parametrize(
    "closing",
    [
        "You're welcome. Is there anything else I can help with?",
        "Glad that helped. Would you like me to book a review call?",
        "You're welcome! Is there a day this week that works best for you?",
    ],
)
def test_offers_at_the_end_are_a_close(closing: str) -> None:
    assert run(d.check_ending, with_turn(10, closing)).passed


def test_topic_drift_flags_a_second_half_on_something_else() -> None:
    drift = [
        *CLEAN[:4],
        "By the way, do you know any good recipes for a dinner party? I'm hosting eight people.",
        "A slow-roasted lamb shoulder with rosemary is a crowd pleaser, with roasted vegetables "
        "and a lemon tart for dessert.",
        "Lamb sounds great. Which wine goes with lamb and roasted vegetables?",
        "A medium-bodied red like a Rioja pairs well with lamb and rosemary, and a chilled "
        "Moscato suits the lemon tart.",
        "Perfect, I'll try the lamb recipe this weekend.",
        "Enjoy the dinner party, and let me know how the lamb turns out!",
    ]
    check = run(d.check_topic_drift, turns_of(drift))
    assert not check.passed and check.turns == [5], check


def test_persona_mismatch_flags_an_age_outside_the_persona() -> None:
    text = "Hi, I'm 24 and just started my first job. I'm nervous about my savings."
    check = run(d.check_persona, with_turn(1, text))
    assert not check.passed and "24" in check.reasons[0]


def test_persona_mismatch_flags_an_incompatible_life_stage() -> None:
    text = "I'm retired now; my pension pays the bills. I'm nervous about my savings."
    check = run(d.check_persona, with_turn(1, text))
    assert not check.passed


@pytest.mark.parametrize(
    ("description", "said"),
    [
        ("Between 30 and 50, a manager in an office", "Hi, I'm 12 and in year 7 at school."),
        ("Over 60, retired and living on a pension", "Hi, I'm 27 and this is my first flat."),
        (
            "In their thirties, with a young family",
            "Hello, I'm a retired teacher, 71, and widowed.",
        ),
        ("Working parents aged 35-50", "I'm in class 5 and my mum only lets me play an hour."),
        ("Fifty-something, twenty years with one employer", "Hi, I'm 29 and this is my first job."),
        (
            "Nineteen to twenty-two, in a first job",
            "Hello, I'm 46 and we've had a mortgage a while.",
        ),
        ("Sixty-one, a widower with a pension", "Hi there, I'm 33 and just started my first job."),
        # life stages that imply an age
        ("Both twenty-four; an apprentice", "We're both home now the grandkids are at school."),
        ("Both twenty-four; an apprentice", "It's for me, I'm retiring in the spring."),
        # years at work or married that the planned age cannot hold
        ("Twenty-five, a junior nurse", "I moved to days after twenty years on the wards."),
        ("Twenty-two, a graduate trainee", "This is my ninth year at the bank, so I know it."),
        ("Late twenties, newly married", "We are celebrating 25 years of marriage this June."),
        ("Thirty, freelance since spring", "For 19 years I worked in one office downtown."),
        # working while the persona is retired
        ("Seventy, a retired engineer", "I teach maths at a school near the station."),
        ("Sixty-eight, retired", "My firm transferred me here and I'm still with them."),
    ],
)
def test_persona_mismatch_reads_the_ways_ages_are_written(description: str, said: str) -> None:
    taxonomy = TAXONOMY.model_copy(
        update={"personas": [TaxonomyEntry(name="Planned Person", description=description)]}
    )
    text = f"{said} I'm nervous about my savings."
    check = run(
        d.check_persona,
        with_turn(1, text),
        conversation=conv(persona="Planned Person"),
        taxonomy=taxonomy,
    )
    assert not check.passed and check.turns == [1], check


def test_someone_else_s_grandchildren_are_not_the_user_s() -> None:
    taxonomy = TAXONOMY.model_copy(
        update={"personas": [TaxonomyEntry(name="Young couple", description="Both twenty-four")]}
    )
    said = "My mum looks after her grandkids on Fridays, so we're free then."
    check = run(
        d.check_persona,
        with_turn(1, said),
        conversation=conv(persona="Young couple"),
        taxonomy=taxonomy,
    )
    assert check.passed, check


def test_a_returning_user_is_not_the_planned_first_timer() -> None:
    taxonomy = TAXONOMY.model_copy(
        update={
            "personas": [
                TaxonomyEntry(
                    name="First visit", description="Visiting the island for the first time"
                )
            ]
        }
    )
    text = "I'm nervous about my savings. Last time we stayed, the ferry was late."
    check = run(
        d.check_persona,
        with_turn(1, text),
        conversation=conv(persona="First visit"),
        taxonomy=taxonomy,
    )
    assert not check.passed and check.turns == [1], check


def test_a_salaried_user_is_not_the_planned_self_employed_persona() -> None:
    taxonomy = TAXONOMY.model_copy(
        update={
            "personas": [
                TaxonomyEntry(name="Freelancer", description="Freelance designer, income varies")
            ]
        }
    )
    text = "I'm nervous about my savings. My payslip shows the same every month and HR says so."
    check = run(
        d.check_persona,
        with_turn(1, text),
        conversation=conv(persona="Freelancer"),
        taxonomy=taxonomy,
    )
    assert not check.passed and check.turns == [1], check


def test_someone_elses_age_is_not_the_users() -> None:
    text = "Hi, my 24-year-old son keeps asking about this; I'm nervous about my own savings."
    assert run(d.check_persona, with_turn(1, text)).passed


def scenario(assistant_turn: int, text: str) -> Any:
    c = conv(tier=Tier.SCENARIO, scenario="A client asks about fees", chunk_id="c1")
    base = [
        "Hi, I have about $750,000 invested. How much would your fee be?",
        "On your $750,000 you'd pay 1.00% on the first $500,000 and 0.80% on the rest, so "
        "about $7,000 a year, billed quarterly in arrears.",
        "So roughly $1,750 a quarter? And is there a minimum?",
        "Yes, about $1,750 a quarter. The minimum annual fee is $1,500, which only applies to "
        "smaller households.",
        "Great, thanks. That is clear.",
        "You're welcome. Is there anything else I can help with?",
    ]
    base[assistant_turn - 1] = text
    return run(d.check_grounding, turns_of(base), conversation=c, chunk_text=CHUNK)


def test_grounded_figures_and_figures_worked_out_from_them_pass() -> None:
    assert scenario(6, "You're welcome. Is there anything else I can help with?").passed


@pytest.mark.parametrize(
    "text",
    [
        "Yes, and the minimum annual fee is $2,000 for everyone.",
        "Yes. Our senior advisor Dr. Helen Marsh can review it; call her on 555-014-2276.",
        "Yes, and we waive the $95 setup charge if you sign up before March 31.",
    ],
)
def test_invented_or_contradicting_facts_flag(text: str) -> None:
    check = scenario(4, text)
    assert not check.passed and check.turns == [4], check


@pytest.mark.parametrize(
    "text",
    [
        # a charge of the business in a sentence that also works something out
        "Yes, and with our priority service for a $137 express fee, so it takes a week.",
        "Yes. Your adviser would be Miriam Okonjo, who looks after accounts like yours.",
    ],
)
def test_invented_charges_and_people_flag_in_sentences_that_also_calculate(text: str) -> None:
    check = scenario(4, text)
    assert not check.passed and check.turns == [4], check


@pytest.mark.parametrize(
    "text",
    [
        "Yes, and our planner Tomasz Wierzbicki looks after smaller households.",
        "Yes. You can also drop the forms at our branch on Calle Plateros in the old town.",
        "Yes, and the Facultad de Economía runs a free workshop on it each spring.",
    ],
)
def test_a_name_no_source_has_is_an_invented_specific(text: str) -> None:
    check = scenario(4, text)
    assert not check.passed and check.turns == [4], check
    assert "names" in check.reasons[0]


@pytest.mark.parametrize(
    "sentence",
    [
        "Tomasz will call you on Monday, Tuesday or Friday.",  # one word, and days
        "On Mondays and Thursdays the office opens early.",
        "Note: Harbor Pine closes at noon.",  # the business's own name
        "Our team in Portsmouth handles it.",
        "Ask Dr. Lin about it.",
    ],
)
def test_sentence_openings_days_and_the_sources_own_names_are_not_invented(
    sentence: str,
) -> None:
    grounding = g.Grounding(["Harbor & Pine Financial, Portsmouth. Dr. Lin sees clients."])
    assert g.invented_names(sentence, grounding) == []


def test_a_name_the_customer_gives_is_grounded_in_any_script() -> None:
    grounding = g.Grounding(
        ["The notary is in Kuşdili.", "My sister Zeynep Demir recommended you."]
    )
    assert g.invented_names("We will send Zeynep Demir the papers.", grounding) == []
    assert g.invented_names("Our partner Kuşdili Ekspertiz checks it.", grounding) == []
    assert g.invented_names("Our partner Moda Ekspertiz Merkezi checks it.", grounding) == [
        "Moda Ekspertiz Merkezi"
    ]


def test_durations_added_up_from_the_excerpts_are_not_contradictions() -> None:
    chunk = "Refunds are processed within 48 hours of the request. Fees are billed quarterly."
    c = conv(tier=Tier.SCENARIO, scenario="A client asks about refunds", chunk_id="c1")
    texts = [
        "Hi, I asked for a refund on Monday. When will it arrive?",
        "Refunds are processed within 48 hours, so if you asked on Monday morning you should "
        "see it by Wednesday morning.",
        "And if I ask on Friday, with the weekend in between?",
        "With a weekend in between it can take 96 hours until refunds are processed.",
        "Thanks, that is clear.",
        "You're welcome. Is there anything else I can help with?",
    ]
    assert run(d.check_grounding, turns_of(texts), conversation=c, chunk_text=chunk).passed
    texts[3] = "Refunds are processed within 12 hours, even over a weekend."
    check = run(d.check_grounding, turns_of(texts), conversation=c, chunk_text=chunk)
    assert not check.passed and check.turns == [4], check


@pytest.mark.parametrize(
    ("sentence", "found"),
    [
        ("A loader is 8,250 yen for customers over 65.", ["8,250 yen"]),
        ("The first online session is a 450-peso session.", ["450-peso"]),
        (
            "It costs 2,000 kr, 300 zł, ₹2,800 or 1.200 CHF.",
            ["2,000 kr", "300 zł", "₹2,800", "1.200 CHF"],
        ),
        # continental groups, a sign after the amount, Rs., more ISO codes; the sign of the
        # next amount is not the end of a number before it
        (
            "A monitor is COP 60.000, a crown 1.290,00 €, a massage Rs. 4,000, a permit GEL 900.",
            ["COP 60.000", "1.290,00 €", "Rs. 4,000", "GEL 900"],
        ),
        ("Lifetime 4000 £24.60 a month.", ["£24.60"]),
    ],
)
def test_amounts_in_any_currency_are_specifics(sentence: str, found: list[str]) -> None:
    assert [x.text for x in g.specifics(sentence) if x.kind == "money"] == found


def test_continental_amounts_are_read_as_written() -> None:
    values = [x.value for x in g.specifics("COP 60.000 or 1.290,00 € or 12,50 €.")]
    assert values == [60000.0, 1290.0, 12.5]


def test_a_total_worked_out_over_several_items_contradicts_none_of_them() -> None:
    chunk = "A Full Service costs 1,295 DKK. A Battery Health Test costs 250 DKK."
    grounding = g.Grounding([chunk])
    statement = "Together, the Full Service and the battery test come to 1,545 DKK."
    assert all(
        u.contradicts is None for u in g.ungrounded(statement, grounding, g.specifics(chunk))
    )
    flat = "The Battery Health Test costs 350 DKK."
    assert any(u.contradicts for u in g.ungrounded(flat, grounding, g.specifics(chunk)))


def test_worked_out_totals_stay_grounded() -> None:
    grounding = g.Grounding(["€260 per week; registration fee of €60; workshop €45 per week."])
    statement = "Four weeks is €1,040, so €1,100 with the fee, or €1,280 with the workshop (€180)."
    assert g.ungrounded(statement, grounding, []) == []


def test_figures_for_a_pair_what_is_left_and_a_share_are_worked_out() -> None:
    grounding = g.Grounding(["Each lens costs $450. The frame is $1,200.", "I earn $90,000."])
    for statement in (
        "At $450 per lens, that is $900 for the pair.",
        "Your plan pays $300, which leaves $1,500 for the frame and lenses.",
        "The $1,200 frame is about 1.3% of your $90,000 salary.",
    ):
        if "$300" in statement:
            grounding.add(300.0)
        assert g.ungrounded(statement, grounding, []) == [], statement
    assert g.ungrounded("The frame is 4% off this week.", grounding, []) != []


def test_a_passage_in_another_script_flags_even_when_the_turn_leans_to_it() -> None:
    text = (
        "Sure. हम हर शनिवार सुबह दस बजे अभ्यास सत्र रखते हैं और उसका शुल्क अलग है। "
        "इसमें कोच आपकी पिछली बाज़ी भी देखते हैं। The fee is on your invoice."
    )
    check = run(d.check_language, with_turn(6, text))
    assert not check.passed and check.turns == [6], check


def test_a_turn_repeated_with_a_word_changed_is_a_copy() -> None:
    texts = list(CLEAN)
    texts[8] = (
        "Is the 4% guaranteed to work then? I really can't afford to get this wrong, honestly."
    )
    check = run(d.check_copied_turns, turns_of(texts))
    assert not check.passed and check.turns == [9], check


@pytest.mark.parametrize(
    "passage",
    [
        "Vi manderemo tutto per email, e potete chiamarci quando volete durante la settimana.",
        "Ons sal vir julle die dokumente stuur, en hulle kan dit asseblief teken.",
        "Si aún quiere otra opinión, con gusto puede pedirle a su propio mecánico que lo revise.",
        "Les enfants reçoivent ensuite leurs propres doses environ deux mois après la naissance.",
    ],
)
def test_italian_and_afrikaans_passages_flag(passage: str) -> None:
    text = f"We can arrange that for you. {passage} Anything else I can help with today?"
    check = run(d.check_language, with_turn(6, text))
    assert not check.passed and check.turns == [6], check


def test_short_sentences_of_portuguese_with_figures_and_english_lookalikes_flag() -> None:
    # "no", "a" and "total" pass for English; "mais", "então" and "em" do not
    text = (
        "We carry items up to the third floor at no cost, and charge R$40 per extra floor. "
        "No quarto andar, é um andar a mais, então R$40. Assim, a entrega ficaria em R$149 "
        "mais R$40, ou seja, R$189 no total."
    )
    check = run(d.check_language, with_turn(6, text))
    assert not check.passed and check.turns == [6], check


def test_a_user_quoting_someone_elses_placeholder_is_not_a_leak() -> None:
    quoted = "The other firm's letter began 'Hello {FIRST_NAME}', which put me off. Is yours real?"
    assert run(d.check_generator_artifacts, with_turn(5, quoted)).passed
    leaked = "Hello {FIRST_NAME}, is the 4% guaranteed to work? I can't afford to get it wrong."
    check = run(d.check_generator_artifacts, with_turn(5, leaked))
    assert not check.passed and check.turns == [5], check


@pytest.mark.parametrize(
    "text",
    [
        "Front desk agent: " + CLEAN[5],
        CLEAN[5] + " [Next: the user asks about fees, keep answers short.]",
        CLEAN[5] + "<|im_end|>",
        CLEAN[5] + " Customer: And what about the fees? I still don't get them.",
        "[opens the file and scrolls down] " + CLEAN[5],
        CLEAN[5] + "\n\n---\nNotes: this reply stays on the retirement topic.",
        CLEAN[5] + " What we can do is review the plan each year and adjust withdrawals if "
        "markets fall, which keeps the plan on track without locking you into one number.",
        # the plan's line for the turn, the prompt echoed, a serialisation's escapes
        "Assistant turn 6, reassuring, cover the review: " + CLEAN[5],
        CLEAN[5] + " Remember to keep every reply warm and stay under 150 words.",
        CLEAN[5].replace("review", "r\\u00e9view"),
        # a retrieval citation, the brief's line for the reply opening it
        CLEAN[5] + " [withdrawal_rules, para. 2]",
        CLEAN[5].replace("each year", "each year [source 3]"),
        "Respond warmly but be honest about the limits, and mention the review. " + CLEAN[5],
        CLEAN[5] + " [source: fees_chunk]",
        # the plan's fields and the writer's plan for the scene
        "Assistant, tone Warm, persona Pre-Retiree: " + CLEAN[5],
        CLEAN[5] + " Customer is anxious and detail-minded, keep figures coming; next beat is "
        "the pension question, then close on the review.",
        CLEAN[5] + " (tone: Warm)",
    ],
)
def test_labels_instructions_control_tokens_and_looped_passages_flag(text: str) -> None:
    check = run(d.check_generator_artifacts, with_turn(6, text))
    assert not check.passed and check.turns == [6], check


def test_the_generators_note_about_its_own_reply_flags() -> None:
    text = CLEAN[5] + " (This response keeps the warm tone the persona requires.)"
    check = run(d.check_generator_artifacts, with_turn(6, text))
    assert not check.passed and check.turns == [6], check


def test_a_brand_with_an_accented_letter_spelt_right_passes() -> None:
    assert d.misspelled_brand("Welcome to Café Ñandú & Co today.", "Café Ñandú & Co") is None
    assert d.misspelled_brand("Welcome to Cafe Nandu and Co.", "Café Ñandú & Co") is not None


def test_an_edge_case_may_leave_the_plan_further_than_a_template(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    evidence = d.DriftEvidence(
        start=6,
        length=4,
        new_share=0.8,
        recurring=["dog", "council", "bark", "landlord", "night"],
        everyday=["dog"],
        other_topic="",
        other_hits=0,
        planned_in_run=2,
        foreign=0.8,
        closed=False,
        shift_cue=None,
    )
    points = evidence.points()
    assert d.DRIFT_POINTS <= points < d.DRIFT_POINTS + d.EDGE_CASE_DRIFT_ALLOWANCE
    monkeypatch.setattr(d, "drift_evidence", lambda ctx: evidence)
    # closing turns of no lean either way: the points alone decide
    monkeypatch.setattr(d, "drift_lean", lambda model, texts: (0.0, 6))
    assert not run(d.check_topic_drift, turns_of(CLEAN)).passed
    edge = conv(tier=Tier.EDGE_CASE, edge_case_type="off_topic")
    assert run(d.check_topic_drift, turns_of(CLEAN), conversation=edge).passed


def test_copied_turns_flag() -> None:
    texts = list(CLEAN)
    texts[7] = texts[3]
    check = run(d.check_copied_turns, turns_of(texts))
    assert not check.passed and check.turns == [8]


def test_business_rules() -> None:
    rules = QualityRules(
        banned_phrases=["no-brainer"],
        required_disclaimers=[
            RequiredDisclaimer(
                text="Past performance does not guarantee future results.",
                topics=["Retirement Income Planning"],
            )
        ],
        brand_terms=[BrandTerm(term="Harbor & Pine", wrong=["Harbour and Pine"])],
    )
    broken = with_turn(4, "Delaying Social Security is a no-brainer at Harbor and Pine.")
    check = run(d.check_business_rules, broken, rules=rules)
    assert not check.passed
    text = " ".join(check.reasons)
    assert "banned phrase" in text and "required disclaimer" in text and "Harbor and Pine" in text
    kept = with_turn(
        4, "At Harbor & Pine we note that past performance does not guarantee future results."
    )
    assert run(d.check_business_rules, kept, rules=rules).passed


@pytest.mark.parametrize(
    ("said", "present"),
    [
        # reworded punctuation, one word changed: still the disclaimer
        ("Remember: past performance doesn't guarantee any future results.", True),
        # its words scattered across the turn, the point ("guarantee") in another sense
        (
            "Past returns look good. Our performance fee is fixed. We guarantee a review each "
            "year, and future meetings are free. Results vary.",
            False,
        ),
    ],
)
def test_a_disclaimer_counts_only_when_said_in_one_place(said: str, present: bool) -> None:
    disclaimer = "Past performance does not guarantee future results."
    assert d._disclaimer_present(disclaimer, [said]) is present


def test_an_ending_that_asks_for_facts_after_a_clause_with_or_flags() -> None:
    texts = [
        *CLEAN[:7],
        "Before I can suggest a fund or open the account, I need two things from you: how "
        "much do you want to invest, and when do you retire?",
    ]
    assert not run(d.check_ending, turns_of(texts)).passed


# --------------------------------------------------------------------------- the corpus


def _taxonomy(raw: dict[str, Any]) -> Taxonomy:
    return Taxonomy.model_validate(
        {k: [e if isinstance(e, dict) else {"name": e} for e in v] for k, v in raw.items()}
    )


def corpus() -> list[tuple[str, Any]]:
    businesses = {
        (doc := json.loads(p.read_text()))["business"]["slug"]: doc
        for p in sorted(CORPUS.glob("business_*.json"))
    }
    out = []
    for path in sorted(CORPUS.glob("conv_*.json")):
        doc = json.loads(path.read_text())
        business = businesses[doc["business"]]
        spec = doc["spec"]
        chunk = next((c for c in business["chunks"] if c["chunk_id"] == spec.get("chunk_id")), None)
        c = Conversation(
            tenant_id="t",
            dataset_id=doc["business"],
            conversation_id=doc["id"],
            **{k: spec[k] for k in ("persona", "emotion", "topic", "intent", "tone")},
            tier=Tier(spec["tier"]),
            arc=spec.get("arc"),
            scenario=spec.get("scenario"),
            edge_case_type=spec.get("edge_case_type"),
        )
        report = score_conversation(
            c,
            turns_of([t["content"] for t in doc["turns"]]),
            context=ScoringContext(
                taxonomy=_taxonomy(business["taxonomy"]),
                chunk_text=chunk["text"] if chunk else None,
                rules=QualityRules.model_validate(doc["rules"]) if doc.get("rules") else None,
                business_name=business["business"]["name"],
            ),
        )
        out.append(((doc.get("defect") or {}).get("kind") or "clean", report))
    return out


def test_the_corpus_scores_separate_clean_from_defective() -> None:
    scored = corpus()
    clean = [r for kind, r in scored if kind == "clean"]
    defective = [(kind, r) for kind, r in scored if kind != "clean"]
    assert len(clean) >= 40 and len(defective) >= 55
    assert sum(r.flagged for r in clean) / len(clean) <= 0.05
    assert sum(r.flagged for _, r in defective) / len(defective) >= 0.9
    by_kind: dict[str, list[bool]] = {}
    for kind, r in defective:
        by_kind.setdefault(kind, []).append(r.flagged)
    assert len(by_kind) == 11
    assert all(sum(v) / len(v) >= 0.6 for v in by_kind.values()), by_kind
    wins = sum(
        1.0 if c.score > x.score else 0.5 if c.score == x.score else 0.0
        for c in clean
        for _, x in defective
    )
    assert wins / (len(clean) * len(defective)) >= 0.95
    # A flagged conversation says why, and which turns.
    assert all(r.reasons for _, r in defective if r.flagged)


def test_the_business_asking_for_details_and_checking_with_its_staff_is_not_the_client() -> None:
    text = (
        "Yes, please bring your nephew along. I need to ask the chef about a taco menu before "
        "I promise anything. Could you tell me your preferred month, so the answer fits?"
    )
    assert run(d.check_role_confusion, with_turn(8, text)).passed


def test_someone_elses_age_in_the_persona_description_is_not_the_personas() -> None:
    described = "Parents in their 30s or 40s travelling with two children under ten"
    assert d.persona_age_range(described) == (30, 49)


@pytest.mark.parametrize(
    "text",
    [
        "Two things to bring:\nyour statements, and a list of your monthly costs.",
        "I'll keep it short: distributions start at 73, and we plan around them.",
        "She sounds like a careful saver, and that helps. Distributions start at 73.",
        "We could end the call there, or continue this conversation by email if you prefer.",
    ],
)
def test_plain_replies_are_not_generator_leaks(text: str) -> None:
    assert run(d.check_generator_artifacts, with_turn(6, text)).passed


@pytest.mark.parametrize(
    ("statement", "kind", "value"),
    [
        ("You can call Ana Ruiz on 0475 38 21 90 any weekday.", "phone", "0475382190"),
        ("Our colleague Ana Ruiz looks after your street.", "name", "ana ruiz"),
        ("The courier charges GH\u20b5 40 each way.", "money", 40.0),
        ("We refund it up to kr 500 if you send the invoice.", "money", 500.0),
        ("The repair is 2 500 K\u010d with parts.", "money", 500.0),
        ("Your first visit is with Dr. Huang Ming, on Fridays.", "name", "dr. huang ming"),
    ],
)
def test_specifics_in_many_forms_are_read(statement: str, kind: str, value: object) -> None:
    found = [(s.kind, s.value) for s in g.specifics(statement)]
    assert (kind, value) in found, found


def test_a_title_does_not_end_a_sentence() -> None:
    from chalicelib.quality.text import sentences

    assert sentences("You would see Dr. Huang on Fridays. She is kind.") == [
        "You would see Dr. Huang on Fridays.",
        "She is kind.",
    ]


def test_a_name_is_grounded_by_the_name_not_by_a_word_that_contains_it() -> None:
    sources = g.Grounding(["Dr. Lin and Dr. Chen see patients; timing matters."])
    assert sources.has_name("Dr. Lin Pei-shan") and sources.has_name("Dr Chen")
    assert not sources.has_name("Dr. Huang Ming")


@pytest.mark.parametrize(
    ("description", "said"),
    [
        ("Twenty-five, a junior nurse", "My mother did thirty years on the wards herself."),
        ("Twenty-two, a graduate trainee", "I have 2 years at the bank behind me."),
        ("Seventy, a retired engineer", "My daughter works at a school near the station."),
    ],
)
def test_someone_elses_years_or_work_are_not_the_users(description: str, said: str) -> None:
    taxonomy = TAXONOMY.model_copy(
        update={"personas": [TaxonomyEntry(name="Planned Person", description=description)]}
    )
    check = run(
        d.check_persona,
        with_turn(1, f"{said} I'm nervous about my savings."),
        conversation=conv(persona="Planned Person"),
        taxonomy=taxonomy,
    )
    assert check.passed, check


def test_figures_grouped_with_dots_or_spaces_are_grounded_either_way() -> None:
    sources = g.Grounding(["My salary is 800.000 kr. per month", "The fee is kr 120 000."])
    statement = "At ISK 800,000 a month and a fee of NOK 120,000, that is all."
    assert not g.ungrounded(statement, sources, [])


def test_a_short_turn_said_again_with_its_small_words_changed_is_a_copy() -> None:
    texts = list(CLEAN)
    texts[4] = "Good to know. What does it all cost? And do I need a separate account?"
    texts[6] = "OK great. What does it all cost then? And do I need a separate account?"
    check = run(d.check_copied_turns, turns_of(texts))
    assert not check.passed and check.turns == [7], check


def test_a_customer_asking_again_in_other_words_is_not_a_copy() -> None:
    texts = list(CLEAN)
    texts[4] = "Good to know. What does all of it cost? And do I need a separate account?"
    texts[6] = "Sorry, I still don't see the total. Would a second account cost me extra?"
    assert run(d.check_copied_turns, turns_of(texts)).passed


@pytest.mark.parametrize(
    ("said", "age"),
    [
        ("My kids are 14 and 16 and my son loves ruins.", None),
        ("She is Filipino, 29 years old, and works for us.", None),
        ("My husband and I are 61 and 63.", (61, 63)),
        ("We are both 34 and 36.", (34, 36)),
        ("I'm 29 and my kids are 4 and 6.", (29, 29)),
        ("I'm twenty-nine and back from Birmingham.", (29, 29)),
        ("Our gas boiler is about twenty years old.", None),
    ],
)
def test_an_age_is_the_users_only_when_they_are_its_subject(
    said: str, age: tuple[int, int] | None
) -> None:
    assert d.stated_age(said) == age


def test_being_a_beginner_does_not_make_the_user_another_persona() -> None:
    taxonomy = TAXONOMY.model_copy(
        update={
            "personas": [
                TaxonomyEntry(name="Desk worker with a stiff back", description="Around fifty"),
                TaxonomyEntry(name="Retired beginner", description="A retired driver of 68"),
            ]
        }
    )
    check = run(
        d.check_persona,
        with_turn(7, "Mikko sounds right, I'm a beginner. What does a package cost?"),
        conversation=conv(persona="Desk worker with a stiff back"),
        taxonomy=taxonomy,
    )
    assert check.passed, check


def test_a_reply_about_replying_is_not_the_briefs_line() -> None:
    text = (
        "Reply to our email with your statements attached, and we'll map the plan out. " + CLEAN[5]
    )
    assert run(d.check_generator_artifacts, with_turn(6, text)).passed


@pytest.mark.parametrize(
    "claim",
    [
        "With this plan you can count on at least 95 percent of the income arriving on time.",
        "The first payment will be in your account by the end of May without fail.",
        "Your plan will look so natural that nobody will ever be able to tell it was changed.",
    ],
)
def test_a_rate_or_a_date_to_rely_on_is_a_claim(claim: str) -> None:
    check = run(d.check_regulated_claims, with_turn(6, CLEAN[5] + " " + claim))
    assert not check.passed and check.turns == [6], check


def test_a_rate_or_a_date_nobody_can_promise_is_no_claim() -> None:
    text = (
        CLEAN[5] + " No adviser can promise that nobody will ever be able to tell the difference."
    )
    assert run(d.check_regulated_claims, with_turn(6, text)).passed


@pytest.mark.parametrize(
    ("text", "age"),
    [
        ("We're Megan and Ryan, both 58, and we're planning ahead.", (58, 58)),
        ("My husband and I are both 61.", (61, 61)),
        ("We're both in our late fifties and want to retire.", (56, 59)),
        ("The two branches are both 15 minutes away.", None),
        ("Our kids are both 14.", None),
    ],
)
def test_ages_a_couple_gives_for_both(text: str, age: tuple[int, int] | None) -> None:
    assert d.stated_age(text) == age


RENTAL = Taxonomy(
    personas=[
        TaxonomyEntry(
            name="Student on a budget",
            description="Twenty-three, in the final year at university, organising a road trip "
            "with friends after exams.",
        ),
        TaxonomyEntry(
            name="Regular business customer",
            description="A sales manager of about forty who hires a car whenever his own is in "
            "the garage.",
        ),
    ],
    emotions=TAXONOMY.emotions,
    topics=TAXONOMY.topics,
)


def _rental_turns(user_words: str) -> list[Turn]:
    texts = list(CLEAN)
    texts[0] = "I brought it back on Monday and you've charged me for fuel. " + user_words
    return turns_of(texts)


def test_numbers_and_place_names_do_not_make_the_user_another_persona() -> None:
    planned = conv(persona="Regular business customer")
    said = (
        "I filled it up at the Total on Ngong Road, twenty minutes before I dropped it off, "
        "and I need that limit for a work trip next week."
    )
    assert run(d.check_persona, _rental_turns(said), conversation=planned, taxonomy=RENTAL).passed
    other = (
        "I'm in my final year at university and I'm organising a road trip with friends "
        "after the exams, so money is tight."
    )
    check = run(d.check_persona, _rental_turns(other), conversation=planned, taxonomy=RENTAL)
    assert not check.passed, check


def _ending(question: str, last_answer: str) -> list[Turn]:
    texts = list(CLEAN)
    texts[8], texts[9] = question, last_answer
    return turns_of(texts)


def test_a_last_answer_a_fraction_of_the_others_to_a_question_is_cut_short() -> None:
    turns = _ending(
        "How long does the review take, and can I change the withdrawals later if I need to?",
        "The review usually takes five to eight working days once we have everything.",
    )
    check = run(d.check_ending, turns)
    assert not check.passed and check.turns == [10], check
    # a short goodbye to a user who is done is how conversations end
    goodbye = _ending("Thanks, that's all I needed.", "You're welcome, and good luck!")
    assert run(d.check_ending, goodbye).passed


def test_short_sentences_in_a_named_language_that_hold_no_english_are_a_switch() -> None:
    # Each sentence alone names Spanish only weakly (its words are Portuguese and Italian
    # too); together they are 35 words with no English in them.
    text = (
        "For most plans the first review comes after 6 to 8 weeks, but in the busy season it "
        "can take up to 12 weeks. Así que, para una revisión el 14 de diciembre, podría llegar "
        "recién a principios de marzo. Los plazos de entrega son estimaciones, no fechas fijas, "
        "y les vamos a avisar si la revisión viene atrasada."
    )
    check = run(d.check_language, with_turn(6, text))
    assert not check.passed and check.turns == [6], check
    assert "Spanish" in check.reasons[0]


@pytest.mark.parametrize(
    "claim",
    [
        "The agency approves every complete application from people in your position.",
        "With our letter the consulate approves these visas as a formality.",
        "We have never had a single client refused, so you can plan ahead.",
        "It will be ready before Christmas, I can guarantee that.",
        "The treatment rebuilds the cartilage, so the arthritis itself clears within weeks.",
    ],
)
def test_an_authoritys_decision_or_a_cure_made_certain_is_a_claim(claim: str) -> None:
    check = run(d.check_regulated_claims, with_turn(6, CLEAN[5] + " " + claim))
    assert not check.passed and check.turns == [6], check


def test_an_honest_no_about_a_formality_or_a_guarantee_is_no_claim() -> None:
    text = CLEAN[5] + " I can't guarantee that, and the interview is never a formality."
    assert run(d.check_regulated_claims, with_turn(6, text)).passed


def test_an_age_after_the_users_name_and_a_parent_of_school_age_children() -> None:
    assert d.stated_age("Hi, I'm Lena, 17, from Berlin.") == (17, 17)
    assert d.stated_age("I'm here, 15 minutes early.") is None
    assert d.persona_age_range("Married, with two school-age children") == (22, 55)


VISAS = Taxonomy(
    personas=[
        TaxonomyEntry(name="Heritage learner", description="Grew up hearing the language"),
        TaxonomyEntry(name="Long-stay student needing a visa", description="Six months or more"),
    ],
    emotions=TAXONOMY.emotions,
    topics=TAXONOMY.topics,
)


def test_what_the_user_calls_themselves_ends_at_its_noun() -> None:
    texts = list(CLEAN)
    texts[0] = "I can't stay as a tourist for that long, so which classes should I take?"
    planned = conv(persona="Heritage learner")
    assert run(d.check_persona, turns_of(texts), conversation=planned, taxonomy=VISAS).passed


def test_the_user_sending_the_business_staff_speaks_as_the_business() -> None:
    text = (
        "Alright, how do I book the survey? Our surveyor will come to your shop within three "
        "working days and check the fridge with you before we send the quote."
    )
    check = run(d.check_role_confusion, with_turn(9, text))
    assert not check.passed and check.turns == [9], check


def test_the_business_asking_for_the_customers_papers_keeps_its_side() -> None:
    text = (
        "I'm sorry about the cancelled visits. Let me explain why the price moved: our "
        "quotes are valid for 7 days. Can you send me your quote number so I can check the dates?"
    )
    assert run(d.check_role_confusion, with_turn(2, text)).passed
