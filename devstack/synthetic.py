"""Deterministic synthetic conversations for benchmarks and tests.

A small grammar: sentence templates with ``{a|b|c}`` alternations and ``{slot}`` fillers
(amounts, ages, topic terms...). Alternatives are mostly one or two words, so any 3-word
shingle spans several random choices: two clean conversations from the same
(persona, emotion, topic) cell share few shingles, as two real generations would, while
still reading as on-topic, in-persona and in-emotion to the validators.

Also the defect makers the benchmark plants: light-edit copies (word swaps, a changed
sentence, a reordered turn pair), truncation, broken alternation and empty turns.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.domain.models import (
    Conversation,
    ConversationStatus,
    Taxonomy,
    TaxonomyEntry,
    Tier,
    Turn,
)

# --------------------------------------------------------------------------- vocabulary


@dataclass(frozen=True)
class PersonaVocab:
    name: str
    description: str
    ages: tuple[int, int]
    intros: tuple[str, ...]  # the user describing themselves


@dataclass(frozen=True)
class EmotionVocab:
    name: str
    description: str
    user_lines: tuple[str, ...]  # the user voicing the emotion
    empathy: tuple[str, ...]  # the assistant acknowledging it


@dataclass(frozen=True)
class TopicVocab:
    name: str
    description: str
    terms: tuple[str, ...]
    questions: tuple[str, ...]  # user asks
    advice: tuple[str, ...]  # assistant explains


PERSONAS: tuple[PersonaVocab, ...] = (
    PersonaVocab(
        "Anxious Investor",
        "Mid-career saver who checks the portfolio daily and worries about losing savings",
        (38, 55),
        (
            "I'm {age} and I {check|look at|refresh} my {portfolio|brokerage account|"
            "investments} {every morning|several times a day|before bed}.",
            "{Most|Nearly all|A big chunk} of my {savings|nest egg|money} is {invested|in "
            "index funds|in the market}, about {amount} {so far|right now|at the moment}.",
            "I've been {investing|putting money away|saving} for {years} years and my "
            "{portfolio|account} is {the only|my main} {cushion|safety net}.",
            "{Last|This} {spring|winter|year} my {investments|portfolio} {dropped|fell|sank} "
            "by {pct} and I {nearly|almost} sold {everything|it all}.",
        ),
    ),
    PersonaVocab(
        "First-Time Homebuyer",
        "Young professional saving a down payment for a first home",
        (26, 36),
        (
            "I'm {age} and {renting|sharing an apartment|living with roommates} while I "
            "{save|put money aside} for {my first|a} {home|house|condo}.",
            "{My partner and I|We|I} have {amount} {saved|set aside|put away} for a "
            "{down payment|deposit} {so far|at this point}.",
            "{We've|I've} {toured|looked at|visited} {n} {houses|homes|places} in the "
            "{last|past} {months} months and {lost|missed out on} {two|a couple|several}.",
            "I {earn|make|bring home} about {amount} a year and {never|haven't ever} "
            "{owned|bought} {property|a home} before.",
        ),
    ),
    PersonaVocab(
        "Small Business Owner",
        "Runs a local shop juggling cash flow, payroll and business taxes",
        (31, 60),
        (
            "I {run|own|manage} a {small|little|family} {bakery|print shop|bike shop|cafe} "
            "with {n} {employees|staff|people on payroll}.",
            "My {business|shop|store} {brings in|clears|grosses} about {amount} a "
            "{year|season} but {cash flow|revenue} is {lumpy|uneven|seasonal}.",
            "{Payroll|Rent|Inventory} {alone|by itself} {eats|takes|costs} {small} a "
            "{week|month} at my {shop|business}.",
            "I {opened|started|launched} the {shop|business} {years} years ago and I "
            "{still|mostly} do the {books|bookkeeping} {myself|on weekends}.",
        ),
    ),
    PersonaVocab(
        "Pre-Retiree",
        "In their late 50s to mid 60s, planning when to stop working and how to draw retirement income",
        (56, 64),
        (
            "I'm {age} and {hoping|planning|aiming} to {stop working|retire|leave my job} "
            "in {n} years.",
            "{My wife and I|We|I} have about {amount} {across|spread over} {two|three|a few} "
            "{accounts|retirement plans}.",
            "I've {worked|been} at the {same|current} {company|employer|hospital} for "
            "{years} years and {expect|will get} a {small|modest} {pension|annuity}.",
            "{My|Our} {house|mortgage} is {nearly|almost|close to} paid off, with {small} "
            "a month {left|remaining} for {months} months.",
        ),
    ),
    PersonaVocab(
        "Recent Graduate",
        "Just started a first job, paying off student loans and building credit",
        (22, 27),
        (
            "I'm {age}, {just|recently} {graduated|finished college} and {started|landed} "
            "my {first|first real} {job|full-time job} {months} months ago.",
            "I {owe|still owe|have} about {amount} in {student loans|loans from school} "
            "{at|with rates around} {pct}.",
            "My {first|entry-level} {salary|paycheck} is {amount} a year and {rent|my "
            "apartment} {takes|eats} {almost half|a big chunk} of it.",
            "I {only|just} {opened|got} my {first|one} credit card {months} months ago and "
            "my {score|credit score} is {thin|short|new}.",
        ),
    ),
)

EMOTIONS: tuple[EmotionVocab, ...] = (
    EmotionVocab(
        "Fear",
        "Worried and anxious about losing money or making an irreversible mistake",
        (
            "{Honestly|Truthfully|To be honest}, I'm {really|pretty|so} {worried|scared|"
            "nervous} {about this|right now|lately}.",
            "{This|It|The whole thing} {keeps me up|has me losing sleep|makes me anxious} "
            "{at night|most nights|every week}.",
            "I'm {afraid|terrified|scared} {I'll|that I'll|I might} {lose|wreck|blow} "
            "{everything|it all|what I've built}.",
            "What if {I get it wrong|it goes badly|I mess up}? I'm {really|so|pretty} "
            "{anxious|worried|nervous}.",
            "I {panic|get nervous|feel uneasy} {every time|whenever} I {think about|look "
            "at|read about} it.",
        ),
        (
            "It makes {complete|total|a lot of} sense to feel {worried|uneasy|anxious} "
            "{here|about this|with so much at stake}.",
            "{That fear|Feeling scared|That worry} is {really|very|extremely} common, and "
            "{it's|you're} {not alone|in good company}.",
            "Let's {slow down|take this step by step|break it down} so it feels "
            "{less scary|more manageable|calmer}.",
        ),
    ),
    EmotionVocab(
        "Frustration",
        "Annoyed and fed up after conflicting advice and wasted effort",
        (
            "I'm {honestly|seriously|really} {frustrated|fed up|annoyed} {with this|by "
            "now|at this point}.",
            "{Everyone|Every site|Every advisor} {tells me|says|gives me} something "
            "{different|else|contradictory} and it's {frustrating|ridiculous|maddening}.",
            "I've {wasted|spent|lost} {n} {weekends|evenings|hours} on this and I'm "
            "{sick of|tired of|fed up with} it.",
            "It's {so|really|incredibly} {annoying|frustrating|irritating} that "
            "{nobody|no one} {explains|spells out} this {clearly|plainly}.",
        ),
        (
            "{I hear you|That sounds exhausting|That's understandable}, {conflicting|mixed|"
            "contradictory} advice is {genuinely|really} frustrating.",
            "{Sorry|I'm sorry} you've {wasted|spent|lost} so much {time|effort|energy} "
            "on this, let's {cut through|simplify|untangle} it.",
            "{Fair enough|Understood|Totally fair}, let's {skip|drop|avoid} the {jargon|"
            "noise|fluff} and {focus|get straight} to {what matters|the decision}.",
        ),
    ),
    EmotionVocab(
        "Confusion",
        "Unsure and overwhelmed by jargon and too many options",
        (
            "I'm {honestly|really|totally} {confused|lost|overwhelmed} {by|about} "
            "{all this|the options|the jargon}.",
            "I {don't understand|can't follow|don't get} {how|why} {this|any of this|it} "
            "{works|fits together|matters}.",
            "I'm {not sure|unsure} {where to start|what comes first|which option fits}, "
            "{it's|everything is} {so|really} {complicated|confusing}.",
            "{Sorry|Apologies} if this is {basic|obvious}, but {what does|how does} "
            "{that|it} {actually|really} {mean|work}? I'm {lost|confused}.",
        ),
        (
            "{Good|Great|Fair} question, {this stuff|the jargon|the terminology} is "
            "{genuinely|really|honestly} confusing.",
            "{Let's|We can|I'll} {untangle|unpack|simplify} it {one piece at a time|step by "
            "step|in plain words}.",
            "{No question|Nothing} is {too basic|silly} here, {most|many} people "
            "{find|feel} this {overwhelming|confusing} at first.",
        ),
    ),
    EmotionVocab(
        "Hope",
        "Optimistic and eager to turn things around with a fresh start",
        (
            "I'm {really|genuinely|actually} {hopeful|optimistic|excited} {about this|"
            "this year|for once}.",
            "I {finally|really} {feel|think} I can {turn things around|make real progress|"
            "get ahead}, {hopefully|fingers crossed}.",
            "{This feels like|It's|I want this to be} a {fresh start|new chapter|turning "
            "point} and I'm {eager|motivated|determined} to {get it right|do it well}.",
            "I'm {looking forward|eager|excited} to {building|making|setting up} a "
            "{real|solid|proper} plan.",
        ),
        (
            "{I love|It's great|That's wonderful} {that energy|to hear that|your motivation}, "
            "{it's|that's} a {great|strong|solid} {starting point|foundation}.",
            "{You're|You are} in a {better|stronger|good} position than {you think|many "
            "people|most}, so let's {build on it|use that|make it count}.",
            "{Great|Wonderful|Excellent}, {being|feeling} {optimistic|hopeful|motivated} "
            "{helps|makes it easier} to {stick with|follow} a plan.",
        ),
    ),
)

TOPICS: tuple[TopicVocab, ...] = (
    TopicVocab(
        "Retirement Planning",
        "401k contributions, IRA rollovers, Social Security timing and retirement withdrawal rates",
        (
            "401k",
            "Roth IRA",
            "traditional IRA",
            "employer match",
            "Social Security",
            "withdrawal rate",
            "target-date fund",
            "rollover",
            "catch-up contributions",
            "required minimum distributions",
        ),
        (
            "{How much|What share} should I {put|contribute|save} into my {term} "
            "{each year|every month|per paycheck}?",
            "{Should I|Would it make sense to} {roll over|move|consolidate} my old "
            "{term} {before|after} I {retire|change jobs}?",
            "When {should I|is it smart to} {claim|start} {Social Security|benefits} if I "
            "{retire|stop working} at {age}?",
            "Is a {withdrawal rate|draw} of {pct} {safe|sustainable|reasonable} for "
            "{retirement|my retirement}?",
        ),
        (
            "{First|To start}, {capture|grab|make sure you get} the full {employer match|"
            "match} in your {401k|plan}, {since|because} it's {free money|an instant return}.",
            "{A|Your} {term} {lets|allows} {your|the} {savings|money} {grow|compound} "
            "{tax-deferred|without yearly taxes} {until|into} retirement.",
            "{Many|Most|Plenty of} {planners|advisers} {suggest|use} a {withdrawal rate|"
            "retirement draw} {near|around} {pct} {as a|for a} {starting|first} "
            "{estimate|guess}.",
            "{Delaying|Waiting on} {Social Security|your benefit} {past|beyond} {full "
            "retirement age|67} {raises|increases|boosts} {the|your} {monthly|yearly} "
            "{check|payment} {each|every} year.",
            "{Once|After} {you turn|you reach} 50, {catch-up contributions|extra "
            "contributions} {let|allow} {you|savers} to {add|put in} {more|extra} "
            "{each year|annually} to retirement accounts.",
            "A {target-date fund|balanced fund} {shifts|moves|rebalances} {toward|into} "
            "{bonds|safer holdings} {automatically|gradually} as retirement {nears|gets "
            "closer}.",
            "{Rolling|Moving} {an old|a previous} {401k|plan} {into|to} an IRA {usually|"
            "often} {widens|expands} {your|the} {fund|investment} {choices|options}.",
            "{Try|Aim} to {map|sketch|estimate} {your|the} {monthly|yearly} {spending|"
            "budget} in retirement, {because|since} {that|it} {drives|sets} {every|each} "
            "other {number|figure}.",
        ),
    ),
    TopicVocab(
        "Mortgage Basics",
        "Down payments, mortgage interest rates, pre-approval and closing costs",
        (
            "down payment",
            "pre-approval",
            "closing costs",
            "fixed-rate mortgage",
            "adjustable-rate mortgage",
            "PMI",
            "debt-to-income ratio",
            "escrow",
            "interest rate",
            "points",
        ),
        (
            "{How much|What size} {down payment|deposit} do I {really|actually} need "
            "for a {home|house|condo} around {amount}?",
            "{Should I|Is it better to} {pick|go with|choose} a {fixed-rate mortgage|fixed "
            "rate} or an {adjustable-rate mortgage|ARM}?",
            "What {are|counts as} {closing costs|fees at closing} and how {much|big} "
            "{are they|do they get} {usually|typically}?",
            "{How|When} {should|do} I {get|start} {pre-approval|pre-approved} {before|"
            "while} {house hunting|touring homes}?",
        ),
        (
            "{Lenders|Banks|Most lenders} {look at|check|weigh} your {debt-to-income "
            "ratio|DTI} {first|closely}, {ideally|usually} {below|under} {pct}.",
            "{Putting|A} {down payment|deposit} of {less than|under} 20% {usually|often} "
            "{means|adds} {PMI|mortgage insurance} {until|till} {you|your equity} "
            "{reach|hits} {that|the} {mark|level}.",
            "{Closing costs|Fees at closing} {often|typically} {run|land} {around|near} "
            "2 to 5% of the {loan|purchase price} {on top of|beyond} {the|your} "
            "{down payment|deposit}.",
            "A {fixed-rate mortgage|fixed rate} {keeps|locks} {the|your} {payment|monthly "
            "payment} {steady|the same} {for|over} {the|its} {whole|entire} {term|life}.",
            "{Getting|A} {pre-approval|pre-approved letter} {shows|tells} {sellers|agents} "
            "{you're|that you are} {serious|ready} and {sets|fixes} {your|a} {budget|"
            "price ceiling}.",
            "{Compare|Request} {loan estimates|quotes} from {n} {lenders|banks} "
            "{within|inside} {two|a couple of} weeks so {the|your} {credit|score} "
            "{takes|sees} {one|a single} {hit|inquiry}.",
            "{Buying|Paying} {points|discount points} {lowers|cuts} {the|your} {interest "
            "rate|rate} {if|when} {you|you'll} {stay|keep the loan} {long|many years}.",
            "{Escrow|An escrow account} {collects|holds} {property tax|taxes} and "
            "{insurance|homeowners insurance} {with|inside} {your|each} {monthly|regular} "
            "payment.",
        ),
    ),
    TopicVocab(
        "Debt Management",
        "Student loans, credit card balances, consolidation and payoff strategies",
        (
            "credit card balance",
            "student loans",
            "avalanche method",
            "snowball method",
            "consolidation loan",
            "balance transfer",
            "minimum payment",
            "APR",
            "income-driven repayment",
            "refinancing",
        ),
        (
            "{Should I|Is it smarter to} {pay off|attack|tackle} my {credit card balance|"
            "cards} or my {student loans|loans} {first|before anything}?",
            "{Does|Would} a {consolidation loan|balance transfer} {actually|really} "
            "{help|save money} {with|on} {debt|balances} {like mine|at} {pct}?",
            "Is {refinancing|a refinance} {of|on} my {student loans|loans} "
            "{worth it|a good idea} {right now|this year}?",
            "{How do I|What's the best way to} {stop|avoid} {paying|making} only the "
            "{minimum payment|minimums} {each|every} month?",
        ),
        (
            "The {avalanche method|avalanche approach} {targets|pays down} the {highest|"
            "biggest} APR {first|before the rest}, {which|and that} {saves|cuts} the "
            "{most|greatest} {interest|cost}.",
            "The {snowball method|snowball approach} {clears|knocks out} the {smallest|"
            "tiniest} {balance|debt} {first|early} {for|to build} {quick|early} "
            "{wins|momentum}.",
            "A {balance transfer|0% transfer card} {can|may} {pause|freeze} {interest|"
            "the APR} for {months} months, {but|though} {watch|check} the {fee|transfer fee}.",
            "{Paying|Sending} {only|just} the {minimum payment|minimum} {stretches|drags} "
            "a {credit card balance|card balance} {over|across} {years} years and "
            "{adds|piles on} {interest|cost}.",
            "{Federal|Government} {student loans|loans} {offer|include} {income-driven "
            "repayment|IDR plans} that {cap|limit} {payments|the bill} {by|based on} "
            "{income|earnings}.",
            "{Refinancing|A refinance} {private|federal} {student loans|loans} {can|may} "
            "{lower|cut} {the|your} {rate|APR} but {gives up|removes} {federal|"
            "government} {protections|options}.",
            "{List|Write down} {every|each} {debt|balance} with its APR and {minimum "
            "payment|minimum}, {then|and} {pick|choose} {one|a single} {target|focus} "
            "{debt|account}.",
            "{Automating|Setting up} {payments|autopay} {above|beyond} the {minimum|"
            "minimum payment} {keeps|makes} {progress|payoff} {steady|automatic}.",
        ),
    ),
    TopicVocab(
        "Market Volatility",
        "Stock market downturns, diversification, rebalancing and staying invested",
        (
            "diversification",
            "rebalancing",
            "index fund",
            "bond allocation",
            "dollar-cost averaging",
            "bear market",
            "correction",
            "asset allocation",
            "risk tolerance",
            "time horizon",
        ),
        (
            "{Should I|Do I need to} {sell|move to cash|get out} {before|when} the "
            "{market|stock market} {drops|falls} {more|further}?",
            "{How often|How many years} {does|will} the {stock market|market} {fall|"
            "drop} {pct} {or more|in a year}?",
            "Would {more|a bigger} {bond allocation|bond share} {make|keep} my "
            "{portfolio|investments} {safer|less volatile}?",
            "{Does|Would} {rebalancing|rebalancing my portfolio} {actually|really} "
            "{help|matter} {in|during} a {bear market|downturn|correction}?",
        ),
        (
            "{Diversification|Spreading money} {across|over} {stocks|shares} and "
            "{bonds|fixed income} {softens|cushions} {market|stock market} "
            "{drops|swings|downturns}.",
            "A {correction|market correction} of {pct} or more {happens|shows up} "
            "{roughly|about} {once|every year or two} {historically|on average}.",
            "{Rebalancing|Rebalancing your portfolio} {once|twice} a year {brings|pulls} "
            "your {asset allocation|mix} {back|back in line} to {target|plan}.",
            "{Dollar-cost averaging|Investing monthly} {buys|picks up} more {shares|units} "
            "{when|while} {prices|the market} {are|is} {low|down}.",
            "Your {time horizon|timeline} of {years} years {matters|counts} {more|far more} "
            "than {any|one} {single|bad} {month|quarter} in the {market|stock market}.",
            "{Selling|Moving to cash} {during|in} a {bear market|downturn} {locks in|"
            "turns} {paper|temporary} {losses|drops} into {real|permanent} ones.",
            "A {broad|low-cost} {index fund|total-market fund} {holds|owns} {thousands|"
            "hundreds} of {companies|stocks}, {so|which means} {one|a single} {failure|"
            "collapse} {barely|hardly} {registers|matters}.",
            "{Match|Set} {the|your} {bond allocation|bond share} to {your|the} {risk "
            "tolerance|comfort with risk} {rather than|instead of} {headlines|the news}.",
        ),
    ),
    TopicVocab(
        "Tax Planning",
        "Tax deductions, quarterly estimated taxes and tax-advantaged accounts",
        (
            "standard deduction",
            "itemized deductions",
            "estimated taxes",
            "tax bracket",
            "HSA",
            "capital gains",
            "tax credit",
            "SEP IRA",
            "withholding",
            "tax-loss harvesting",
        ),
        (
            "{Should I|Is it worth it to} {itemize|take itemized deductions} or {stick "
            "with|take} the {standard deduction|standard amount} {this year|next April}?",
            "{How|When} do {estimated taxes|quarterly taxes} {work|come due} {for|with} "
            "{income|earnings} like {amount}?",
            "{Does|Would} an {HSA|health savings account} {lower|cut} my {tax bill|taxes} "
            "{this year|going forward}?",
            "How does {tax-loss harvesting|harvesting losses} work "
            "{with|for} {capital gains|my gains}?",
        ),
        (
            "{Compare|Add up} {your|the} {itemized deductions|deductions} {against|with} "
            "the {standard deduction|standard amount} and {take|pick} the {larger|bigger} "
            "{one|figure}.",
            "{Estimated taxes|Quarterly payments} {are due|fall due} in April, June, "
            "September and January {for|on} {income|earnings} {without|lacking} "
            "{withholding|tax withheld}.",
            "An {HSA|health savings account} {is|gives} {triple|three-way} {tax-free|"
            "tax-advantaged} {growth|treatment} {when|if} {spent|used} on {medical|health} "
            "{costs|bills}.",
            "A {tax credit|credit} {cuts|reduces} {the|your} {tax bill|taxes} {dollar for "
            "dollar|directly}, {while|whereas} a {deduction|write-off} {only|just} "
            "{lowers|trims} {taxable income|income}.",
            "{Selling|Harvesting} {losing|underwater} {positions|holdings} {offsets|"
            "cancels} {capital gains|gains} and up to {small} of {ordinary|regular} "
            "{income|pay}.",
            "A {SEP IRA|solo 401k} {lets|allows} {self-employed|business} {owners|people} "
            "{defer|shelter} {a large|a big} {share|chunk} of {profit|earnings} from tax.",
            "{Adjust|Update} {your|the} {withholding|W-4} {if|when} {your|the} {refund|"
            "bill} {was|came in} {over|above} {small} {last year|last April}.",
            "{Your|The} {tax bracket|marginal rate} {applies|counts} {only|just} to the "
            "{top|last} {slice|dollars} of income, {not|never} {all of it|every dollar}.",
        ),
    ),
)

_GENERIC_ASSISTANT = (
    "{Would it help if I|Want me to|Should I} {sketch|draft|outline} {a|some} {numbers|"
    "simple plan|next steps} {for|based on} {your|the} {situation|figures}?",
    "{What|Which} {part|piece} {feels|seems} {most|the most} {urgent|pressing|important} "
    "{to you|right now}?",
    "{Roughly|About} how {much|many dollars} {could|can} you {set aside|spare|free up} "
    "{each|every} {month|paycheck}?",
    "{Do|Would} you {know|have a sense of} {your|the} {current|present} {rate|numbers|"
    "balance} {on|for} {that|this}?",
)

_GENERIC_USER = (
    "{Okay|Ok|Alright}, {that|this} {makes sense|helps|is useful}.",
    "{Got it|I see|Right}, {thanks|thank you} for {explaining|spelling it out}.",
    "{Hmm|Well|Okay}, I {hadn't|never} {thought about|considered} {it|that} {that way|like that}.",
    "{Sure|Yes|Yeah}, I {could|can} {probably|likely} {manage|free up} {small} a {month|paycheck}.",
)

# Real users sometimes answer in a few words; clean data has these too (they cost a
# little on the length check but must never flag a conversation).
_TERSE_USER = ("Okay, got it.", "Makes sense, thanks.", "Hmm. Go on?", "Right, and then?")

_CLOSINGS_USER = (
    "{Thanks|Thank you}, {this|that} {gives|leaves} me {a clear|a real|some} "
    "{plan|path|next step}.",
    "{This|That} {helps|helped} {a lot|so much}, I'll {start|begin} with {the|that} "
    "{first|top} {step|item} {this week|tomorrow}.",
)

_CLOSINGS_ASSISTANT = (
    "{To recap|In short|Summing up}, {start|begin} with {the|one} {first|simplest} "
    "{step|move}, {review|revisit} {it|the plan} in {months} months, and {adjust|tweak} "
    "{as|when} {life|income} {changes|shifts}.",
    "{You've|You have} {got|built} a {solid|clear|sensible} {plan|approach} {now|here}; "
    "{check|revisit} {the|your} {numbers|progress} {every|each} {quarter|few months}.",
)

# --------------------------------------------------------------------------- grammar

_SLOT = re.compile(r"\{([^{}]*)\}")


def _amount(rng: random.Random) -> str:
    return f"${rng.randrange(3, 480) * 250 + rng.randrange(0, 250):,}"


def _small(rng: random.Random) -> str:
    return f"${rng.randrange(60, 2400):,}"


def _pct(rng: random.Random) -> str:
    return f"{rng.randrange(20, 140) / 10:g}%"


_SLOT_FILLERS: dict[str, Callable[[random.Random], str]] = {
    "amount": _amount,
    "small": _small,
    "pct": _pct,
    "years": lambda r: str(r.randrange(2, 31)),
    "months": lambda r: str(r.randrange(2, 19)),
    "n": lambda r: str(r.randrange(2, 12)),
}


def expand(template: str, rng: random.Random, extra: dict[str, str] | None = None) -> str:
    """Fill ``{a|b|c}`` alternations and named slots; collapse the doubled spaces an
    empty alternative leaves."""

    def fill(m: re.Match[str]) -> str:
        body = m.group(1)
        if "|" in body:
            return rng.choice(body.split("|"))
        if extra and body in extra:
            return extra[body]
        filler = _SLOT_FILLERS.get(body)
        return filler(rng) if filler else body

    text = _SLOT.sub(fill, template)
    return re.sub(r"\s+([,.?])", r"\1", re.sub(r" {2,}", " ", text)).strip()


def _pick(rng: random.Random, pool: tuple[str, ...], used: set[str]) -> str:
    """A template not used yet in this conversation (pools recycle when exhausted)."""
    fresh = [t for t in pool if t not in used]
    if not fresh:
        used.difference_update(pool)
        fresh = list(pool)
    choice = rng.choice(fresh)
    used.add(choice)
    return choice


# --------------------------------------------------------------------------- conversations


def synthetic_taxonomy() -> Taxonomy:
    return Taxonomy(
        personas=[TaxonomyEntry(name=p.name, description=p.description) for p in PERSONAS],
        emotions=[TaxonomyEntry(name=e.name, description=e.description) for e in EMOTIONS],
        topics=[TaxonomyEntry(name=t.name, description=t.description) for t in TOPICS],
    )


def generate_turns(
    rng: random.Random,
    persona: PersonaVocab,
    emotion: EmotionVocab,
    topic: TopicVocab,
    n_turns: int,
) -> list[Turn]:
    """A clean conversation of ``n_turns`` (even) alternating turns, user first."""
    used: set[str] = set()
    pairs = max(1, n_turns // 2)

    def extra() -> dict[str, str]:  # fresh slot values per sentence
        return {"age": str(rng.randint(*persona.ages)), "term": rng.choice(topic.terms)}

    turns: list[Turn] = []
    for p in range(pairs):
        first, last = p == 0, p == pairs - 1 and pairs > 1
        user: list[str] = []
        if first or rng.random() < 0.5:
            user.append(expand(_pick(rng, emotion.user_lines, used), rng, extra()))
        if last:
            user.append(expand(_pick(rng, _CLOSINGS_USER, used), rng, extra()))
        elif not first and rng.random() < 0.08:
            user = [rng.choice(_TERSE_USER)]
        else:
            if first or rng.random() < 0.6:
                user.append(expand(_pick(rng, persona.intros, used), rng, extra()))
            elif rng.random() < 0.6:
                user.append(expand(_pick(rng, _GENERIC_USER, used), rng, extra()))
            user.append(expand(_pick(rng, topic.questions, used), rng, extra()))
        assistant: list[str] = []
        if first or (rng.random() < 0.3 and not last):
            assistant.append(expand(_pick(rng, emotion.empathy, used), rng, extra()))
        for _ in range(rng.randint(2, 3)):
            assistant.append(expand(_pick(rng, topic.advice, used), rng, extra()))
        if last:
            assistant.append(expand(_pick(rng, _CLOSINGS_ASSISTANT, used), rng, extra()))
        else:
            assistant.append(expand(_pick(rng, _GENERIC_ASSISTANT, used), rng, extra()))
        turns.append(Turn(turn_number=2 * p + 1, role="user", content=" ".join(user)))
        turns.append(Turn(turn_number=2 * p + 2, role="assistant", content=" ".join(assistant)))
    return turns


def synthetic_conversation(
    rng: random.Random,
    index: int,
    n_turns: int | None = None,
    persona: PersonaVocab | None = None,
    emotion: EmotionVocab | None = None,
    topic: TopicVocab | None = None,
) -> tuple[Conversation, list[Turn]]:
    persona = persona or rng.choice(PERSONAS)
    emotion = emotion or rng.choice(EMOTIONS)
    topic = topic or rng.choice(TOPICS)
    n = n_turns if n_turns is not None else rng.choice((6, 8, 10, 12, 12, 14, 16, 18))
    turns = generate_turns(rng, persona, emotion, topic, n)
    tier = rng.choice((Tier.TEMPLATE, Tier.TEMPLATE, Tier.SCENARIO, Tier.EDGE_CASE))
    conversation = Conversation(
        tenant_id="t_synthetic",
        dataset_id="ds_synthetic",
        conversation_id=f"conv_syn_{index:05d}",
        persona=persona.name,
        emotion=emotion.name,
        topic=topic.name,
        intent="get_advice",
        tone="warm",
        tier=tier,
        status=ConversationStatus.GENERATED,
        turn_count=len(turns),
        template_id=f"tpl_{tier.value}",
        template_version=rng.choice((1, 2)),
    )
    return conversation, turns


def synthetic_dataset(count: int, seed: int = 7) -> list[tuple[Conversation, list[Turn]]]:
    rng = random.Random(seed)
    return [synthetic_conversation(rng, i) for i in range(count)]


# --------------------------------------------------------------------------- defects


def _renumber(turns: list[Turn]) -> list[Turn]:
    return [Turn(turn_number=i, role=t.role, content=t.content) for i, t in enumerate(turns, 1)]


def swap_words(turns: list[Turn], rng: random.Random, swaps: int = 4) -> list[Turn]:
    """Swap ``swaps`` random pairs of adjacent words (each in a random turn)."""
    out = [t.model_copy() for t in turns]
    for _ in range(swaps):
        i = rng.randrange(len(out))
        ws = out[i].content.split()
        if len(ws) < 3:
            continue
        j = rng.randrange(len(ws) - 1)
        ws[j], ws[j + 1] = ws[j + 1], ws[j]
        out[i] = out[i].model_copy(update={"content": " ".join(ws)})
    return out


def change_sentence(turns: list[Turn], rng: random.Random, topic_name: str) -> list[Turn]:
    """Replace one sentence of one assistant turn with a freshly generated one."""
    topic = next((t for t in TOPICS if t.name == topic_name), TOPICS[0])
    out = [t.model_copy() for t in turns]
    candidates = [i for i, t in enumerate(out) if t.role == "assistant"] or list(range(len(out)))
    i = rng.choice(candidates)
    sentences = re.split(r"(?<=[.?!])\s+", out[i].content)
    k = rng.randrange(len(sentences))
    sentences[k] = expand(rng.choice(topic.advice), rng, {"term": rng.choice(topic.terms)})
    out[i] = out[i].model_copy(update={"content": " ".join(sentences)})
    return out


def reorder_turn_pair(turns: list[Turn], rng: random.Random) -> list[Turn]:
    """Swap two (user, assistant) exchanges; alternation stays intact."""
    pairs = [turns[i : i + 2] for i in range(0, len(turns) - 1, 2)]
    if len(pairs) >= 3:
        a, b = rng.sample(range(1, len(pairs)), 2)  # keep the opening exchange first
        pairs[a], pairs[b] = pairs[b], pairs[a]
    return _renumber([t for pair in pairs for t in pair])


def light_edit_copy(
    turns: list[Turn], rng: random.Random, topic_name: str, kind: str
) -> list[Turn]:
    """A near-duplicate: ``kind`` in swaps | sentence | reorder | all."""
    out = turns
    if kind in ("swaps", "all"):
        out = swap_words(out, rng)
    if kind in ("sentence", "all"):
        out = change_sentence(out, rng, topic_name)
    if kind in ("reorder", "all"):
        out = reorder_turn_pair(out, rng)
    return out


def truncate(turns: list[Turn], keep: int) -> list[Turn]:
    return [t.model_copy() for t in turns[:keep]]


def break_alternation(turns: list[Turn], rng: random.Random, kind: str) -> list[Turn]:
    """``kind``: double_user (an assistant turn lost), starts_assistant, ends_user,
    numbering_gap."""
    seq = [t.model_copy() for t in turns]
    if kind == "double_user":
        drop = rng.randrange(1, len(seq) - 2, 2)  # an assistant turn, not the last
        return _renumber(seq[:drop] + seq[drop + 1 :])
    if kind == "starts_assistant":
        return _renumber(seq[1:])
    if kind == "ends_user":
        return seq[:-1]
    if kind == "numbering_gap":
        k = rng.randrange(2, len(seq))
        return [
            t.model_copy(update={"turn_number": t.turn_number + (1 if i >= k else 0)})
            for i, t in enumerate(seq)
        ]
    raise ValueError(f"unknown alternation defect {kind!r}")


def blank_turn(turns: list[Turn], rng: random.Random, whitespace: bool = False) -> list[Turn]:
    seq = [t.model_copy() for t in turns]
    i = rng.randrange(len(seq))
    seq[i] = seq[i].model_copy(update={"content": " \n\t " if whitespace else ""})
    return seq
