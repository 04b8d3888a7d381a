"""GET /v1/moments/{key}/words: the terms that set negative comments apart, on planted data."""

import csv
import io
import random
from typing import Any

import httpx
import pytest

from app.insights import service
from app.insights.words import STOP_WORDS, comment_terms
from tests.insights.builders import add_moment, get_json, post, touchpoint, window

pytestmark = pytest.mark.anyio

OCTOBER = window("2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z")
ENGLISH_FILLER = ["service", "agent", "phone", "answer", "order", "account", "email", "today"]
RUSSIAN_FILLER = ["сервис", "оператор", "телефон", "ответ", "заказ", "счет", "почта", "сегодня"]


def words_path(moment: str) -> str:
    return f"/v1/moments/{moment}/words"


def commented(
    moment: str, day: int, comments: list[tuple[int, str]], **fields: Any
) -> list[dict[str, Any]]:
    """One csat5 touchpoint per (value, comment) on an October day, a minute apart."""
    return [
        touchpoint(
            moment,
            f"2026-10-{day:02d}T10:{minute:02d}:00Z",
            scale="csat5",
            value=value,
            comment=comment,
        )
        | fields
        for minute, (value, comment) in enumerate(comments)
    ]


def planted(
    rng: random.Random, filler: list[str], *, value: int, count: int, planted: str, every: int
) -> list[tuple[int, str]]:
    """`count` comments of three filler words; every `every`-th also holds `planted`."""
    comments = []
    for position in range(count):
        words = rng.sample(filler, 3)
        if position % every == 0:
            words.insert(1, planted)
        comments.append((value, ", ".join(words)))
    return comments


def english(rng: random.Random) -> list[tuple[int, str]]:
    """20 negative comments, 16 with "queue" (10 of them a "long queue") and stop words
    galore; 20 positive ones, one with "queue"."""
    negative = [
        (1, f"The {a} was in the long queue and we were so {b}")
        for a, b in (rng.sample(ENGLISH_FILLER, 2) for _ in range(10))
    ]
    negative += planted(rng, ENGLISH_FILLER, value=2, count=6, planted="queue", every=1)
    negative += planted(rng, ENGLISH_FILLER, value=1, count=4, planted="queue", every=5)[1:]
    negative.append((1, "The the the and and of of"))
    positive = planted(rng, ENGLISH_FILLER, value=5, count=20, planted="queue", every=20)
    return negative + positive


def russian(rng: random.Random) -> list[tuple[int, str]]:
    """20 negative comments, 15 with "ожидание" (written with ё folding in "ждём"/"ждем"),
    20 positive ones, one with "ожидание"."""
    negative = planted(rng, RUSSIAN_FILLER, value=1, count=15, planted="ожидание", every=1)
    negative += [(1, "Всё ещё ждём ответа"), (2, "И всё же ждем, и не дождались")]
    negative += planted(rng, RUSSIAN_FILLER, value=2, count=3, planted="x", every=99)
    positive = planted(rng, RUSSIAN_FILLER, value=4, count=20, planted="ожидание", every=20)
    return negative + positive


def terms(answer: dict[str, Any]) -> list[str]:
    return [item["term"] for item in answer["data"]]


def folded(text: str) -> str:
    return text.lower().replace("ё", "е")


async def test_a_planted_english_word_tops_the_list(client: httpx.AsyncClient) -> None:
    await add_moment(client, "m.en")
    rng = random.Random(1)
    items = commented("m.en", 5, english(rng))
    # Comments without a rating are neither negative nor other: they never count.
    items += [
        touchpoint("m.en", f"2026-10-06T11:{m:02d}:00Z", comment="a queue again") for m in range(5)
    ]
    await post(client, items)

    answer = await get_json(client, words_path("m.en"), OCTOBER)

    top = answer["data"][0]
    assert top["term"] == "queue"
    assert (top["negative_count"], top["other_count"]) == (16, 1)
    assert top["kind"] == "word"
    assert top["z"] > 2
    phrase = next(item for item in answer["data"] if item["term"] == "long queue")
    assert (phrase["kind"], phrase["negative_count"], phrase["other_count"]) == ("phrase", 10, 0)
    assert not set(terms(answer)) & STOP_WORDS
    assert all(item["z"] > 0 and item["negative_count"] >= 3 for item in answer["data"])
    zs = [item["z"] for item in answer["data"]]
    assert zs == sorted(zs, reverse=True)
    assert answer["negative_comments"] == 20
    assert answer["other_comments"] == 20
    assert (answer["comments_total"], answer["comments_read"], answer["truncated"]) == (
        40,
        40,
        False,
    )
    assert answer["lang"] == "auto"
    assert answer["method"]["min_count"] == 3
    assert answer["method"]["max_comments"] == service.WORDS_MAX_COMMENTS


async def test_examples_are_the_latest_negative_comments_holding_the_term(
    client: httpx.AsyncClient,
) -> None:
    await add_moment(client, "m.en")
    await post(client, commented("m.en", 5, english(random.Random(2))))

    answer = await get_json(client, words_path("m.en"), OCTOBER)

    assert answer["data"]
    for item in answer["data"]:
        assert 1 <= len(item["examples"]) <= 3
        for example in item["examples"]:
            assert item["term"] in comment_terms(example["comment"])
            assert item["term"].split()[0] in folded(example["comment"])
        times = [example["occurred_at"] for example in item["examples"]]
        assert times == sorted(times, reverse=True)
    queue = answer["data"][0]
    # The negative comments holding "queue" are posted at 10:00-10:15, a positive one at 10:20.
    assert [e["occurred_at"] for e in queue["examples"]] == [
        "2026-10-05T10:15:00Z",
        "2026-10-05T10:14:00Z",
        "2026-10-05T10:13:00Z",
    ]


async def test_a_planted_russian_word_tops_the_list(client: httpx.AsyncClient) -> None:
    await add_moment(client, "m.ru")
    await post(client, commented("m.ru", 5, russian(random.Random(3))))

    answer = await get_json(client, words_path("m.ru"), OCTOBER)

    top = answer["data"][0]
    assert top["term"] == "ожидание"
    assert (top["negative_count"], top["other_count"]) == (15, 1)
    assert not set(terms(answer)) & STOP_WORDS
    # "ждём" and "ждем" are one word, and "всё" and "ещё" stop words once folded.
    listed = {item["term"]: item for item in answer["data"]}
    assert "ждем" not in listed  # two comments only: under the minimum of 3
    everything = await get_json(client, words_path("m.ru"), {**OCTOBER, "limit": 100})
    assert all("ё" not in term for term in terms(everything))


async def test_yo_and_ye_count_as_one_word(client: httpx.AsyncClient) -> None:
    await add_moment(client, "m.ru")
    comments = [(1, "Ждём ответа"), (1, "ждем ответа"), (2, "ЖДЁМ, ответа нет")]
    comments += [(5, f"спасибо {word}") for word in RUSSIAN_FILLER]
    await post(client, commented("m.ru", 5, comments))

    answer = await get_json(client, words_path("m.ru"), OCTOBER)

    listed = {item["term"]: item for item in answer["data"]}
    assert listed["ждем"]["negative_count"] == 3
    assert "ждем ответа" not in listed  # a comma parts the third: 2, under the minimum of 3
    assert listed["ответа"]["negative_count"] == 3


async def test_lang_keeps_the_comments_of_one_script(client: httpx.AsyncClient) -> None:
    await add_moment(client, "m.mixed")
    items = commented("m.mixed", 5, english(random.Random(4)))
    items += commented("m.mixed", 6, russian(random.Random(5)))
    await post(client, items)

    both = await get_json(client, words_path("m.mixed"), {**OCTOBER, "limit": 100})
    english_only = await get_json(client, words_path("m.mixed"), {**OCTOBER, "lang": "en"})
    russian_only = await get_json(client, words_path("m.mixed"), {**OCTOBER, "lang": "ru"})

    assert {"queue", "ожидание"} <= set(terms(both))
    assert terms(english_only)[0] == "queue"
    assert all(term.isascii() for term in terms(english_only))
    assert (english_only["negative_comments"], english_only["other_comments"]) == (20, 20)
    assert terms(russian_only)[0] == "ожидание"
    assert not any(term.isascii() for term in terms(russian_only))
    assert (russian_only["negative_comments"], russian_only["other_comments"]) == (20, 20)
    assert english_only["comments_read"] == russian_only["comments_read"] == 80


async def test_erasing_the_clients_who_wrote_a_word_removes_it(client: httpx.AsyncClient) -> None:
    await add_moment(client, "m.en")
    rng = random.Random(6)
    comments = english(rng)
    items = commented("m.en", 5, comments)
    for item, (_, comment) in zip(items, comments, strict=True):
        if "queue" in comment:
            item["client_ref"] = "c-queue"
    await post(client, items)
    assert terms(await get_json(client, words_path("m.en"), OCTOBER))[0] == "queue"

    response = await client.delete("/v1/clients/c-queue")
    assert response.status_code == 200, response.text

    answer = await get_json(client, words_path("m.en"), {**OCTOBER, "limit": 100})
    assert not any("queue" in term for term in terms(answer))
    assert answer["comments_total"] == 40 - sum("queue" in c for _, c in comments)


async def test_the_window_and_filters_choose_the_comments(client: httpx.AsyncClient) -> None:
    await add_moment(client, "m.en")
    rng = random.Random(7)
    negative = [(1, f"{rng.choice(ENGLISH_FILLER)} printer jammed") for _ in range(6)]
    items = commented("m.en", 5, english(rng), team="red", channel="call")
    items += commented("m.en", 6, negative, team="blue", channel="email")
    # A word only outside the window (a second before it, and at its exclusive end).
    items += commented("m.en", 1, [(1, "outside")] * 4)
    items[-4:] = [
        item | {"occurred_at": when}
        for item, when in zip(
            items[-4:],
            [
                "2026-09-30T23:59:59Z",
                "2026-11-01T00:00:00Z",
                "2026-11-01T00:00:00Z",
                "2026-09-30T00:00:00Z",
            ],
            strict=True,
        )
    ]
    await post(client, items)

    everything = terms(await get_json(client, words_path("m.en"), {**OCTOBER, "limit": 100}))
    red = terms(await get_json(client, words_path("m.en"), {**OCTOBER, "team": "red"}))
    by_email = await get_json(
        client, words_path("m.en"), {**OCTOBER, "channel": "email", "limit": 100}
    )
    assert "outside" not in everything
    assert {"queue", "printer", "printer jammed"} <= set(everything)
    assert red[0] == "queue"
    assert "printer" not in red
    # Only negative comments by e-mail: nothing to set them against.
    assert by_email["negative_comments"] == 6
    assert by_email["other_comments"] == 0
    assert by_email["data"] == []
    assert by_email["team"] is None
    assert by_email["channel"] == "email"


async def test_only_the_latest_comments_are_read_beyond_the_bound(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_moment(client, "m.en")
    older = commented("m.en", 5, [(1, "printer jammed")] * 5 + [(5, "fine")] * 5)
    newer = commented("m.en", 6, english(random.Random(8)))
    await post(client, older + newer)
    monkeypatch.setattr(service, "WORDS_MAX_COMMENTS", 40)

    answer = await get_json(client, words_path("m.en"), {**OCTOBER, "limit": 100})

    assert (answer["comments_total"], answer["comments_read"], answer["truncated"]) == (
        50,
        40,
        True,
    )
    assert answer["method"]["max_comments"] == 40
    assert "printer" not in terms(answer)
    assert terms(answer)[0] == "queue"


async def test_words_as_csv(client: httpx.AsyncClient) -> None:
    await add_moment(client, "m.en")
    await post(client, commented("m.en", 5, english(random.Random(9))))

    response = await client.get(words_path("m.en"), params={**OCTOBER, "format": "csv"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")  # spreadsheets' byte order mark
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows[0]["term"] == "queue"
    assert rows[0]["negative_count"] == "16"


async def test_unknown_moment_and_bad_parameters(client: httpx.AsyncClient) -> None:
    await add_moment(client, "m.en")
    missing = await client.get(words_path("m.none"), params=OCTOBER)
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    for bad in ({"lang": "de"}, {"limit": 0}, {"limit": 101}, {"from": "yesterday"}):
        response = await client.get(words_path("m.en"), params={**OCTOBER, **bad})
        assert response.status_code == 422, bad
        assert response.json()["code"] == "validation_failed"
        assert response.json()["details"]


async def test_a_moment_without_comments_lists_nothing(client: httpx.AsyncClient) -> None:
    await add_moment(client, "m.en")
    answer = await get_json(client, words_path("m.en"), OCTOBER)
    assert answer["data"] == []
    assert (answer["comments_total"], answer["comments_read"], answer["truncated"]) == (
        0,
        0,
        False,
    )
