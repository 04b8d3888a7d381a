"""What clients say: the words and two-word phrases that set the comments of bad experiences
apart from the others, in English and Russian. Pure computation, no I/O.

A comment becomes a set of terms (`comment_terms`): its words and its two-word phrases,
each counted once per comment, so that a client who writes "queue" five times weighs as
much as one who writes it once, and a term's counts read as numbers of comments. The terms
of the negative comments are then set against those of the others by the log-odds ratio
with an informative Dirichlet prior (`log_odds`, Monroe, Colaresi and Quinn 2008).
"""

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

MIN_TOKEN_LENGTH = 2
MIN_COUNT = 3
PRIOR_SCALE = 0.1


class Language(StrEnum):
    en = "en"
    ru = "ru"


# Function words only. The well-known published lists (stop-words, NLTK, stopwords-iso) are
# made for search and topic models and drop the very words a complaint is made of: "long",
# "problem", "help", "never", "good" in English, "долго", "плохо", "хорошо" in Russian.
ENGLISH_STOP_WORDS = frozenset(
    """
    a about above after again against all am an and any are aren't as at be because been
    before being below between both but by can could couldn't did do does doing down during
    each few for from further had has have having he her here hers herself him himself his
    how i i'd i'll i'm i've if in into is it its itself let me more most my
    myself nor of off on once only or other ought our ours ourselves out over own same she
    should so some such than that that's the their theirs them themselves then there
    there's these they they'd they'll they're they've this those through to too under until
    up very was we we'd we'll we're we've were what when where which while who whom why
    will with would you you'd you'll you're you've your yours yourself yourselves also get
    got yet still even really just
    no not never nobody nothing don't doesn't didn't can't cannot won't wouldn't isn't
    wasn't weren't haven't hasn't hadn't shouldn't
    """.split()
)
RUSSIAN_STOP_WORDS = frozenset(
    """
    а без бы был была были было быть в вам вас весь во вот все всего всех вы где да даже
    для до его ее ей если есть еще же за здесь и из или им их к как какая какой когда
    кто ли либо меня мне мной мы на над наш нас него нее нет ни ним них но ну о об однако
    он она они оно от очень по под при про с со так также такой там те тем то того тоже
    той только том ту тут у уж уже хотя чего чей чем что чтобы чье чья эта эти это этого
    этой этом этот я мой моя мое мои свой своя свое свои себя себе сам сама сами вся всё
    ж ведь вон вроде разве лишь потом тогда кто-то что-то как-то где-то
    не ни нет никогда
    """.replace("ё", "е").split()
)
STOP_WORDS = ENGLISH_STOP_WORDS | RUSSIAN_STOP_WORDS
# Never listed alone, but they open a phrase: "not resolved", "не работает", "нет ответа".
NEGATIONS = frozenset(
    """
    no not never don't doesn't didn't can't cannot won't wouldn't isn't wasn't weren't
    haven't hasn't hadn't shouldn't couldn't aren't не нет ни никогда
    """.split()
)

# A URL or an e-mail address is one whitespace-free run with "://", "www." or "@" in it.
_URL = re.compile(r"\S*(?:://|www\.|@)\S*")
# What ends a phrase: any character other than a letter, a digit, white space or the
# apostrophe and hyphen that join words ("don't", "кто-то").
_BREAK = re.compile(r"[^\w\s'-]|_")
# A word: letters only, maybe joined by inner apostrophes or hyphens.
_LETTERS = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*")
_LATIN = re.compile(r"[a-zA-Z\u00c0-\u024f]")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")


def script(text: str) -> Language | None:
    """The language a comment is written in, told by its script: Cyrillic letters make it
    Russian, Latin ones English, whichever are more; None for a comment without letters."""
    latin, cyrillic = len(_LATIN.findall(text)), len(_CYRILLIC.findall(text))
    if latin == cyrillic == 0:
        return None
    return Language.ru if cyrillic > latin else Language.en


def _fold(text: str) -> str:
    """Lower case, ё read as е (Russian writes both for one letter), one apostrophe, and no
    URL or e-mail address (each becomes a break)."""
    text = text.lower().replace("ё", "е").replace("’", "'")
    if "@" in text or "://" in text or "www." in text:
        text = _URL.sub(" . ", text)
    return text


def _word(chunk: str) -> str:
    """A run of text between white space as a word: quotes and dashes around it dropped, and
    the English possessive ("client's" is "client")."""
    word = chunk.strip("'-")
    return word[:-2] if word.endswith("'s") else word


def _listable(word: str) -> bool:
    return (
        len(word) >= MIN_TOKEN_LENGTH
        and word not in STOP_WORDS
        and _LETTERS.fullmatch(word) is not None
    )


def comment_terms(text: str) -> set[str]:
    """The terms of one comment: its words (lower case, ё as е) that are no stop word, number
    or single letter, and its phrases of two such words written next to each other, or of a
    negation and such a word ("not resolved", "не работает").

    Words are next to each other when only white space parts them: punctuation, a URL, an
    e-mail address, a number or a dropped word between them ends the phrase.
    """
    terms: set[str] = set()
    for clause in _BREAK.split(_fold(text)):
        previous: str | None = None  # the word before, if it may open a phrase
        for chunk in clause.split():
            word = _word(chunk)
            if _listable(word):
                terms.add(word)
                if previous is not None:
                    terms.add(f"{previous} {word}")
                previous = word
            else:
                previous = word if word in NEGATIONS else None
    return terms


@dataclass(frozen=True, slots=True)
class TermScore:
    """One term's log-odds ratio between the two groups, its z-score and its counts."""

    term: str
    delta: float
    z: float
    negative_count: int
    other_count: int


def log_odds(
    negative: Mapping[str, int], other: Mapping[str, int], *, prior_scale: float = PRIOR_SCALE
) -> list[TermScore]:
    """Every term's log-odds ratio of the negative group against the other, with an
    informative Dirichlet prior, and its z-score (Monroe, Colaresi and Quinn 2008, "Fightin'
    Words", Political Analysis 16(4), eq. 16-22):

        delta_w = log((y_w^i + a_w) / (n^i + a0 - y_w^i - a_w))
                - log((y_w^j + a_w) / (n^j + a0 - y_w^j - a_w))
        var(delta_w) ~ 1/(y_w^i + a_w) + 1/(y_w^j + a_w),   z_w = delta_w / sqrt(var)

    y_w^i, y_w^j are the term's counts in the negative and the other comments, n^i, n^j the
    sums of all terms' counts in each. The prior is the pooled frequency of the term in both
    groups, a_w = a0 * (y_w^i + y_w^j) / (n^i + n^j), with a0 = prior_scale * (n^i + n^j).
    At the default 0.1 the prior weighs a tenth of the comments (1 would weigh as much as
    the comments themselves, seen once more without their sentiment, and halve the z-scores
    of a window's few hundred comments): enough to pull the log-odds of rare terms towards
    zero, so that a word seen in three comments does not outrank one seen in a hundred,
    while a term in most negative comments and few others stands out at small counts.

    Terms whose odds are undefined (the only term of both groups) are left out.
    """
    n_i, n_j = sum(negative.values()), sum(other.values())
    n = n_i + n_j
    if n_i == 0 or n_j == 0:
        return []
    alpha0 = prior_scale * n
    scores = []
    for term in negative.keys() | other.keys():
        y_i, y_j = negative.get(term, 0), other.get(term, 0)
        alpha = alpha0 * (y_i + y_j) / n
        rest_i, rest_j = n_i + alpha0 - y_i - alpha, n_j + alpha0 - y_j - alpha
        if alpha <= 0 or rest_i <= 0 or rest_j <= 0:
            continue
        delta = math.log((y_i + alpha) / rest_i) - math.log((y_j + alpha) / rest_j)
        sigma = math.sqrt(1 / (y_i + alpha) + 1 / (y_j + alpha))
        scores.append(TermScore(term, delta, delta / sigma, y_i, y_j))
    return scores


def distinctive(
    scores: Iterable[TermScore], *, limit: int, min_count: int = MIN_COUNT
) -> list[TermScore]:
    """The terms most distinctive of bad experiences: a positive z, seen in at least
    `min_count` negative comments, by z descending (ties by term)."""
    kept = [s for s in scores if s.z > 0 and s.negative_count >= min_count]
    return sorted(kept, key=lambda s: (-s.z, s.term))[:limit]
