"""Cross-references between articles, found at ingest: "违反本法第十八条规定…", "依照本条例第七十五条的规定",
"《中华人民共和国广告法》第五十八条", "第一款第四项、第五项", "第十八条至第二十条", "前款".

Each reference is typed — `penalty` (this article punishes a violation of the cited one), `applies`
(依照/按照 the cited rule) or `refers` — and attached to the chunk it appears in. Law names are kept
as written; resolving them to indexed documents happens when the graph is built
(`assistant/citegraph.py`), so a reference to a law indexed later resolves then."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import yaml

from assistant.numerals import article_number, chinese_to_int
from assistant.types import Chunk, CrossReference

_CUES_FILE = Path(__file__).parent / "data" / "cross_references.yaml"
_NUM = r"[零〇一二三四五六七八九十百千两0-9]+"
_TOKEN = re.compile(rf"第(?P<n>{_NUM})(?P<unit>条|款|项)|前(?P<previous>[一两二三]?)款")
_SAME_DOCUMENT = re.compile(r"本(?:法|条例|办法|规定|解释|决定|细则|规则|实施细则)\s*$")
_LAW_NAME = re.compile(
    r"(?:《(?P<quoted>[^》]{2,80})》|(?P<bare>[\u3400-\u9fff（）()]{2,60}?(?:法|条例|办法|规定|解释|决定|细则|规则)))\s*$"
)
# Words that end the text before an unquoted law name ("…经营行为不符合食品安全法第三十三条").
_BEFORE_NAME = re.compile(r"除|违反|依照|按照|依据|根据|参照|执行|符合|属于|的|和|及|或者|由|对|在|有|是")
_GENERIC_NAMES = {"法", "规定", "办法", "条例", "解释", "决定", "细则", "规则"}
_CONNECTOR = re.compile(r"^[、和及与或者以及至，,\s]*$")
_CLAUSE_END = "，,。；;：:\n"
_HEADING = re.compile(rf"^\s*第{_NUM}条(?:\s|　)")
_MAX_RANGE = 30
_PARSER_VERSION = 1  # bump when the parsing changes, so indexes re-derive their references


@dataclass(frozen=True)
class _Cues:
    penalty: re.Pattern[str]
    violation_before: re.Pattern[str]
    violation_after: re.Pattern[str]
    applies_before: re.Pattern[str]
    exception_before: re.Pattern[str]
    version: int


@lru_cache(maxsize=1)
def _cues() -> _Cues:
    data = yaml.safe_load(_CUES_FILE.read_text(encoding="utf-8"))

    def alternation(key: str) -> str:
        return "|".join(sorted((re.escape(str(t)) for t in data[key]), key=len, reverse=True))

    return _Cues(
        penalty=re.compile(alternation("penalty_terms")),
        violation_before=re.compile(alternation("violation_before")),
        violation_after=re.compile(alternation("violation_after")),
        # 未依照/不按照 name a broken duty, not the rule to apply.
        applies_before=re.compile(rf"(?<![未不])(?:{alternation('applies_before')})"),
        exception_before=re.compile(alternation("exception_before")),
        version=int(data["version"]),
    )


@dataclass
class _Ref:
    law: str
    article: int
    paragraph: int | None
    item: int | None
    start: int
    end: int
    same_article: bool = False


def _law_before(gap: str) -> str | None:
    """The law a 第X条 belongs to from the text just before it: "" = this document, None = not said."""
    if _SAME_DOCUMENT.search(gap):
        return ""
    m = _LAW_NAME.search(gap)
    if not m:
        return None
    name = m.group("quoted") or _unquoted_name(m.group("bare"))
    return name if len(name) >= 2 else None


def _unquoted_name(text: str) -> str:
    """The law name at the end of `text`: after the last word that cannot be part of it, unless what
    remains is only a generic word ("…若干问题的规定" keeps its whole title)."""
    for cut in reversed([m.end() for m in _BEFORE_NAME.finditer(text)]):
        if len(text) - cut >= 2 and text[cut:] not in _GENERIC_NAMES:
            return text[cut:]
    return text


def _paragraph_of(text: str, offset: int) -> int:
    """1-based 款 of the character at `offset`: lines that are not list items start a new 款."""
    paragraph = 0
    for line in text[:offset].split("\n"):
        if line.strip() and not re.match(r"^\s*[(（][一二三四五六七八九十]+[)）]", line):
            paragraph += 1
    return max(paragraph, 1)


def _spans(text: str, own_article: int | None) -> list[_Ref]:
    """Every reference in one article's text, in order (ranges expanded, 前款 resolved)."""
    refs: list[_Ref] = []
    last_end = 0
    for m in _TOKEN.finditer(text):
        gap = text[last_end : m.start()]
        chained = bool(refs) and refs[-1].end == last_end and bool(_CONNECTOR.match(gap))
        ranged = chained and "至" in gap
        previous = refs[-1] if refs else None
        if m.group("unit") is None:  # 前款 / 前两款
            count = chinese_to_int(m.group("previous") or "一") or 1
            paragraph = _paragraph_of(text, m.start())
            if own_article is not None:
                refs.extend(
                    _Ref("", own_article, p, None, m.start(), m.end(), same_article=True)
                    for p in range(max(paragraph - count, 1), paragraph)
                )
            last_end = m.end()
            continue
        n = chinese_to_int(m.group("n")) or 0
        unit = m.group("unit")
        attached = previous is not None and previous.end == m.start()
        if unit == "条":
            line_start = text.rfind("\n", 0, m.start()) + 1
            if not text[line_start : m.start()].strip() and _HEADING.match(text[line_start:]):
                last_end = m.end()  # an article heading "第七十八条　…", not a reference
                continue
            if chained and previous is not None:
                law, same = previous.law, previous.same_article
            else:
                said = _law_before(gap)
                law, same = ("" if said is None else said), False
            if ranged and previous is not None and previous.paragraph is None and n > previous.article:
                refs.extend(
                    _Ref(law, a, None, None, m.start(), m.end())
                    for a in range(previous.article + 1, min(n, previous.article + _MAX_RANGE))
                )
            refs.append(_Ref(law, n, None, None, m.start(), m.end(), same))
        elif unit == "款":
            if attached and previous is not None and previous.paragraph is None and previous.item is None:
                previous.paragraph, previous.end = n, m.end()
            elif chained and previous is not None:
                start = previous.paragraph + 1 if ranged and previous.paragraph else n
                refs.extend(
                    _Ref(previous.law, previous.article, p, None, m.start(), m.end(), previous.same_article)
                    for p in range(start, n + 1)
                )
            elif own_article is not None:
                refs.append(_Ref("", own_article, n, None, m.start(), m.end(), same_article=True))
        else:  # 项
            if attached and previous is not None and previous.item is None:
                previous.item, previous.end = n, m.end()
            elif chained and previous is not None:
                start = previous.item + 1 if ranged and previous.item else n
                refs.extend(
                    _Ref(
                        previous.law,
                        previous.article,
                        previous.paragraph,
                        i,
                        m.start(),
                        m.end(),
                        previous.same_article,
                    )
                    for i in range(start, n + 1)
                )
            elif own_article is not None:
                refs.append(_Ref("", own_article, None, n, m.start(), m.end(), same_article=True))
        last_end = m.end()
    return refs


def _clause(text: str, start: int, end: int) -> tuple[str, str]:
    """The text of the reference's clause before and after it (clauses end at ，。；：and line breaks)."""
    begin = max(text.rfind(ch, 0, start) for ch in _CLAUSE_END) + 1
    ends = [i for i in (text.find(ch, end) for ch in _CLAUSE_END) if i >= 0]
    return text[begin:start], text[end : min(ends) if ends else len(text)]


def _kind(text: str, ref: _Ref, penalty_article: bool) -> str:
    before, after = _clause(text, ref.start, ref.end)
    cues = _cues()
    applies = [m.end() for m in cues.applies_before.finditer(before)]
    violation = [m.end() for m in cues.violation_before.finditer(before)]
    if applies and (not violation or applies[-1] > violation[-1]):
        return "applies"
    if cues.exception_before.search(before):
        return "refers"
    if penalty_article and (violation or cues.violation_after.search(after)):
        return "penalty"
    return "refers"


def _line(text: str, start: int) -> str:
    begin = text.rfind("\n", 0, start) + 1
    end = text.find("\n", start)
    line = text[begin : end if end >= 0 else len(text)].strip()
    return line if len(line) <= 200 else line[:200] + "…"


def references_version() -> str:
    """Changes whenever the parser or its cue file changes (recorded in the index)."""
    return f"{_PARSER_VERSION}.{_cues().version}"


def parse_references(text: str, own_article: int | None = None) -> list[CrossReference]:
    """The references in one article's text (`own_article`: its number, for 前款 and 本条第二款)."""
    return [ref for ref, _ in _located(text, own_article)]


def attach_references(chunks: list[Chunk]) -> list[Chunk]:
    """`chunks` with the references of their articles attached, each to the part it appears in."""
    out: list[Chunk] = []
    for parts in _articles(chunks):
        own = article_number(parts[0].article)
        text, offsets = "", []
        for part in parts:
            offsets.append(len(text))
            text += part.text + "\n"
        found = _located(text, own)
        for i, part in enumerate(parts):
            lo, hi = offsets[i], offsets[i] + len(part.text)
            mine = tuple(ref for ref, start in found if lo <= start < hi)
            out.append(replace(part, references=mine) if mine else part)
    return out


def _articles(chunks: list[Chunk]) -> list[list[Chunk]]:
    """Chunks grouped by article (the parts of a split article together; other chunks alone)."""
    groups: list[list[Chunk]] = []
    for c in chunks:
        previous = groups[-1][-1] if groups else None
        if (
            previous
            and c.article
            and c.part > 1
            and (previous.doc_id, previous.article) == (c.doc_id, c.article)
        ):
            groups[-1].append(c)
        else:
            groups.append([c])
    return groups


def _located(text: str, own_article: int | None) -> list[tuple[CrossReference, int]]:
    penalty_article = bool(_cues().penalty.search(text))
    return [
        (
            CrossReference(
                law=ref.law,
                article=ref.article,
                paragraph=ref.paragraph,
                item=ref.item,
                kind=_kind(text, ref, penalty_article),
                sentence=_line(text, ref.start),
                same_article=ref.same_article,
            ),
            ref.start,
        )
        for ref in _spans(text, own_article)
    ]
