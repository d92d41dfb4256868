"""Word segmentation for keyword search and query-term features (jieba, search mode)."""

from __future__ import annotations

import logging
import re
import threading
from functools import lru_cache

_WORD = re.compile(r"[\w\u3400-\u9fff]", re.U)
# Function words and question fillers that carry no topic; kept short on purpose.
STOPWORDS = frozenset(
    [
        "的",
        "了",
        "和",
        "与",
        "及",
        "或",
        "是",
        "在",
        "对",
        "为",
        "以",
        "于",
        "其",
        "之",
        "等",
        "由",
        "并",
        "而",
        "但",
        "也",
        "都",
        "就",
        "被",
        "把",
        "这",
        "那",
        "有",
        "无",
        "不",
        "吗",
        "呢",
        "吧",
        "啊",
        "么",
        "什么",
        "怎么",
        "怎样",
        "如何",
        "哪些",
        "哪个",
        "多少",
        "几",
        "是否",
        "可以",
        "能",
        "能否",
        "需要",
        "应该",
        "应当",
        "要",
        "会",
        "该",
        "个",
        "我",
        "我们",
        "你",
        "他",
        "它",
        "请问",
        "一下",
        "什么样",
        "时候",
        "情况",
        "规定",
        "有关",
        "相关",
        "没有",
    ]
)
# Domain terms jieba would otherwise split apart.
_DOMAIN_TERMS = [
    "保健食品",
    "特殊医学用途配方食品",
    "婴幼儿配方食品",
    "婴幼儿配方乳粉",
    "食品安全标准",
    "食品添加剂",
    "食品相关产品",
    "生产经营者",
    "食品生产经营者",
    "不能代替药物",
    "广告代言人",
    "广告主",
    "广告经营者",
    "广告发布者",
    "注册证书",
    "备案凭证",
    "标签",
    "说明书",
    "适宜人群",
    "不适宜人群",
    "功效成分",
    "标志性成分",
    "批准文号",
    "保健功能",
    "原料目录",
    "功能目录",
    "惩罚性赔偿",
    "食用农产品",
    "网络食品交易第三方平台",
    "召回",
    "检验报告",
    "进口食品",
    "新食品原料",
    "小作坊",
    "食品摊贩",
]

TOKENIZER_VERSION = 2  # bump when `tokens` changes: persisted BM25 indexes are rebuilt
_CJK_RUN = re.compile(r"[\u3400-\u9fff]{2,}")

_init_lock = threading.Lock()
_initialized = False


def _jieba():  # type: ignore[no-untyped-def]
    global _initialized
    import jieba

    with _init_lock:
        if not _initialized:
            jieba.setLogLevel(logging.WARNING)
            for term in _DOMAIN_TERMS:
                jieba.add_word(term, freq=200000)
            jieba.initialize()
            _initialized = True
    return jieba


def tokens(text: str) -> list[str]:
    """Index tokens: jieba search-mode words (a long word and its parts), lower-cased, no punctuation,
    plus character bigrams of CJK runs, so partial matches ("许可证" ~ "许可") still score."""
    words = [t.lower() for t in _jieba().cut_for_search(text) if _WORD.search(t) and not t.isspace()]
    bigrams = [f"#{run[i : i + 2]}" for run in _CJK_RUN.findall(text) for i in range(len(run) - 1)]
    return words + bigrams


@lru_cache(maxsize=4096)
def content_terms(text: str) -> tuple[str, ...]:
    """Distinct topical words of a query (stopwords and single characters dropped, numbers kept)."""
    seen: dict[str, None] = {}
    for t in _jieba().cut(text):
        t = t.strip().lower()
        if not t or not _WORD.search(t) or t in STOPWORDS:
            continue
        if len(t) == 1 and not t.isdigit():
            continue
        seen.setdefault(t, None)
    return tuple(seen)
