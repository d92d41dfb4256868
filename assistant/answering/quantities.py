"""Questions that ask for a figure (an amount, a period, a count), and whether a text states one in
the unit asked for: "几年" is not answered by "十万元"."""

from __future__ import annotations

import re

# "几" asks, except in "好几个月" / "十几年" / "这几天" / "前几天" (but "提前几天" asks): those state.
_JI = r"(?<![好十这那近])(?<!(?<!提)前)几"
_ASKS_QUANTITY = re.compile(
    rf"多少|{_JI}[年天日次倍岁批周月名人秒成]|{_JI}个?(?:月|工作日|人|小时)|多久|多长时间|哪天|哪一天|百分之几"
)
_NUMERAL = r"(?:\d+(?:\.\d+)?|[一二两三四五六七八九十百千万]+)"
_ASKED_UNIT = [
    (re.compile(rf"{_JI}年|多少年"), re.compile(_NUMERAL + r"\s*年")),
    (re.compile(rf"{_JI}个?月|多少个月"), re.compile(_NUMERAL + r"\s*个?月")),
    (re.compile(rf"{_JI}天|多少天|{_JI}日|多少日|工作日"), re.compile(_NUMERAL + r"\s*(?:个工作日|日|天)")),
    # A fine is stated in yuan or as a multiple (of the goods' value, of the advertising fee).
    (
        re.compile(r"多少钱|多少[^，。？；]{0,4}费|费用|多少元|罚多少|罚款|多少万|收费|审评费|交多少|收多少"),
        re.compile(_NUMERAL + r"\s*(?:万?元|倍)"),
    ),
    # "How long" is answered by a period or a frequency, not by an article number or a fine.
    (
        re.compile(r"多久|多长时间"),
        re.compile(_NUMERAL + r"\s*(?:个工作日|日|天|年|个?月|周|个?小时)|每年|每月|每日|每天|每周|每季度|立即|当日|当天|及时"),
    ),
    (re.compile(rf"多少倍|{_JI}倍"), re.compile(_NUMERAL + r"\s*倍")),
    # Doses, limits and durations come in their own units: "至少显示几秒" is not answered by "三日".
    (re.compile(rf"(?:多少|{_JI})(?:毫克|mg|微克|μg|克|g)|mg/kg|毫克/千克|限量"), re.compile(_NUMERAL + r"\s*(?:毫克|mg|微克|μg|克|g)")),
    (re.compile(rf"{_JI}秒|多少秒"), re.compile(_NUMERAL + r"\s*秒")),
    (re.compile(rf"{_JI}个?小时|多少小时"), re.compile(_NUMERAL + r"\s*(?:个)?小时")),
    (re.compile(rf"多少分|{_JI}分"), re.compile(_NUMERAL + r"\s*分")),
    (re.compile(rf"多少例|{_JI}例"), re.compile(_NUMERAL + r"\s*例")),
    (re.compile(rf"多少家|{_JI}家"), re.compile(_NUMERAL + r"\s*家")),
    (re.compile(r"率|比例|占比|百分之几"), re.compile(_NUMERAL + r"\s*%|百分之|[一二三四五六七八九]成")),
]
_ANY_QUANTITY = re.compile(
    _NUMERAL + r"\s*(?:倍|日|天|个工作日|年|个月|月|万?元|次|批|周|岁|%|名|人|家)"
    r"|\d|每年|每月|每日|每天|每周|每季度|立即|当日|当天|及时"
)


def asks_quantity(question: str) -> bool:
    return bool(_ASKS_QUANTITY.search(question))


_ASKS_FEE = re.compile(r"费|收多少|交多少")


def states_asked_quantity(question: str, text: str) -> bool:
    """`text` states a figure in the unit `question` asks for (any figure when no unit is named).
    Document titles ("（2022—2024年）") state nothing, and a fine is no answer to a fee."""
    wanted = next((unit for asks, unit in _ASKED_UNIT if asks.search(question)), _ANY_QUANTITY)
    body = re.sub(r"《[^》]*》", "", text)
    if _ASKS_FEE.search(question) and "罚" not in question:
        body = "；".join(c for c in re.split(r"[；。]", body) if "罚" not in c)
    return bool(wanted.search(body))
