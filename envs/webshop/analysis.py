"""English text analysis as upstream WebShop's Lucene index does it.

Upstream indexes products with Anserini's default English analyzer (the one
``pyserini.index.lucene`` uses unless told otherwise) and analyses queries
with the same chain:

1. Lucene's ``StandardTokenizer`` (Unicode word boundaries): runs of letters
   and digits; ``.``, ``'`` and ``:`` join two letters (``u.s``, ``women's``),
   ``.``, ``,``, ``;`` and ``'`` join two digits (``3.4``, ``1,000``);
2. ``EnglishPossessiveFilter``: a trailing ``'s`` is dropped;
3. lower-casing;
4. Lucene's English stop words (:data:`STOP_WORDS`) are dropped;
5. the Porter stemmer in the form Lucene ships (:func:`porter_stem`).

:func:`analyze` returns the terms in order, repeats kept. It matched Lucene's
analyzer (Anserini 0.14.3) on every document and goal of the shipped
catalogue and on a 128,376-word vocabulary.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

__all__ = ["STOP_WORDS", "MAX_TOKEN_LENGTH", "analyze", "porter_stem", "tokenize"]

#: Lucene's ``EnglishAnalyzer.ENGLISH_STOP_WORDS_SET`` (Anserini's default stop list).
STOP_WORDS: frozenset[str] = frozenset(
    """
    a an and are as at be but by for if in into is it no not of on or such that
    the their then there these they this to was will with
    """.split()
)

#: ``StandardTokenizer`` splits longer tokens into pieces of this many characters.
MAX_TOKEN_LENGTH = 255

# Characters that are tokens on their own: emoji (Extended_Pictographic), CJK
# ideographs and radicals, and Hiragana.
_SINGLE_RANGES = (
    (0xA9, 0xA9), (0xAE, 0xAE), (0x203C, 0x203C), (0x2049, 0x2049), (0x2122, 0x2122),
    (0x2139, 0x2139), (0x2194, 0x2199), (0x21A9, 0x21AA), (0x231A, 0x231B), (0x2328, 0x2328),
    (0x2388, 0x2388), (0x23CF, 0x23CF), (0x23E9, 0x23F3), (0x23F8, 0x23FA), (0x24C2, 0x24C2),
    (0x25AA, 0x25AB), (0x25B6, 0x25B6), (0x25C0, 0x25C0), (0x25FB, 0x25FE), (0x2600, 0x2605),
    (0x2607, 0x2612), (0x2614, 0x2685), (0x2690, 0x2705), (0x2708, 0x2712), (0x2714, 0x2714),
    (0x2716, 0x2716), (0x271D, 0x271D), (0x2721, 0x2721), (0x2728, 0x2728), (0x2733, 0x2734),
    (0x2744, 0x2744), (0x2747, 0x2747), (0x274C, 0x274C), (0x274E, 0x274E), (0x2753, 0x2755),
    (0x2757, 0x2757), (0x2763, 0x2767), (0x2795, 0x2797), (0x27A1, 0x27A1), (0x27B0, 0x27B0),
    (0x27BF, 0x27BF), (0x2934, 0x2935), (0x2B05, 0x2B07), (0x2B1B, 0x2B1C), (0x2B50, 0x2B50),
    (0x2B55, 0x2B55), (0x2E80, 0x2FDF), (0x3005, 0x3007), (0x3021, 0x3029), (0x3030, 0x3030),
    (0x3038, 0x303D), (0x3041, 0x309F), (0x3297, 0x3297), (0x3299, 0x3299), (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x1F000, 0x1F0FF), (0x1F10D, 0x1F10F),
    (0x1F12F, 0x1F12F), (0x1F16C, 0x1F171), (0x1F17E, 0x1F17F), (0x1F18E, 0x1F18E),
    (0x1F191, 0x1F19A), (0x1F1AD, 0x1F1E5), (0x1F200, 0x1F20F), (0x1F21A, 0x1F21A),
    (0x1F22F, 0x1F22F), (0x1F232, 0x1F23A), (0x1F23C, 0x1F23F), (0x1F249, 0x1F3FA),
    (0x1F400, 0x1F53D), (0x1F546, 0x1F64F), (0x1F680, 0x1F6FF), (0x1F774, 0x1F77F),
    (0x1F7D5, 0x1F7FF), (0x1F80C, 0x1F80F), (0x1F848, 0x1F84F), (0x1F85A, 0x1F85F),
    (0x1F888, 0x1F88F), (0x1F8AE, 0x1F8FF), (0x1F90C, 0x1F93A), (0x1F93C, 0x1F945),
    (0x1F947, 0x1FAFF), (0x1FC00, 0x1FFFD), (0x20000, 0x2FFFD),
)  # fmt: skip
# Scripts written without spaces (Thai, Lao, Myanmar, Khmer, ...), and Katakana:
# each forms runs of its own, never joined to Latin letters.
_SEA_RANGES = (
    (0x0E00, 0x0EFF),
    (0x1000, 0x109F),
    (0x1780, 0x17FF),
    (0x1950, 0x19DF),
    (0x1A20, 0x1AAF),
)
_KATAKANA_RANGES = ((0x30A0, 0x30FF), (0x31F0, 0x31FF), (0x32D0, 0x32FE), (0xFF66, 0xFF9F))
# Between two letters these join a word (MidLetter, MidNumLet, single quote) ...
_MID_LETTER = (
    ".:'\u00b7\u0387\u02d7\u05f4\u2018\u2019\u2024\u2027\ufe13\ufe52\ufe55\uff07\uff0e\uff1a"
)
# ... and between two digits these (MidNum, MidNumLet, single quote).
_MID_NUM = (
    ".,;'\u037e\u0589\u060c\u060d\u066c\u07f8\u2018\u2019\u2024\u2044\ufe10\ufe14\ufe50"
    "\ufe52\ufe54\uff07\uff0c\uff0e\uff1b"
)
_APOSTROPHES = "'\u2019\uff07"


def _char_class(ranges: list[tuple[int, int]]) -> str:
    return "".join(
        re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}"
        for lo, hi in ranges
    )


def _merge(codes: list[int]) -> list[tuple[int, int]]:
    ranges: list[list[int]] = []
    for code in codes:
        if ranges and code == ranges[-1][1] + 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return [(lo, hi) for lo, hi in ranges]


# ASCII text (most product text) needs none of the Unicode tables.
_ASCII_TOKEN = re.compile(
    r"[A-Za-z0-9_]+(?:(?:(?<=[A-Za-z])[.:'](?=[A-Za-z])|(?<=[0-9])[.,;'](?=[0-9]))[A-Za-z0-9_]+)*"
)


@lru_cache(maxsize=1)
def _token_pattern() -> re.Pattern[str]:
    """The tokenizer's regular expression, built once from Python's Unicode tables."""
    special = bytearray(0x30000)
    for lo, hi in _SINGLE_RANGES + _SEA_RANGES + _KATAKANA_RANGES:
        special[lo : min(hi, 0x2FFFF) + 1] = b"\x01" * (min(hi, 0x2FFFF) + 1 - lo)
    letters, digits, connectors, extend = [], [], [], []
    for code in range(0x80, 0x30000):
        if special[code]:
            continue
        category = unicodedata.category(chr(code))
        if category[0] == "L" or category == "Nl" or 0x24B6 <= code <= 0x24E9:
            letters.append(code)
        elif category == "Nd":
            digits.append(code)
        elif category == "Pc":
            connectors.append(code)
        elif category in ("Mn", "Mc", "Me", "Cf"):
            extend.append(code)
    letter = f"[A-Za-z{_char_class(_merge(letters))}]"
    digit = f"[0-9{_char_class(_merge(digits))}]"
    word_char = f"[A-Za-z0-9_{_char_class(_merge(sorted(letters + digits + connectors)))}]"
    extend_char = f"[{_char_class(_merge(extend))}]"
    piece = f"{word_char}(?:{word_char}|{extend_char})*"
    joiner = f"(?:(?<={letter})[{_MID_LETTER}](?={letter})|(?<={digit})[{_MID_NUM}](?={digit}))"
    return re.compile(
        f"[{_char_class(list(_SINGLE_RANGES))}]"
        f"|[{_char_class(list(_SEA_RANGES))}]+"
        f"|[{_char_class(list(_KATAKANA_RANGES))}]+"
        f"|{piece}(?:{joiner}{piece})*"
    )


_VOWELS = frozenset("aeiou")


def tokenize(text: str) -> list[str]:
    """``StandardTokenizer``'s tokens of ``text`` (case kept), in order."""
    tokens = []
    pattern = _ASCII_TOKEN if text.isascii() else _token_pattern()
    for match in pattern.finditer(text):
        token = match.group()
        # Connectors (ExtendNumLet: "_") join anything, but alone are no word.
        if any(c != "_" and unicodedata.category(c) != "Pc" for c in token):
            for start in range(0, len(token), MAX_TOKEN_LENGTH):
                tokens.append(token[start : start + MAX_TOKEN_LENGTH])
    return tokens


def analyze(text: str) -> list[str]:
    """The index terms of ``text``: tokens, possessives stripped, lower-cased, stop words out, stemmed."""
    terms = []
    for token in tokenize(text):
        if len(token) >= 2 and token[-1] in "sS" and token[-2] in _APOSTROPHES:
            token = token[:-2]
        # Lucene lower-cases code point by code point (no final sigma, no dotted i).
        token = token.lower() if token.isascii() else "".join(c.lower()[0] for c in token)
        if token and token not in STOP_WORDS:
            terms.append(_stem(token))
    return terms


@lru_cache(maxsize=1 << 18)  # a large catalogue has a few hundred thousand words
def _stem(word: str) -> str:
    return porter_stem(word)


class _Word:
    """A word being stemmed: the letters ``b[:k + 1]`` are live, ``j`` marks a suffix's start."""

    __slots__ = ("b", "k", "j")

    def __init__(self, word: str) -> None:
        self.b = list(word)
        self.k = len(word) - 1
        self.j = 0

    def consonant(self, i: int) -> bool:
        ch = self.b[i]
        if ch in _VOWELS:
            return False
        if ch == "y":
            return i == 0 or not self.consonant(i - 1)
        return True

    def measure(self) -> int:
        """The number of vowel-consonant sequences in ``b[:j + 1]`` (Porter's m)."""
        n, i, j = 0, 0, self.j
        while i <= j and self.consonant(i):
            i += 1
        while i <= j:
            while i <= j and not self.consonant(i):
                i += 1
            if i > j:
                break
            n += 1
            while i <= j and self.consonant(i):
                i += 1
        return n

    def vowel_in_stem(self) -> bool:
        return any(not self.consonant(i) for i in range(self.j + 1))

    def double_consonant(self, i: int) -> bool:
        return i >= 1 and self.b[i] == self.b[i - 1] and self.consonant(i)

    def cvc(self, i: int) -> bool:
        """Consonant-vowel-consonant ending at ``i``, the last not w, x or y."""
        return (
            i >= 2
            and self.consonant(i)
            and not self.consonant(i - 1)
            and self.consonant(i - 2)
            and self.b[i] not in "wxy"
        )

    def ends(self, suffix: str) -> bool:
        start = self.k - len(suffix) + 1
        if start < 0 or "".join(self.b[start : self.k + 1]) != suffix:
            return False
        self.j = self.k - len(suffix)
        return True

    def set_to(self, suffix: str) -> None:
        self.b[self.j + 1 :] = list(suffix)
        self.k = self.j + len(suffix)

    def replace(self, suffix: str) -> None:
        if self.measure() > 0:
            self.set_to(suffix)

    def text(self) -> str:
        return "".join(self.b[: self.k + 1])


# Suffix rules of steps 2 and 3 (the paper's numbering), grouped as Lucene tries them:
# by the letter before the last (step 2) or the last letter (step 3); first match wins.
_STEP2 = {
    "a": (("ational", "ate"), ("tional", "tion")),
    "c": (("enci", "ence"), ("anci", "ance")),
    "e": (("izer", "ize"),),
    "l": (("bli", "ble"), ("alli", "al"), ("entli", "ent"), ("eli", "e"), ("ousli", "ous")),
    "o": (("ization", "ize"), ("ation", "ate"), ("ator", "ate")),
    "s": (("alism", "al"), ("iveness", "ive"), ("fulness", "ful"), ("ousness", "ous")),
    "t": (("aliti", "al"), ("iviti", "ive"), ("biliti", "ble")),
    "g": (("logi", "log"),),
}
_STEP3 = {
    "e": (("icate", "ic"), ("ative", ""), ("alize", "al")),
    "i": (("iciti", "ic"),),
    "l": (("ical", "ic"), ("ful", "")),
    "s": (("ness", ""),),
}
_STEP4 = {
    "a": ("al",),
    "c": ("ance", "ence"),
    "e": ("er",),
    "i": ("ic",),
    "l": ("able", "ible"),
    "n": ("ant", "ement", "ment", "ent"),
    "o": ("ion", "ou"),
    "s": ("ism",),
    "t": ("ate", "iti"),
    "u": ("ous",),
    "v": ("ive",),
    "z": ("ize",),
}


def porter_stem(word: str) -> str:
    """The Porter stem of a lower-cased ``word``, as Lucene's ``PorterStemmer`` computes it.

    That is Martin Porter's reference implementation: the published algorithm
    plus its known departures (``bli`` -> ``ble``, ``logi`` -> ``log``, any
    doubled consonant undoubled after ``-ed``/``-ing``). Words of one or two
    characters are returned unchanged.
    """
    if len(word) <= 2:
        return word
    w = _Word(word)
    _step1ab(w)
    # Step 1c: a final y after a vowel-bearing stem becomes i.
    if w.ends("y") and w.vowel_in_stem():
        w.b[w.k] = "i"
    if w.k > 0:
        for suffix, replacement in _STEP2.get(w.b[w.k - 1], ()):
            if w.ends(suffix):
                w.replace(replacement)
                break
    for suffix, replacement in _STEP3.get(w.b[w.k], ()):
        if w.ends(suffix):
            w.replace(replacement)
            break
    if w.k > 0:
        _step4(w)
    _step5(w)
    return w.text()


def _step1ab(w: _Word) -> None:
    """Plurals and -ed/-ing."""
    if w.b[w.k] == "s":
        if w.ends("sses"):
            w.k -= 2
        elif w.ends("ies"):
            w.set_to("i")
        elif w.b[w.k - 1] != "s":
            w.k -= 1
    if w.ends("eed"):
        if w.measure() > 0:
            w.k -= 1
    elif (w.ends("ed") or w.ends("ing")) and w.vowel_in_stem():
        w.k = w.j
        if w.ends("at"):
            w.set_to("ate")
        elif w.ends("bl"):
            w.set_to("ble")
        elif w.ends("iz"):
            w.set_to("ize")
        elif w.double_consonant(w.k):
            if w.b[w.k] not in "lsz":
                w.k -= 1
        elif w.measure() == 1 and w.cvc(w.k):
            w.set_to("e")


def _step4(w: _Word) -> None:
    """Drop a suffix (-al, -ance, -er, ...) from a stem of measure > 1."""
    for suffix in _STEP4.get(w.b[w.k - 1], ()):
        if w.ends(suffix):
            if suffix == "ion" and not (w.j >= 0 and w.b[w.j] in "st"):
                continue
            break
    else:
        return
    if w.measure() > 1:
        w.k = w.j


def _step5(w: _Word) -> None:
    """A final -e, and a final -ll, on long enough stems."""
    w.j = w.k
    if w.b[w.k] == "e":
        m = w.measure()
        if m > 1 or (m == 1 and not w.cvc(w.k - 1)):
            w.k -= 1
    if w.b[w.k] == "l" and w.double_consonant(w.k) and w.measure() > 1:
        w.k -= 1
