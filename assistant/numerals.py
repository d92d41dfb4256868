"""Chinese numerals ↔ integers, for article numbers (第七十八条 ↔ 78)."""

from __future__ import annotations

_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_UNITS = {"十": 10, "百": 100, "千": 1000}
_CHINESE_DIGITS = "零一二三四五六七八九"


def chinese_to_int(text: str) -> int | None:
    """`七十八` → 78, `一百零五` → 105, `十` → 10, `78` / `７８` → 78; None if not a number."""
    text = text.strip()
    if not text:
        return None
    ascii_digits = text.translate(str.maketrans("０１２３４５６７８９", "0123456789"))
    if ascii_digits.isdigit():
        return int(ascii_digits)
    total, current = 0, 0
    for ch in text:
        if ch in _DIGITS:
            current = _DIGITS[ch]
        elif ch in _UNITS:
            total += (current or 1) * _UNITS[ch]
            current = 0
        else:
            return None
    return total + current


def int_to_chinese(n: int) -> str:
    """78 → `七十八`, 105 → `一百零五`, 10 → `十`, 110 → `一百一十` (as statutes number articles)."""
    if n < 0:
        raise ValueError("negative numbers have no article form")
    if n < 10:
        return _CHINESE_DIGITS[n]
    parts: list[str] = []
    units = [(1000, "千"), (100, "百"), (10, "十")]
    rest = n
    zero_pending = False
    for value, name in units:
        digit, rest = divmod(rest, value)
        if digit:
            if zero_pending:
                parts.append("零")
                zero_pending = False
            parts.append(_CHINESE_DIGITS[digit] + name)
        elif parts:
            zero_pending = True
    if rest:
        if zero_pending:
            parts.append("零")
        parts.append(_CHINESE_DIGITS[rest])
    out = "".join(parts)
    return out[1:] if out.startswith("一十") else out


def article_number(label: str) -> int | None:
    """`第七十八条` → 78; None for a label that is not an article (a section, a preamble, "")."""
    if not (label.startswith("第") and label.endswith("条")):
        return None
    return chinese_to_int(label[1:-1])
