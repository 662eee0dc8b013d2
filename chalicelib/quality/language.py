"""Which language a turn is written in: enough to see a conversation switch language.

Two signals, no model: the script of the letters (Cyrillic, Greek, Arabic, Hebrew,
Devanagari, Thai, CJK, Hangul... are unambiguous), and for Latin-script text the share of
each language's most frequent function words. Function words make up 40-50% of running
text in these languages and barely overlap between them, so a turn of ten words or more
is identified reliably, while a single foreign word ("gracias", "Grüße") or a name never
outweighs the rest of an English sentence.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

# The most frequent function words per language, chosen not to collide with each other
# (or with English) in running text. Words shared by two languages ("de", "en", "a",
# "la") are kept out of both.
_FUNCTION_WORDS: dict[str, str] = {
    "en": "the and is are was were you your that this with have has for not but what "
    "would could should will from they there their which about been can just it's i'm "
    "don't we our my of to "
    # English words other languages spell the same way: listed so that neither counts
    "as at in on an or if so no do me he be us am um",
    "es": "el los las del por para con una uno pero como muy más está están estoy tengo "
    "tiene puede quiero necesito también porque cuando donde usted ustedes nosotros "
    "sobre hay ser sus mis gracias hola qué cómo así ya eso esto esta este ahora mucho "
    "mejor bueno entiendo puedo hacer cuál cuánto señor señora entonces y es me se lo le "
    "nos mi tu son podemos perdón hay aún quiere gusto pedirle propio muchas muchos hacen "
    "molesta siempre después ningún ninguna"
    " ciento cabe dentro cuatro hasta según todavía nuestro nuestra ellos ellas él ella hace fue tener veces día días precio incluye allí luego pues algún alguna algo nadie",
    "fr": "le les des est sont avec pour pas mais vous nous je suis très aussi dans sur "
    "une qui quoi comment parce avez ai fait cette ces mon ma mes votre vos leur "
    "bonjour merci c'est j'ai n'est beaucoup peut être oui ça au aux du "
    "cela votre quelle quel maintenant tout alors donc ici voir faire"
    " leurs leur après avant deux trois ensuite environ propres dépend selon chez sans sous vers depuis pendant toujours encore déjà moins peu trop même autre autres chaque tous toutes elle elles ils sera être avoir doit faut comme donc quand où ceux celle celui notre ses",
    "de": "der die das und ist sind nicht mit für auf ich sie wir ihr mein meine sein "
    "ein eine einen dem den des auch aber wie was wenn dass oder bei noch nur schon "
    "haben habe kann können danke bitte sehr"
    " werden wird wurde durch über unter nach vor zwischen gegen ohne immer wieder jetzt dort heute unsere unser unseren ihre ihren ihrem ihm ihn uns euch diese dieser dieses jede jeder etwas nichts viel viele mehr weil sondern denn zum zur vom beim",
    "pt": "o os as um uma não com para por mais mas muito está estou tenho pode quero "
    "também porque quando onde você vocês nós sobre são meu minha seu sua obrigado "
    "obrigada olá isso isto então já fazer eu pela pelo agora ainda nosso nossa aqui "
    "quanto quais entendo ajuda também em seja assim é"
    " ele ela eles elas dele dela seus suas tem têm foi será bem depois até só num numa pelos pelas ao aos às dos",
    "it": "il gli lo della delle che non per con una sono sei siamo anche ma come molto "
    "più questo questa quello grazie ciao io mio mia suo sua perché quando dove "
    "vorrei posso può fare essere ho hai dei degli alla nel nella sul qualche qualcuno "
    "potrebbe durante volete spesso solito cosa chi ci noi voi loro hanno abbiamo "
    "siete sempre ancora dopo prima tutto tutti bene allora"
    " quindi però stato fatto cui quale quali ogni tra senza giorni",
    "nl": "het een van is niet met voor op ik jij wij zijn dat dit maar ook als "
    "wat hoe heb hebben kan kunnen mijn uw bedankt alstublieft graag wel nog er "
    "naar"
    " worden wordt werd bij uit door onder tussen zonder altijd deze omdat zo veel meer geen jullie hun hem haar onze ze heel erg",
    # Swedish, Danish and Norwegian share most function words: one group.
    "sv": "och att det som är inte med för på jag du vi har kan min din mycket också "
    "men hur vad tack hej skulle eller från og er ikke jeg meget også hvordan hvad "
    "fra"
    " ett av efter innan när då så bara redan alltid aldrig vår vårt våra ditt sitt hos vid utan vara blir kommer måste behöver dig mig oss vil skal hvor hvis vores deres",
    "pl": "nie jest się że na do jak ale tak czy mam może bardzo też dla jestem są "
    "dziękuję proszę mój moja przez więc który która które od za po przy oraz tylko jeśli "
    "gdy będzie zostanie",
    "tr": "ve bir bu için ile çok ama ne nasıl değil evet hayır teşekkür ederim benim "  # noqa: RUF001
    "sizin var yok daha",
    "id": "dan yang ini itu dengan untuk tidak saya anda kami ada bisa akan dari juga "
    "terima kasih apa bagaimana",
    "sw": "na kwa ni hii kuwa kama lakini sana asante tafadhali ndiyo hapana wewe mimi "
    "sisi yako yangu yetu wako kwamba pia bado sasa hivyo kuna hakuna unaweza ninaweza "
    "tunaweza katika cha vya wa za habari karibu",
    "af": "asseblief baie vir ek jy ons hulle julle sal moet hierdie daardie niemand "
    "mense dikwels wees dankie sê gesê goeie môre altyd",
    "ga": "agus tá níl ní sé sí mé tú sibh muid conas raibh maith agat duit atá bhfuil leat",
    "zu": "ngiyabonga sawubona kakhulu ngoba kodwa ukuthi futhi yebo ngicela enkosi "
    "molo kunye ukuba ndiyabonga kakuhle",
    "tl": "ang mga ng sa ako ikaw siya opo salamat hindi ito iyan namin natin kayo",
    "vi": "không của và là tôi bạn được này những một người cho chúng với cảm ơn",
    "ro": "și sunt pentru cu mai foarte mulțumesc vă să într acest această sau dacă",
    "hu": "és hogy nem egy ez köszönöm kérem nagyon vagy csak már lesz itt",
    "fi": "ja ei että minä sinä kiitos hyvä mutta kun myös olen olet ovat tämä",
}

LANGUAGE_NAMES = {
    "en": "English",
    "es": "Spanish",
    "fr": "French",
    "de": "German",
    "pt": "Portuguese",
    "it": "Italian",
    "nl": "Dutch",
    "sv": "a Scandinavian language",
    "pl": "Polish",
    "tr": "Turkish",
    "id": "Indonesian",
    "sw": "Swahili",
    "af": "Afrikaans",
    "ga": "Irish",
    "zu": "Zulu or Xhosa",
    "tl": "Tagalog",
    "vi": "Vietnamese",
    "ro": "Romanian",
    "hu": "Hungarian",
    "fi": "Finnish",
    "ru": "a Cyrillic-script language",
    "el": "Greek",
    "ar": "Arabic",
    "he": "Hebrew",
    "hi": "a Devanagari-script language",
    "th": "Thai",
    "zh": "Chinese",
    "ja": "Japanese",
    "ko": "Korean",
}


def _word_table() -> dict[str, set[str]]:
    table: dict[str, set[str]] = {}
    for lang, text in _FUNCTION_WORDS.items():
        for word in text.split():
            table.setdefault(word, set()).add(lang)
    # A word listed for several languages says nothing about which one it is.
    return {w: langs for w, langs in table.items() if len(langs) == 1}


_WORD_LANG = {w: next(iter(langs)) for w, langs in _word_table().items()}
# Function words of any language listed here but English, shared ones too ("mais" is
# French and Portuguese): which language they are does not matter to "not English".
_FOREIGN_FUNCTION_WORDS = frozenset(
    w for lang, text in _FUNCTION_WORDS.items() if lang != "en" for w in text.split()
) - frozenset(_FUNCTION_WORDS["en"].split())
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")

# Unicode script of a letter by its name prefix (unicodedata.name is stable).
_SCRIPTS = (
    ("CYRILLIC", "ru"),
    ("GREEK", "el"),
    ("ARABIC", "ar"),
    ("HEBREW", "he"),
    ("DEVANAGARI", "hi"),
    ("THAI", "th"),
    ("HANGUL", "ko"),
    ("HIRAGANA", "ja"),
    ("KATAKANA", "ja"),
    ("CJK", "zh"),
)

MIN_WORDS = 6  # shorter turns ("Thanks!") carry too little evidence
MIN_FOREIGN_HITS = 3
DOMINANCE = 2.0  # the winning language needs this many times the runner-up's hits


@dataclass(frozen=True)
class Guess:
    language: str | None  # None: not enough evidence
    confidence: float  # 0..1
    foreign_hits: int = 0  # function words of languages other than English seen


@lru_cache(maxsize=256)
def _script_of(char: str) -> str | None:
    try:
        name = unicodedata.name(char)
    except ValueError:
        return None
    for prefix, lang in _SCRIPTS:
        if name.startswith(prefix):
            return lang
    return "latin" if "LATIN" in name else None


# Letters of another script that make a passage in it rather than a name or a symbol: an
# ideographic script says a word in one or two characters, an alphabet needs a few words.
MIN_IDEOGRAPHS = 6
MIN_SCRIPT_LETTERS = 10
_IDEOGRAPHIC = frozenset({"zh", "ja", "ko"})


def foreign_script(text: str) -> Guess | None:
    """A passage of a non-Latin script inside a turn, however short the rest is in
    Latin letters (a Chinese or Devanagari sentence has no spaces to count words by)."""
    if text.isascii():
        return None
    scripts = Counter(
        lang
        for c in text
        if c.isalpha() and not c.isascii()
        for lang in [_script_of(c)]
        if lang not in (None, "latin")
    )
    if not scripts:
        return None
    script, count = scripts.most_common(1)[0]
    needed = MIN_IDEOGRAPHS if script in _IDEOGRAPHIC else MIN_SCRIPT_LETTERS
    if count < needed:
        return None
    return Guess(script, round(min(1.0, count / (2 * needed)), 3))


def detect(text: str) -> Guess:
    """The language of ``text``, or None when the evidence is too thin."""
    if not text.isascii():  # plain ASCII is Latin script: skip the per-letter look-up
        letters = [c for c in text if c.isalpha()]
        if not letters:
            return Guess(None, 0.0)
        scripts = Counter(_script_of(c) for c in letters if not c.isascii())
        non_latin = [(n, s) for s, n in scripts.items() if s not in (None, "latin")]
        if non_latin:
            count, script = max(non_latin)
            if count / len(letters) >= 0.3:
                return Guess(script, min(1.0, count / len(letters)))
    words = [w.lower().replace("\u2019", "'") for w in _WORD.findall(text)]
    if len(words) < MIN_WORDS:
        return Guess(None, 0.0)
    table = _WORD_LANG
    hits = Counter(lang for w in words if (lang := table.get(w)) is not None)
    if not hits:
        return Guess(None, 0.0)
    foreign = sum(n for lang, n in hits.items() if lang != "en")
    ranked = hits.most_common(2)
    best, best_hits = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0
    if best_hits < MIN_FOREIGN_HITS and best != "en":
        return Guess(None, 0.0, foreign)
    if best_hits < DOMINANCE * max(runner_up, 0.5):
        return Guess(None, 0.0, foreign)
    # Sure when the winner has enough function words and most of them.
    share = best_hits / sum(hits.values())
    confidence = min(1.0, best_hits / 5) * min(1.0, share / 0.7)
    return Guess(best, round(confidence, 3), foreign)


def name_of(language: str) -> str:
    return LANGUAGE_NAMES.get(language, language)


# The most frequent words of written English (articles, pronouns, auxiliaries,
# prepositions, conjunctions and the commonest verbs, nouns and adjectives). They make up
# well over a third of any English passage; a passage in a language this module has no
# word list for (Estonian, Afrikaans, Polish...) contains almost none of them.
COMMON_ENGLISH = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "almost",
        "also",
        "always",
        "am",
        "an",
        "and",
        "another",
        "any",
        "are",
        "around",
        "as",
        "ask",
        "at",
        "away",
        "back",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "best",
        "better",
        "between",
        "both",
        "but",
        "by",
        "call",
        "came",
        "can",
        "can't",
        "could",
        "day",
        "did",
        "didn't",
        "do",
        "does",
        "doesn't",
        "doing",
        "don't",
        "done",
        "down",
        "during",
        "each",
        "early",
        "easy",
        "either",
        "else",
        "enough",
        "even",
        "ever",
        "every",
        "few",
        "find",
        "first",
        "for",
        "found",
        "from",
        "full",
        "get",
        "gets",
        "getting",
        "give",
        "go",
        "goes",
        "going",
        "good",
        "got",
        "great",
        "had",
        "has",
        "hasn't",
        "have",
        "haven't",
        "having",
        "he",
        "help",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "however",
        "i",
        "i'd",
        "i'll",
        "i'm",
        "i've",
        "if",
        "in",
        "into",
        "is",
        "isn't",
        "it",
        "it's",
        "its",
        "itself",
        "just",
        "keep",
        "kind",
        "know",
        "last",
        "later",
        "least",
        "less",
        "let",
        "like",
        "little",
        "long",
        "look",
        "lot",
        "made",
        "make",
        "makes",
        "many",
        "may",
        "maybe",
        "me",
        "might",
        "more",
        "most",
        "much",
        "must",
        "my",
        "myself",
        "need",
        "needs",
        "never",
        "new",
        "next",
        "no",
        "not",
        "now",
        "of",
        "off",
        "often",
        "on",
        "once",
        "one",
        "only",
        "or",
        "other",
        "others",
        "our",
        "ours",
        "out",
        "over",
        "own",
        "part",
        "people",
        "per",
        "please",
        "put",
        "quite",
        "rather",
        "really",
        "right",
        "said",
        "same",
        "say",
        "see",
        "should",
        "since",
        "so",
        "some",
        "something",
        "soon",
        "still",
        "such",
        "sure",
        "take",
        "than",
        "thank",
        "thanks",
        "that",
        "that's",
        "the",
        "their",
        "theirs",
        "them",
        "then",
        "there",
        "there's",
        "these",
        "they",
        "they're",
        "thing",
        "things",
        "think",
        "this",
        "those",
        "though",
        "through",
        "time",
        "to",
        "today",
        "too",
        "two",
        "under",
        "until",
        "up",
        "us",
        "use",
        "very",
        "want",
        "was",
        "wasn't",
        "way",
        "we",
        "we'll",
        "we're",
        "we've",
        "well",
        "were",
        "what",
        "what's",
        "when",
        "where",
        "whether",
        "which",
        "while",
        "who",
        "whole",
        "why",
        "will",
        "with",
        "within",
        "without",
        "won't",
        "work",
        "would",
        "wouldn't",
        "yes",
        "yet",
        "you",
        "you'd",
        "you'll",
        "you're",
        "you've",
        "your",
        "yours",
        "yourself",
    ]
)
# A run of sentences with this small a share of those words is not English: from this
# many words a defect, from the smaller number a suspicion (a quoted line of a foreign
# form, a price list). Measured over the seven corpora: clean English runs of 12 words
# or more hold 13% or more of them, except one quoted Dutch form (6%, 16 words).
FOREIGN_PASSAGE_SHARE = 0.12
FOREIGN_PASSAGE_WORDS = 18  # the longest in a clean turn: 16 (a quoted form)
FOREIGN_PASSAGE_POSSIBLE_WORDS = 12
LOOSE_PASSAGE_SHARE = 0.25
LOOSE_PASSAGE_HITS = 2


def english_share(text: str) -> tuple[float, int]:
    """The share of ``text``'s words that are common English words, and its word count."""
    words = [w.lower().replace("\u2019", "'") for w in _WORD.findall(text)]
    if not words:
        return 1.0, 0
    return sum(w in COMMON_ENGLISH for w in words) / len(words), len(words)


# Accented letters: a sentence with several accented words and little common English is
# in another Latin-script language even when short words ("an", "is", "de", "go") pass
# for English. Over the corpora no clean sentence has more than three such words.
ACCENTED_WORDS = 4
ACCENTED_SHARE = 0.15
ACCENTED_ENGLISH_SHARE = 0.4


def _accented(word: str) -> bool:
    return any(ord(ch) > 127 and ch.isalpha() and _script_of(ch) == "latin" for ch in word)


def accented_foreign(text: str) -> bool:
    """Whether ``text`` reads as another Latin-script language by its accented words."""
    if text.isascii():
        return False  # most sentences: no accented letter at all
    words = _WORD.findall(text)
    accented = sum(_accented(w) for w in words)
    if accented < ACCENTED_WORDS or accented < ACCENTED_SHARE * len(words):
        return False
    return english_share(text)[0] < ACCENTED_ENGLISH_SHARE


def _foreign_function_words(text: str) -> int:
    return sum(
        w.lower().replace("\u2019", "'") in _FOREIGN_FUNCTION_WORDS
        and w.lower() not in COMMON_ENGLISH
        for w in _WORD.findall(text)
    )


def unlike_english_runs(parts: list[str]) -> list[int]:
    """Word counts of the runs of consecutive sentences (``parts``) that are not English
    by their share of common English words (whatever language they are in), or by
    their accented words. A sentence with a little more English ("No quarto andar, é um
    andar a mais") joins a run when the run holds two function words of a language
    listed here: names and figures alone never make one."""
    runs: list[int] = []
    current = hits = 0
    sure = False

    def close() -> None:
        if current and (sure or hits >= LOOSE_PASSAGE_HITS):
            runs.append(current)

    for part in parts:
        share, words = english_share(part)
        if not words:
            continue  # an empty sentence neither ends a run nor adds to it
        strict = share < FOREIGN_PASSAGE_SHARE or accented_foreign(part)
        foreign = 0 if strict or share >= LOOSE_PASSAGE_SHARE else _foreign_function_words(part)
        if strict or foreign:
            current += words
            sure = sure or strict
            hits += foreign
            continue
        close()
        current = hits = 0
        sure = False
    close()
    return runs
