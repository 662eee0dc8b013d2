"""Ungrounded specifics: facts the assistant states that its source excerpt never gave.

A scenario conversation is written from one document excerpt. When the assistant quotes
a fee, a percentage, a deadline, a phone number or a person's name, that specific must
come from the excerpt, from what the user said, or from the conversation's own plan;
anything else is invented, and a model fine-tuned on it learns to invent the business's
facts. Figures the assistant works out from grounded ones (1% of the user's $750,000, a
yearly fee split into quarters) are grounded too.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from chalicelib.quality.text import normalise, words
from chalicelib.quality.validators import STOPWORDS, stem

_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_SCALE = {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6, "bn": 1e9, "billion": 1e9}
# ISO codes written before or after an amount ("USD 40", "1.200 CHF")
_CURRENCY_CODES = (
    "usd|eur|gbp|nzd|cad|aud|chf|zar|sgd|dkk|sek|nok|jpy|inr|mxn|pln|brl|cny|rmb|krw|php|thb|"
    "myr|idr|huf|czk|ron|isk|kes|ngn|aed|sar|ils|egp|twd|vnd|cop|clp|ars|pen|uyu|bob|pyg|gel|"
    "lkr|pkr|bdt|npr|try|ugx|tzs|ghs|mad|tnd|qar|kwd|omr|bhd|jod|rsd|bgn|uah|kzt|amd|azn|mnt|"
    "hkd|mop|khr|lak|mmk|xof|xaf|etb|rwf|zmw|mur|dop|crc|gtq|jmd|ttd|isk"
)
# Every currency sign Unicode has (GH₵, ₦, ₴, ₸ as well as $ and €), with the letters some
# countries write before one ("NT$", "GH₵", "R$").
_CURRENCY_SIGNS = re.escape(
    "".join(chr(c) for c in range(0x20, 0x20C0) if unicodedata.category(chr(c)) == "Sc")
)
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("email", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")),
    ("url", re.compile(r"\bhttps?://\S+|\bwww\.[\w.-]+|\b[\w-]+\.(?:com|org|net|io|co\.uk|gov)\b")),
    (
        "phone",
        re.compile(
            # every number starts with "+", "(" or a digit: the lookahead skips the rest
            r"(?=[+(\d])"
            r"(?<![\d$])(?:\+?\d{1,2}[-. ]?)?\(?\d{3}\)?[-. ]\d{3}[-. ]\d{4}\b|"
            # international and trunk-prefixed numbers in groups ("0475 38 21 90")
            r"(?<![\d$.,])(?:\+\d{1,3}[ .-]?|\b0)\d{1,4}(?:[ .-]\d{2,4}){2,4}\b"
        ),
    ),
    (
        "money",
        re.compile(
            # Every amount has a digit within five characters of its start (up to three
            # letters and a sign, or a code, then a space): the lookahead rules out most
            # positions before the alternatives are tried at each.
            r"(?=\D{0,5}\d)"
            r"(?:(?:\b[a-z]{1,3}(?=[" + _CURRENCY_SIGNS + r"]))?[" + _CURRENCY_SIGNS + r"]|"
            r"\b(?:kr|rs)\.? ?(?=\d)|\b(?:" + _CURRENCY_CODES + r") ?|"
            r"(?<![A-Za-z])(?-i:R)(?=\d))\s?(?:\d{1,3}"
            r"(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s?(?:k|m|bn|million|billion|thousand)\b)?|\b(?:\d{1,3}"
            r"(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s?|-)(?:dollars?|euros?|pounds?|cents|pence|yen|"
            r"pesos?|rupees?|kr\b|kroner?|kronor|krona|zł|zloty|złoty|francs?|lira|forint|baht|"
            r"ringgit|rand\b|dirhams?|riyals?|shekels?|yuan|reais|naira|shillings?|koruna|kč|cedis?|"
            + _CURRENCY_CODES
            # an amount written the continental way, its sign after it ("1.290,00 €")
            + r")|\b(?:\d{1,3}(?:[.,]\d{3})+|\d+)(?:,\d{1,2})?\s?["
            + _CURRENCY_SIGNS
            + r"](?!\s?\d)",  # not the sign of the next amount ("Lifetime 4000 £24.60")
            re.IGNORECASE,
        ),
    ),
    ("percent", re.compile(r"\b\d+(?:\.\d+)?\s?(?:%|percent\b|per cent\b)", re.IGNORECASE)),
    (
        "date",
        re.compile(
            # a date starts with a digit or a month's first letter
            r"(?=[\dJFMASONDjfmasond])"
            rf"\b(?:{_MONTHS})\.? \d{{1,2}}(?:st|nd|rd|th)?\b|\b\d{{1,2}}(?:st|nd|rd|th)? "
            rf"(?:of )?(?:{_MONTHS})\b|\b(?:19|20)\d{{2}}\b|\b\d{{1,2}}/\d{{1,2}}(?:/\d{{2,4}})?\b",
            re.IGNORECASE,
        ),
    ),
    ("time", re.compile(r"\b\d{1,2}(?::\d{2})?\s?(?:am|pm|a\.m\.|p\.m\.)", re.IGNORECASE)),
    (
        "duration",
        re.compile(
            r"\b\d+(?:\.\d+)?(?:\s?-\s?\d+)?\s?(?:business |working |calendar )?(?:days?|weeks?|"
            r"months?|years?|hours?|minutes?|sessions?|visits?|appointments?)\b",
            re.IGNORECASE,
        ),
    ),
)
# The kinds whose pattern can match a text with no digit in it.
_WITHOUT_FIGURES = frozenset({"email", "url"})
_DIGIT_RUN = re.compile(r"\d+")  # runs close together share a window
_TITLES = frozenset({"dr", "mr", "mrs", "ms", "mx", "prof"})
_PERSON = re.compile(r"\b(?:Dr|Mr|Mrs|Ms|Mx|Prof)\.? [A-Z][a-z]+(?: [A-Z][a-z]+)?")
_NAMED = re.compile(
    r"\b(?:named|called|ask for|speak (?:to|with)|contact|call|ring|email|text|message) "
    r"([A-Z][a-z]+ [A-Z][a-z]+)|"
    r"\b(?:[Oo]ur|[Tt]he|[Yy]our) (?:[a-z]+ ){0,3}(?:porter|manager|advis[eo]r|broker|therapist|doctor|"
    r"dentist|vet|nurse|preparer|technician|specialist|coordinator|host|receptionist|agent|"
    r"consultant|lead|engineer|driver|instructor|coach|concierge|planner|accountant|surveyor|"
    r"inspector|solicitor|lawyer|attorney|midwife|counsellor|counselor|installer|director|"
    r"colleague|physician|manager|rider|guide|chef|teacher),?"
    r"(?: would be| will be| is)? "
    r"([A-Z][a-z]+(?: [A-Z][a-z]+)?)\b|"
    r"\b(?:we (?:also )?have|meet|you'll (?:see|work with|meet)|works? with|book (?:you )?(?:in )?"
    r"with) ([A-Z][a-z]+ [A-Z][a-z]+)(?=,| who| is| can| will|\.)"
)
# Words that say a figure was worked out in the sentence ("so", "that comes to"): only
# then may it be one not stated anywhere. A figure stated flatly must be the source's.
_CALCULATION = re.compile(
    r"\b(?:so|that's|that is|which (?:is|comes|makes|brings)|comes? to|works? out|brings?|"
    r"bringing|total|totals|totalling|altogether|in all|adds? up|would be|would come|saving|"
    r"leaves?|leaving|remaining|the difference|per [a-z]+ (?:is|comes to|makes)|for the (?:pair|"
    r"two|both)|"
    r"savings|saves? you|times|multiplied|minus|plus|less|off|down to|each|for (?:\d+|one|"
    r"two|three|four|five|six|seven|eight|nine|ten|twelve) [a-z]+|over (?:the|a) (?:year|"
    r"month|week|term)|at [$\u20ac\u00a3]?\d|x|\u00d7)\b|[=\u00d7*/+\u2212] ?[$\u20ac\u00a3]?\d",
    re.IGNORECASE,
)
# Numbers that are names of things, not facts: 401(k), Form 1099, Section 529.
_PRODUCT_NUMBER = re.compile(
    r"\b\d{3}\s?\([a-z]\)|\b(?:form|section|rule|schedule|chapter|article|code|plan|ira|"
    r"tier|option|step|page|room|suite|unit|box|line|part|item)\s+\d+",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_CONTINENTAL = re.compile(
    r"(?<![\d.,])\d{1,3}(?:\.\d{3})+(?:,\d{1,2})?(?![\d.]|,\d)|(?<![\d.,])\d+,\d{2}(?=\s?\D)(?!,)"
)
_GROUPED = re.compile(r"(?<![\d.,])\d{1,3}(?:[. \u00a0\u202f]\d{3})+(?!\d|[.,]\d)")
_NUMBER_WORDS = {
    w: float(i)
    for i, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
        ]
    )
    if i
}
# Words that count two of something: "$700 per ear is $1,400 for the pair".
_NUMBER_WORDS.update({"pair": 2.0, "both": 2.0, "twice": 2.0, "double": 2.0, "couple": 2.0})
CONTEXT_WORDS = 5
# Hedges and fillers around a figure say nothing about what it measures.
_CONTEXT_NOISE = frozenset(
    [
        "about",
        "roughly",
        "around",
        "approximately",
        "nearly",
        "almost",
        "just",
        "under",
        "over",
        "only",
        "total",
        "works",
        "comes",
        "out",
    ]
)
_APPROXIMATE = re.compile(
    r"\b(?:about|roughly|around|approximately|nearly|almost|just (?:under|over)|close to)\s*$"
    r"|~\s*$",
    re.IGNORECASE,
)
MIN_SHARED_CONTEXT = 2  # context stems two figures must share to be about the same thing


@dataclass(frozen=True)
class Specific:
    kind: str
    text: str
    value: float | str  # numbers normalised ($1,500 -> 1500.0, 1.00% -> 1.0); else text
    context: frozenset[str]  # content-word stems around it
    lead: frozenset[str] = frozenset()  # the ones before it ("minimum annual fee is $X")


def _value(kind: str, text: str) -> float | str:
    if kind in ("email", "url", "phone", "date", "time"):
        return (
            re.sub(r"[^a-z0-9@.:/]", "", text.lower())
            if kind != "phone"
            else re.sub(r"\D", "", text)[-10:]
        )
    continental = _CONTINENTAL.search(text) if kind == "money" else None
    if continental:  # "COP 60.000", "1.290,00 €": dots group thousands, a comma the cents
        return float(continental.group(0).replace(".", "").replace(",", "."))
    match = _NUMBER.search(text)
    if not match:
        return text.lower()
    number = float(match.group(0).replace(",", ""))
    if kind == "money" and re.search(r"\d\s?(?:cents|pence)\b", text.lower()):
        number /= 100  # "67 cents", "50p"
    if kind == "money":
        scale = re.match(r"\s*(k|m|bn|million|billion|thousand)\b", text[match.end() :].lower())
        if scale:
            number *= _SCALE[scale.group(1)]
    return number


def _stems(tokens: Iterable[str]) -> frozenset[str]:
    return frozenset(
        stem(w)
        for w in tokens
        if len(w) > 2 and w not in STOPWORDS and w not in _CONTEXT_NOISE and not w.isdigit()
    )


def _context(text: str, start: int, end: int) -> tuple[frozenset[str], frozenset[str]]:
    # Only the neighbourhood: tokenising the whole text for every figure is quadratic.
    reach = CONTEXT_WORDS * 24
    before = words(text[max(0, start - reach) : start])[-CONTEXT_WORDS:]
    after = words(text[end : end + reach])[:CONTEXT_WORDS]
    lead = _stems(before)
    return lead | _stems(after), lead


# A figure pattern's match reaches at most this far from a digit it holds (a currency
# code and a space before it, "business days" or "thousand" after it), and never spans
# this many characters without one; 40 leaves room for the patterns' lookarounds too.
DIGIT_REACH = 40


def digit_windows(text: str) -> list[tuple[int, int]]:
    """The stretches of ``text`` within DIGIT_REACH of a digit, merged: every match of a
    pattern that must hold a digit lies inside one of them."""
    windows: list[tuple[int, int]] = []
    for m in _DIGIT_RUN.finditer(text):
        lo, hi = max(0, m.start() - DIGIT_REACH), min(len(text), m.end() + DIGIT_REACH)
        if windows and lo <= windows[-1][1]:
            windows[-1] = (windows[-1][0], hi)
        else:
            windows.append((lo, hi))
    return windows


def finditer_near(
    pattern: re.Pattern[str], text: str, windows: list[tuple[int, int]]
) -> Iterator[re.Match[str]]:
    """``pattern.finditer(text)`` for a pattern whose every match holds a digit, searched
    only inside ``windows``: the same matches, without trying every position of a page.
    ``pos`` keeps lookbehinds and word boundaries reading the real text before a window."""
    for lo, hi in windows:
        yield from pattern.finditer(text, lo, hi)


def specifics(text: str) -> list[Specific]:
    """Every checkable specific in ``text``, each span counted once (most specific kind)."""
    return list(_specifics(text))


@lru_cache(maxsize=1024)
def _specifics(text: str) -> tuple[Specific, ...]:
    # Cached: a dataset's excerpts (and its users' turns) are read by every conversation
    # that uses them, and the patterns are the slow part of scoring.
    text = normalise(text)
    # The figure patterns are the slow ones, and each match holds a digit: they are run
    # only near the text's digits (none at all in most turns).
    windows = digit_windows(text)
    taken: list[tuple[int, int]] = [m.span() for m in finditer_near(_PRODUCT_NUMBER, text, windows)]
    found: list[Specific] = []

    def free(span: tuple[int, int]) -> bool:
        return all(span[1] <= a or span[0] >= b for a, b in taken)

    for kind, pattern in _PATTERNS:
        matches = (
            pattern.finditer(text)
            if kind in _WITHOUT_FIGURES
            else finditer_near(pattern, text, windows)
        )
        for m in matches:
            if not free(m.span()):
                continue
            taken.append(m.span())
            context, lead = _context(text, *m.span())
            found.append(Specific(kind, m.group(0), _value(kind, m.group(0)), context, lead))
    for pattern in (_PERSON, _NAMED):
        for m in pattern.finditer(text):
            name = next((g for g in reversed(m.groups()) if g), None) if m.groups() else m.group(0)
            if not name:
                continue
            context, lead = _context(text, *m.span())
            found.append(Specific("name", name, name.lower(), context, lead))
    return tuple(found)


def numbers_in(text: str) -> set[float]:
    """Every number in ``text`` (grounding also accepts a bare "1,500" for "$1,500")."""
    out = set()
    for m in _NUMBER.finditer(normalise(text)):
        try:
            out.add(float(m.group(0).replace(",", "")))
        except ValueError:
            continue
    return out


def _close(a: float, b: float, tolerance: float = 0.011) -> bool:
    return abs(a - b) <= max(tolerance * abs(b), 0.005) or (abs(a - b) <= 0.5 and abs(b) >= 20)


_SPLITS = (2, 3, 4, 12, 52, 0.5, 0.25, 1 / 12, 1 / 4, 1 / 3)
MAX_POOL = 40  # grounded figures combined pairwise (a long excerpt keeps its first ones)


class Grounding:
    """What a conversation's sources ground, built once per conversation.

    Amounts may be worked out: an amount split into months or quarters, the sum or
    difference of two amounts, a grounded rate of a grounded amount, an amount times a
    count. Rates are quoted, never worked out, so a rate must be a source's rate. A figure
    the assistant works out becomes grounded itself (``add``), so a total built in steps
    ("EUR 1,040 for the course... so EUR 1,100 with the fee") stays grounded."""

    def __init__(self, sources: Iterable[str]) -> None:
        sources = [normalise(source).lower() for source in sources]
        self.text = " ".join(sources)
        self.flat = re.sub(r"[^a-z0-9@.:/]", "", self.text)
        self.digits = re.sub(r"\D", "", self.text)
        self.words = frozenset(words(self.text))
        # letters in any script: "Kuşdili" and "Mustamäe" are one word each here
        self.name_words = frozenset(_LETTERS.findall(self.text))
        # "800.000 kr." and "kr 120 000" group thousands with a dot or a space: the sources
        # ground the figure either way it is read.
        grouped = {float(re.sub(r"\D", "", m.group(0))) for m in _GROUPED.finditer(self.text)}
        self.numbers = sorted(numbers_in(self.text) | grouped)
        self.percents = sorted(
            {float(m.group(1)) for m in re.finditer(r"(\d+(?:\.\d+)?)\s?(?:%|percent)", self.text)}
        )
        self.amounts: list[float] = []
        # Amounts are worked out from amounts (and rates and counts), never from any two
        # numbers: small figures would all be "derivable" from a page of numbers.
        self._derived: set[float] = set(self.numbers)
        self._sorted: list[float] | None = None
        self._worked_out: list[float] = []  # figures the conversation worked out, sorted
        money = {
            v
            for source in sources
            for spec in _specifics(source)
            if spec.kind == "money"
            for v in [spec.value]
            if isinstance(v, float)
        }
        for amount in sorted(money | grouped)[:MAX_POOL]:
            self.add(amount)

    def has_name(self, name: str) -> bool:
        """A person is the sources' when their first or last name is a word of them (a
        name, not a word's inside: "Ming" is not grounded by "timing")."""
        parts = [w for w in words(name) if w not in _TITLES]
        return bool(parts) and (parts[0] in self.words or parts[-1] in self.words)

    def add(self, amount: float) -> None:
        """``amount`` is grounded: it and what can be worked out from it."""
        if len(self.amounts) >= 2 * MAX_POOL:
            return
        d = self._derived
        d.add(amount)
        bisect.insort(self._worked_out, amount)
        d.update(amount * f for f in _SPLITS)
        d.update(amount * r / 100 for r in self.percents)
        # a rate off or on top ("NZ$115 less 10%"), and a unit price times a quantity the
        # sources give ("16,000 kWh at $0.67")
        d.update(amount * (100 - r) / 100 for r in self.percents)
        d.update(amount * (100 + r) / 100 for r in self.percents)
        # a saving or surcharge over months, quarters or a year
        d.update(amount * r / 100 * f for r in self.percents for f in _SPLITS)
        d.update(amount * n for n in self.numbers if n > 1)
        for other in self.amounts:
            d.update((amount + other, abs(amount - other)))
        self.amounts.append(amount)
        self._sorted = None

    @staticmethod
    def _near(value: float, pool: list[float], tolerance: float) -> bool:
        i = bisect.bisect_left(pool, value * (1 - tolerance) - 0.5)
        while i < len(pool) and pool[i] <= value * (1 + tolerance) + 0.5:
            if _close(value, pool[i], tolerance):
                return True
            i += 1
        return False

    def states(self, value: float) -> bool:
        """A source states ``value``, or the conversation already worked it out (quoting
        "$5,200 upfront" again needs no arithmetic)."""
        return self._near(value, self.numbers, 0.011) or self._near(value, self._worked_out, 0.011)

    def derives(
        self, kind: str, value: float, tolerance: float, counts: Iterable[float] = ()
    ) -> bool:
        """``counts``: the numbers of the statement itself ("four weeks at EUR 260")."""
        if kind == "percent":
            # a rate is quoted, or it is the share one grounded amount is of another
            # ("$17,600 on $2.4 million is about 0.73%")
            return self._near(value, self.percents, tolerance) or (
                tolerance > 0.05
                and any(
                    _close(value, 100 * a / b, tolerance)
                    for a in self.amounts
                    for b in self.amounts
                    if b > a > 0
                )
            )
        if self._sorted is None:
            self._sorted = sorted(x for x in self._derived if x)
        if self._near(value, self._sorted, tolerance):
            return True
        return kind == "money" and any(
            _close(value, a * c, tolerance) for a in self.amounts for c in counts
        )


_LETTERS = re.compile(r"[^\W\d_]+")
# Capitalised words that name no one: days and months, titles, the pronoun.
_NOT_NAMES = frozenset(
    {
        f"{day}day{plural}"
        for day in ("mon", "tues", "wednes", "thurs", "fri", "satur", "sun")
        for plural in ("", "s")
    }
    | set(_MONTHS.split("|"))
    | _TITLES
    | {"i", "dra", "sr", "sra", "st"}
)
# Lower-case words inside a name ("Facultad de Psicología", "Ludwig van Beethoven").
_NAME_PARTICLES = frozenset({"de", "la", "del", "da", "di", "du", "van", "von", "le", "el", "al"})
_TOKEN_EDGES = "\"'()[],;:!?"


def invented_names(sentence: str, grounding: Grounding) -> list[str]:
    """Names the sources never use: runs of two or more capitalised words inside a
    sentence ("Mark Pellegrino", "Calle Plateros", "Stari Grad") of which at least two
    are words no source has. A generated name is a person, a place or a product the
    business may not have; a name the excerpt or the customer gives is grounded."""
    runs: list[list[str]] = [[]]
    previous = ""
    for raw in sentence.split():
        word = raw.strip(_TOKEN_EDGES).removesuffix(".")
        # The sentence's first word, or the first after a colon or an opening quote, is
        # capitalised whatever it is.
        opens = not previous or previous.endswith(":") or raw[:1] in "\"'("
        capitalised = word[:1].isupper() and not opens and not any(map(str.isdigit, word))
        if capitalised or (runs[-1] and word in _NAME_PARTICLES and raw == word):
            runs[-1].append(word)
        elif runs[-1]:
            runs.append([])
        # A comma or a full stop ends a name ("Dr." does not).
        if raw[-1:] in _TOKEN_EDGES or (raw.endswith(".") and word.lower() not in _TITLES):
            runs.append([])
        previous = raw
    found = []
    for run in runs:
        while run and run[-1] in _NAME_PARTICLES:
            run.pop()
        new = [w for w in run if w[:1].isupper() and not _known_name_word(w, grounding)]
        if len(run) >= 2 and len(new) >= 2:
            found.append(" ".join(run))
    return found


def _known_name_word(word: str, grounding: Grounding) -> bool:
    parts = _LETTERS.findall(word.lower().removesuffix("'s"))
    return not parts or all(p in grounding.name_words or p in _NOT_NAMES for p in parts)


@dataclass(frozen=True)
class Ungrounded:
    specific: Specific
    contradicts: Specific | None  # a source specific of the same kind it replaces
    worked_out: bool = False  # its sentence does arithmetic: maybe a step we cannot follow
    derivable: bool = False  # arithmetic on grounded figures gives it (stated flatly, though)


def ungrounded(
    statement: str, grounding: Grounding, source_specifics: list[Specific]
) -> list[Ungrounded]:
    """Specifics of ``statement`` that the sources do not ground.

    A figure the sources state directly is grounded. One that differs from a source
    figure about the same thing (two shared context words: "minimum annual fee")
    contradicts it. Otherwise a figure worked out from grounded ones is grounded."""
    statement = normalise(statement)
    calculating = bool(_CALCULATION.search(statement))
    counts = [n for n in numbers_in(statement) if 0 < n <= 100 and n == int(n)]
    counts += [_NUMBER_WORDS[w] for w in words(statement) if w in _NUMBER_WORDS]
    out: list[Ungrounded] = []
    pending = specifics(statement)
    # Figures of one sentence can build on each other in any order ("EUR 1,280 with the
    # workshop (EUR 180)"): accept what is grounded until nothing more is.
    progress = True
    while progress:
        progress = False
        for spec in list(pending):
            if isinstance(spec.value, float) and _figure_grounded(
                spec, statement, grounding, counts, calculating
            ):
                pending.remove(spec)
                progress = True
    for spec in pending:
        derivable = False
        if isinstance(spec.value, float):
            derivable = grounding.derives(spec.kind, spec.value, 0.011, counts)
            if spec.kind == "duration":
                derivable = _duration_derivable(spec, source_specifics, statement)
            if spec.kind == "money" and (calculating or derivable):
                # A figure the assistant works out (or could have) is one it may quote
                # again later: once is enough to doubt it.
                grounding.add(spec.value)
        if spec.kind == "name":
            if grounding.has_name(spec.text):
                continue
        elif spec.kind == "phone":
            if str(spec.value) in grounding.digits:
                continue
        elif not isinstance(spec.value, float) and str(spec.value) in grounding.flat:
            continue
        rivals = [
            s
            for s in source_specifics
            if s.kind == spec.kind
            and s.value != spec.value
            and len(s.context & spec.context) >= MIN_SHARED_CONTEXT
            # A figure arithmetic gives ("$5,200 for the month and the deposit" is two of
            # $2,600) replaces nothing unless it is named the same way ("the minimum fee
            # is"); a total the sentence works out ("the service, the check and the test
            # come to") names several things, so it needs one more word in common.
            and (not derivable or len(s.lead & spec.lead) >= MIN_SHARED_CONTEXT)
            and (not calculating or len(s.lead & spec.lead) > MIN_SHARED_CONTEXT)
        ]
        rival = max(
            rivals,
            key=lambda s: (len(s.lead & spec.lead), len(s.context & spec.context)),
            default=None,
        )
        out.append(Ungrounded(spec, rival, calculating, derivable))
    return out


def _unit(text: str) -> str:
    """The unit of a duration ("48 hours" -> "hour")."""
    unit = words(text)[-1:] or [""]
    return unit[0].rstrip("s")


def _duration_derivable(spec: Specific, sources: list[Specific], statement: str) -> bool:
    """A duration the source's durations add up to: two 48-hour windows are 96 hours, a
    48-hour wait and the 24 hours the sentence adds are 72."""
    unit = _unit(spec.text)
    known = [
        s.value
        for s in sources
        if s.kind == "duration" and isinstance(s.value, float) and _unit(s.text) == unit
    ]
    if not known or not isinstance(spec.value, float):
        return False
    value = spec.value
    steps = [n for n in numbers_in(statement) if n != value]
    candidates = {a * k for a in known for k in (2, 3, 4)}
    candidates |= {a + b for a in known for b in known}
    candidates |= {a + n for a in known for n in steps} | {abs(a - n) for a in known for n in steps}
    return any(_close(value, c) for c in candidates)


def _figure_grounded(
    spec: Specific,
    statement: str,
    grounding: Grounding,
    counts: list[float],
    calculating: bool = True,
) -> bool:
    """A number stated by the sources, or worked out from them in a sentence that does
    arithmetic (and then grounded too, for the next step)."""
    assert isinstance(spec.value, float)
    position = statement.find(spec.text)
    approximate = bool(_APPROXIMATE.search(statement[: max(position, 0)]))
    if grounding.states(spec.value) or (
        (calculating or approximate)
        and grounding.derives(spec.kind, spec.value, 0.1 if approximate else 0.011, counts)
    ):
        if spec.kind == "money":
            grounding.add(spec.value)
        return True
    return False
