"""Draft review: label, instruction-leaflet and advert text checked against the rules in
`rules.yaml` (prohibited claims, required statements, number formats). Every finding carries the
clauses it rests on, resolved through exact clause look-up at review time, so each citation is real
indexed text with a page. The matching conventions are documented at the top of `rules.yaml`."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from assistant.lookup import ArticleIndex
from assistant.normalize import to_simplified
from assistant.types import Citation

RULES_FILE = Path(__file__).parent / "rules.yaml"
DOC_TYPES = ("label", "advert", "other")
_CJK = re.compile(r"[\u3400-\u9fff]")
_COMPACT_DROP = set(" \t\u3000·•・‧∙.-‐–—~_*#|/\\\"'“”‘’「」『』")
_SENTENCE_END = re.compile(r"[。!！?？;；\n]")


@dataclass
class Finding:
    kind: str  # prohibited_claim | missing_statement | format_error
    rule: str
    text: str
    start: int  # offsets in the draft as given (-1 for a missing statement)
    end: int
    message: str
    severity: str
    citations: list[Citation] = field(default_factory=list)
    family: str = ""
    confidence: str = "high"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rule": self.rule,
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "message": self.message,
            "severity": self.severity,
            "citations": [c.to_json() for c in self.citations],
            "family": self.family,
            "confidence": self.confidence,
        }


@dataclass
class ReviewResult:
    draft: str
    doc_type: str
    findings: list[Finding]
    notice: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "findings": [f.to_json() for f in self.findings],
            "doc_type": self.doc_type,
            "notice": self.notice,
        }


@lru_cache(maxsize=1)
def load_rules(path: Path = RULES_FILE) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "rules" not in data:
        raise ValueError(f"{path} 不是有效的审查规则文件")
    return data


def all_references(rules: dict[str, Any]) -> set[str]:
    refs: set[str] = set()
    for section in ("rules", "required_statements", "number_formats"):
        for item in rules.get(section) or []:
            refs.update(str(r) for r in item.get("references") or [])
    return refs


# --- text views with offset maps ------------------------------------------------------------------


@dataclass
class View:
    text: str
    to_original: list[int]  # view index → index in the original draft


def normalized_view(draft: str) -> View:
    """NFKC and traditional → simplified, character by character so every offset maps back."""
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(draft):
        folded = unicodedata.normalize("NFKC", ch)
        for out in folded:
            chars.append(out)
            origin.append(i)
    text = "".join(chars)
    simplified = to_simplified(text)
    if len(simplified) != len(text):  # a phrase conversion changed the length: convert per character
        simplified = "".join(to_simplified(c) if len(to_simplified(c)) == 1 else c for c in text)
    return View(simplified, origin)


def compact_view(view: View) -> View:
    """Drop separators between two CJK characters (治 疗, 药到·病除, 根-治) so split claims still match."""
    keep_text: list[str] = []
    keep_origin: list[int] = []
    text = view.text
    n = len(text)
    i = 0
    while i < n:
        ch = text[i]
        if ch in _COMPACT_DROP and keep_text and _CJK.match(keep_text[-1]):
            j = i
            while j < n and text[j] in _COMPACT_DROP:
                j += 1
            if j < n and _CJK.match(text[j]):
                i = j
                continue
        keep_text.append(ch)
        keep_origin.append(view.to_original[i])
        i += 1
    return View("".join(keep_text), keep_origin)


def _sentence_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    left = max((m.end() for m in _SENTENCE_END.finditer(text, 0, start)), default=0)
    m = _SENTENCE_END.search(text, end)
    return left, (m.start() if m else len(text))


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


# --- the engine ------------------------------------------------------------------------------------


class ReviewEngine:
    def __init__(self, articles: ArticleIndex, rules: dict[str, Any] | None = None) -> None:
        self.articles = articles
        self.rules = rules or load_rules()
        self._compiled: dict[str, re.Pattern[str]] = {}
        self._citations: dict[str, Citation | None] = {}

    def _rx(self, pattern: str) -> re.Pattern[str]:
        rx = self._compiled.get(pattern)
        if rx is None:
            rx = self._compiled[pattern] = re.compile(pattern)
        return rx

    def citation(self, reference: str) -> Citation | None:
        """The clause a rule rests on, as indexed text (the cited 款/项 where the reference names one)."""
        if reference not in self._citations:
            result = self.articles.lookup(reference)
            if not result.found:
                self._citations[reference] = None
            else:
                s, e = result.highlight if result.highlight else (0, len(result.text))
                quote = result.text[s:e]
                self._citations[reference] = Citation(
                    number=0,
                    chunk_id=result.chunks[0].chunk_id,
                    doc_id=result.doc_id,
                    title=result.title,
                    article=result.article + _clause_suffix(reference),
                    heading_path=result.heading_path,
                    page_start=result.page_start,
                    page_end=result.page_end,
                    quote=quote,
                    effective_date=result.effective_date,
                    status=result.status,
                )
        return self._citations[reference]

    def _citations_for(self, references: list[str]) -> list[Citation]:
        out: list[Citation] = []
        for ref in references:
            c = self.citation(str(ref))
            if c is not None and all(c.chunk_id != o.chunk_id or c.article != o.article for o in out):
                out.append(c)
        return out

    def detect_type(self, text: str) -> str:
        hints = self.rules.get("document_type_hints") or {}
        counts = {t: sum(1 for h in hints.get(t, []) if h in text) for t in DOC_TYPES}
        best = max(("label", "advert"), key=lambda t: counts[t])
        if counts[best] >= 2 and counts[best] >= counts["other"]:
            return best
        return (
            "other"
            if counts["other"]
            else ("advert" if counts["advert"] else "label" if counts["label"] else "other")
        )

    def _ordinary_food(self, text: str) -> bool:
        ctx = self.rules.get("ordinary_food_context") or {}
        return bool(ctx.get("requires") and self._rx(ctx["requires"]).search(text)) and not (
            ctx.get("unless") and self._rx(ctx["unless"]).search(text)
        )

    def review(self, draft: str, doc_type: str = "auto") -> ReviewResult:
        norm = normalized_view(draft)
        compact = compact_view(norm)
        kind = doc_type if doc_type in DOC_TYPES else self.detect_type(norm.text)
        findings = self._claims(draft, norm, compact, kind)
        findings += self._missing(norm.text, kind)
        findings += self._formats(draft, norm)
        findings = [f for f in findings if f.citations]  # every finding must rest on real indexed text
        findings.sort(key=lambda f: (f.start < 0, f.start, f.end))
        return ReviewResult(draft, kind, findings)

    def _claims(self, draft: str, norm: View, compact: View, doc_type: str) -> list[Finding]:
        allowed = [self._rx(p) for p in self.rules.get("allowed_functions") or []]
        global_exceptions = [self._rx(p) for p in self.rules.get("global_exceptions") or []]
        found: dict[tuple[str, int, int], Finding] = {}
        for rule in self.rules["rules"]:
            if doc_type not in rule.get("applies_to", DOC_TYPES):
                continue
            if rule.get("requires_context") and not self._rx(rule["requires_context"]).search(norm.text):
                continue
            if rule.get("unless_context") and self._rx(rule["unless_context"]).search(norm.text):
                continue
            exceptions = [self._rx(p) for p in rule.get("exceptions") or []] + global_exceptions
            use_allowed = rule.get("allowed_functions_filter", True)
            for view in (norm, compact):
                for pattern in rule["patterns"]:
                    for m in self._rx(pattern).finditer(view.text):
                        if m.end() <= m.start():
                            continue
                        span = (m.start(), m.end())
                        s_start, s_end = _sentence_bounds(view.text, *span)
                        sentence = view.text[s_start:s_end]
                        if any(
                            _overlaps(span, (s_start + e.start(), s_start + e.end()))
                            for rx in exceptions
                            for e in rx.finditer(sentence)
                        ):
                            continue
                        if use_allowed and any(
                            _overlaps(span, (s_start + a.start(), s_start + a.end()))
                            for rx in allowed
                            for a in rx.finditer(sentence)
                        ):
                            continue
                        start, end = view.to_original[span[0]], view.to_original[span[1] - 1] + 1
                        key = (rule["id"], start, end)
                        if key in found or any(
                            k[0] == rule["id"] and _overlaps((start, end), (k[1], k[2])) for k in found
                        ):
                            continue
                        found[key] = Finding(
                            kind=rule.get("kind", "prohibited_claim"),
                            rule=rule["id"],
                            text=draft[start:end],
                            start=start,
                            end=end,
                            message=rule["message"],
                            severity=rule.get("severity", "medium"),
                            citations=self._citations_for(rule.get("references") or []),
                            family=rule.get("family", ""),
                        )
        return list(found.values())

    def _missing(self, text: str, doc_type: str) -> list[Finding]:
        out: list[Finding] = []
        ordinary = self._ordinary_food(text)
        for item in self.rules.get("required_statements") or []:
            if doc_type not in item.get("applies_to", []):
                continue
            if ordinary and item.get("skip_for_ordinary_food"):
                continue
            if any(self._rx(p).search(text) for p in item.get("any_of") or []):
                continue
            out.append(
                Finding(
                    kind="missing_statement",
                    rule=item["id"],
                    text="",
                    start=-1,
                    end=-1,
                    message=item["message"],
                    severity=item.get("severity", "high"),
                    citations=self._citations_for(item.get("references") or []),
                    family="required_statement",
                )
            )
        return out

    def _formats(self, draft: str, norm: View) -> list[Finding]:
        out: list[Finding] = []
        for item in self.rules.get("number_formats") or []:
            valid = self._rx(item["valid"])
            for m in self._rx(item["detect"]).finditer(norm.text):
                candidate = m.group().strip()
                if not candidate or valid.fullmatch(candidate):
                    continue
                lead = len(m.group()) - len(m.group().lstrip())
                s = m.start() + lead
                e = s + len(candidate)
                start, end = norm.to_original[s], norm.to_original[e - 1] + 1
                if any(_overlaps((start, end), (f.start, f.end)) for f in out):
                    continue
                out.append(
                    Finding(
                        kind="format_error",
                        rule=item["id"],
                        text=draft[start:end],
                        start=start,
                        end=end,
                        message=item["message"],
                        severity=item.get("severity", "high"),
                        citations=self._citations_for(item.get("references") or []),
                        family="number_format",
                    )
                )
        return out


def _clause_suffix(reference: str) -> str:
    m = re.search(r"条(第.+?款)?(第.+?项)?$", reference)
    return "".join(g for g in (m.group(1), m.group(2)) if g) if m else ""
