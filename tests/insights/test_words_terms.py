"""The words of comments and the log-odds ratio that sets negative comments apart: plain
numbers, checked by hand and against an independent numpy computation."""

import math
import random

import numpy as np
import pytest

from app.insights.words import (
    ENGLISH_STOP_WORDS,
    NEGATIONS,
    RUSSIAN_STOP_WORDS,
    Language,
    TermScore,
    comment_terms,
    distinctive,
    log_odds,
    script,
)


def test_english_words_and_phrases_leave_out_stop_words_numbers_and_links() -> None:
    terms = comment_terms(
        "I waited in the LONG queue for 40 minutes, and the queue never moved! "
        "See https://example.org/status or write to help@example.org. The agent's answer: 2nd."
    )
    assert terms == {
        "waited",
        "long",
        "queue",
        "long queue",
        "minutes",
        "moved",
        "never moved",  # a negation only opens a phrase: no "queue never"
        "see",
        "write",
        "agent",
        "answer",
        "agent answer",
    }


def test_a_negation_opens_a_phrase_but_is_never_a_term_alone() -> None:
    assert comment_terms("Not resolved, didn't call back") == {
        "resolved",
        "not resolved",
        "call",
        "back",
        "didn't call",
        "call back",
    }
    assert NEGATIONS <= ENGLISH_STOP_WORDS | RUSSIAN_STOP_WORDS


def test_russian_words_fold_yo_and_keep_hyphenated_words() -> None:
    terms = comment_terms("Ждём ответа уже неделю. Очередь не двигается, ЕЩЁ раз: по-моему, ужас")
    assert terms == {
        "ждем",
        "ответа",
        "ждем ответа",
        "неделю",
        "очередь",
        "двигается",
        "не двигается",
        "раз",
        "по-моему",
        "ужас",
    }


def test_phrases_stop_at_punctuation_and_dropped_words() -> None:
    assert comment_terms("queue, staff") == {"queue", "staff"}
    assert comment_terms("queue 3 staff") == {"queue", "staff"}
    assert comment_terms("queue - staff") == {"queue", "staff"}
    assert comment_terms("queue the staff") == {"queue", "staff"}
    assert comment_terms("очередь x персонал") == {"очередь", "персонал"}


def test_stop_words_are_lower_case_and_folded() -> None:
    for word in ENGLISH_STOP_WORDS | RUSSIAN_STOP_WORDS:
        assert word == word.lower()
        assert "ё" not in word
        assert comment_terms(word) == set()


def test_the_script_tells_the_language() -> None:
    assert script("Очень долго, ok") is Language.ru
    assert script("Very slow, спасибо") is Language.en
    assert script("12345 !!!") is None


def test_log_odds_by_hand() -> None:
    # prior_scale 1: n^i = n^j = 4, n = 8, a0 = 8, a_queue = 8 * 4/8 = 4:
    # delta = log((3+4)/(4+8-3-4)) - log((1+4)/(4+8-1-4)) = log(7/5) - log(5/7) = 2 log 1.4
    # var = 1/(3+4) + 1/(1+4) = 12/35
    scores = {
        s.term: s
        for s in log_odds({"queue": 3, "staff": 1}, {"queue": 1, "staff": 3}, prior_scale=1.0)
    }
    queue, staff = scores["queue"], scores["staff"]
    assert queue.delta == pytest.approx(0.6729444732)
    assert queue.z == pytest.approx(0.6729444732 / 0.5855400438)
    assert (queue.negative_count, queue.other_count) == (3, 1)
    assert staff.delta == pytest.approx(-queue.delta)
    assert staff.z == pytest.approx(-queue.z)


def test_log_odds_by_hand_with_a_weaker_prior() -> None:
    # n^i = 10, n^j = 30, n = 40, a0 = 0.5 * 40 = 20, a_w = 20 * 8/40 = 4:
    # delta = log((6+4)/(10+20-6-4)) - log((2+4)/(30+20-2-4)) = log(10/20) - log(6/44)
    # var = 1/10 + 1/6
    scores = {
        s.term: s for s in log_odds({"wait": 6, "x": 4}, {"wait": 2, "y": 28}, prior_scale=0.5)
    }
    delta = math.log(10 / 20) - math.log(6 / 44)
    assert scores["wait"].delta == pytest.approx(delta)
    assert scores["wait"].z == pytest.approx(delta / math.sqrt(1 / 10 + 1 / 6))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("prior_scale", [0.1, 1.0, 3.0])
def test_log_odds_matches_a_vectorised_computation(seed: int, prior_scale: float) -> None:
    rng = np.random.default_rng(seed)
    vocabulary = [f"w{i}" for i in range(60)]
    y_i = rng.poisson(rng.gamma(0.5, 6.0, size=60))
    y_j = rng.poisson(rng.gamma(0.5, 6.0, size=60))
    negative = {w: int(c) for w, c in zip(vocabulary, y_i, strict=True) if c}
    other = {w: int(c) for w, c in zip(vocabulary, y_j, strict=True) if c}
    seen = (y_i + y_j) > 0
    y_i, y_j = y_i[seen].astype(float), y_j[seen].astype(float)
    n_i, n_j = y_i.sum(), y_j.sum()
    alpha = prior_scale * (y_i + y_j)  # a0 * (y_w / n) with a0 = prior_scale * n
    alpha0 = prior_scale * (n_i + n_j)
    delta = np.log((y_i + alpha) / (n_i + alpha0 - y_i - alpha)) - np.log(
        (y_j + alpha) / (n_j + alpha0 - y_j - alpha)
    )
    z = delta / np.sqrt(1 / (y_i + alpha) + 1 / (y_j + alpha))
    expected = dict(zip(np.array(vocabulary)[seen], z, strict=True))

    got = {s.term: s.z for s in log_odds(negative, other, prior_scale=prior_scale)}
    assert got.keys() == expected.keys()
    for term, value in expected.items():
        assert got[term] == pytest.approx(value, rel=1e-9)


def test_no_scores_without_both_groups() -> None:
    assert log_odds({"queue": 3}, {}) == []
    assert log_odds({}, {"queue": 3}) == []
    assert log_odds({"queue": 3}, {"queue": 2}) == []  # one term: no odds to compare


def test_distinctive_keeps_positive_z_and_enough_negative_comments() -> None:
    scores = [
        TermScore("rare", 2.0, 3.0, 2, 0),
        TermScore("queue", 1.0, 2.5, 5, 1),
        TermScore("staff", -1.0, -2.5, 3, 9),
        TermScore("wait", 1.0, 2.5, 4, 1),
        TermScore("slow", 0.5, 1.0, 3, 1),
    ]
    assert [s.term for s in distinctive(scores, limit=10)] == ["queue", "wait", "slow"]
    assert [s.term for s in distinctive(scores, limit=2)] == ["queue", "wait"]
    assert [s.term for s in distinctive(scores, limit=10, min_count=2)][0] == "rare"


def test_a_planted_word_tops_random_comments() -> None:
    rng = random.Random(7)
    filler = ["service", "agent", "phone", "answer", "order", "account", "email", "today"]
    negative: dict[str, int] = {}
    other: dict[str, int] = {}
    for group, planted_share in ((negative, 0.6), (other, 0.03)):
        for _ in range(200):
            words = rng.sample(filler, 3) + (["queue"] if rng.random() < planted_share else [])
            for term in comment_terms(", ".join(words)):
                group[term] = group.get(term, 0) + 1
    assert distinctive(log_odds(negative, other), limit=1)[0].term == "queue"
