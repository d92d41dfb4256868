"""Chinese numerals ↔ integers, as statutes number their articles."""

from __future__ import annotations

import re

import pytest

from assistant.numerals import chinese_to_int, int_to_chinese

from .conftest import MD_TWINS


def test_round_trip_1_to_300() -> None:
    for n in range(1, 301):
        word = int_to_chinese(n)
        assert re.fullmatch(r"[一二三四五六七八九十百零]+", word), word
        assert chinese_to_int(word) == n, word


@pytest.mark.parametrize(
    ("n", "word"),
    [
        (0, "零"),
        (1, "一"),
        (10, "十"),
        (11, "十一"),
        (20, "二十"),
        (78, "七十八"),
        (100, "一百"),
        (101, "一百零一"),
        (105, "一百零五"),
        (110, "一百一十"),
        (119, "一百一十九"),
        (154, "一百五十四"),
        (200, "二百"),
        (300, "三百"),
        (1010, "一千零一十"),
    ],
)
def test_int_to_chinese(n: int, word: str) -> None:
    assert int_to_chinese(n) == word
    assert chinese_to_int(word) == n


@pytest.mark.parametrize(
    ("text", "n"),
    [
        ("十", 10),
        ("十五", 15),
        ("一百零五", 105),
        ("一百一十", 110),
        ("两", 2),
        ("两百", 200),
        ("〇", 0),
        ("７８", 78),
        ("78", 78),
        (" 七十八 ", 78),
    ],
)
def test_chinese_to_int_special_forms(text: str, n: int) -> None:
    assert chinese_to_int(text) == n


@pytest.mark.parametrize("text", ["", "  ", "第七条", "七十八条", "abc", "七x"])
def test_not_a_number(text: str) -> None:
    assert chinese_to_int(text) is None


def test_negative_has_no_article_form() -> None:
    with pytest.raises(ValueError):
        int_to_chinese(-1)


@pytest.mark.parametrize("twin", sorted(p.name for p in MD_TWINS.glob("*.md")))
def test_article_numbers_of_real_laws(twin: str) -> None:
    """Every article heading of the Markdown twins parses, and the numbering runs 1..N without gaps."""
    text = (MD_TWINS / twin).read_text(encoding="utf-8")
    words = re.findall(r"^(?:- \*\*)?第([一二三四五六七八九十百零]+)条", text, re.M)
    numbers = [chinese_to_int(w) for w in words]
    assert numbers == list(range(1, len(numbers) + 1))
    assert [int_to_chinese(n) for n in range(1, len(words) + 1)] == words
