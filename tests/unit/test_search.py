"""The list's text search rules (domain/search.py): words, prefixes, phrases, ids."""

from __future__ import annotations

from chalicelib.domain.search import matches_all, parse_query, searchable, words


def hit(q: str, text: str, ids: tuple[str, ...] = ()) -> bool:
    return matches_all(parse_query(q), searchable(text), ids)


def test_words_ignore_case_and_punctuation() -> None:
    assert words("Pre-Retiree, 65+: “Help!”") == ["pre", "retiree", "65", "help"]
    assert words("Ünïcode — Straße") == ["ünïcode", "strasse"]
    assert searchable("") == " "


def test_unquoted_words_match_whole_words_or_their_start() -> None:
    text = "Topic 70 is about retirement planning"
    assert hit("retire", text) and hit("RETIREMENT", text) and hit("topic 7", text)
    assert not hit("tire", text)  # never inside a word
    assert not hit("0", text)
    assert hit("planning topic", text)  # any order
    assert not hit("topic zebra", text)  # all of them


def test_digits_never_match_inside_ids() -> None:
    cid = "conv_7f3a9e71c0d2b4a5e6f7"
    assert not hit("7", "Topic 1", (cid,))
    assert hit(cid, "Topic 1", (cid,))
    assert hit(cid.upper(), "Topic 1", (cid,))
    assert not hit(cid[:-1], "Topic 1", (cid,))  # an id matches whole, not as a prefix
    assert not hit("7f3a9e71", "Topic 1", (cid,))


def test_quoted_phrases_match_whole_words_in_order() -> None:
    assert hit('"Topic 7"', "this is topic 7.")
    assert not hit('"Topic 7"', "this is topic 70")
    assert not hit('"topic 7"', "7 topic")
    assert not hit('"topic 7"', "topic, then 7")  # side by side
    assert hit('"topic, 7"', "topic 7")  # punctuation does not count
    assert hit("“topic 7” fees", "Fees for topic 7")  # typographic quotes
    assert hit('"topic 7', "topic 7")  # a lone quote runs to the end
    assert parse_query('"" - x') == parse_query("x")


def test_a_word_with_inner_punctuation_is_its_words_side_by_side() -> None:
    assert hit("pre-retiree", "A Pre-Retiree asks")
    assert hit("pre-retir", "A Pre-Retiree asks")
    assert not hit("pre-retiree", "pre tax retiree")
    assert hit("401(k)", "my 401k? no, my 401(k) plan")


def test_query_keys_tell_phrases_from_words() -> None:
    assert parse_query('"a b"')[0].key() != parse_query("a b")[0].key()
    assert [t.key() for t in parse_query("A  b")] == [t.key() for t in parse_query("a b")]
