"""Draft review: label, instruction-leaflet and advert text checked against the rules in
`rules.yaml` (prohibited claims, required statements, number formats), and sentence by sentence by
the trained claim classifier for violations no pattern lists. Every finding carries the clauses it
rests on, resolved through exact clause look-up at review time, so each citation is real indexed
text with a page, and says which layer found it. The matching conventions are documented at the
top of `rules.yaml`."""

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
from assistant.review.classifier import ClaimClassifier, ClaimPrediction
from assistant.types import Citation

RULES_FILE = Path(__file__).parent / "rules.yaml"
DOC_TYPES = ("label", "manual", "advert", "other")
PRODUCT_SHEETS = ("label", "manual")  # what a product carries: the same required items
_CJK = re.compile(r"[\u3400-\u9fff]")
_COMPACT_DROP = set(" \t\u3000·•・‧∙.-‐–—~_*#|/\\\"'“”‘’「」『』")
_SENTENCE_END = re.compile(r"[。!！?？;；\n]")
_CLAUSE_END = re.compile(r"[,，、:：]|[ \t\u3000]{1,}(?=\S)")
_MIN_CLASSIFIED_CJK = 4  # shorter sentences (a heading, a price) carry no claim
SHEET_CUES = 4  # required items and package cues that make a draft a label or 说明书, not an advert


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
    layer: str = "rule"  # rule | classifier: which layer found it
    score: float | None = None  # the classifier's violation probability

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
            "layer": self.layer,
            "score": None if self.score is None else round(self.score, 3),
        }


@dataclass
class ReviewResult:
    draft: str
    doc_type: str
    findings: list[Finding]
    notice: str = ""
    doc_type_source: str = "declared"  # declared | detected
    doc_type_evidence: list[str] = field(default_factory=list)  # the words that decided a detected type

    def to_json(self) -> dict[str, Any]:
        return {
            "findings": [f.to_json() for f in self.findings],
            "doc_type": self.doc_type,
            "notice": self.notice,
            "doc_type_source": self.doc_type_source,
            "doc_type_evidence": self.doc_type_evidence,
        }


@dataclass(frozen=True)
class DocTypeGuess:
    kind: str
    evidence: list[str]


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


def _segments(text: str, boundary: re.Pattern[str], start: int, end: int) -> list[tuple[int, int]]:
    """Spans between boundary marks in text[start:end], trimmed of whitespace, empty ones dropped."""
    out: list[tuple[int, int]] = []
    left = start
    for m in [*boundary.finditer(text, start, end), None]:
        right = m.start() if m else end
        s, e = left, right
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
        left = m.end() if m else end
    return out


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


# --- the engine ------------------------------------------------------------------------------------


class ReviewEngine:
    def __init__(
        self, articles: ArticleIndex, rules: dict[str, Any] | None = None, classifier: ClaimClassifier | None = None
    ) -> None:
        self.articles = articles
        self.rules = rules or load_rules()
        self.classifier = classifier
        self._rules_by_id = {rule["id"]: rule for rule in self.rules["rules"]}
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

    def detect_type(self, text: str) -> DocTypeGuess:
        """Label, 说明书, advert or other, from what the text contains, with the words that decided it.
        What only an advert carries (an advert approval number, a live room, an order link) makes it
        an advert; a text listing several of a product sheet's required items and a package's cues is a
        label or 说明书 (a 说明书 when it says so or carries more leaflet cues than a package's); other
        promotion is an advert unless cues of a sales talk or seminar script outweigh it."""
        hints = self.rules.get("document_type_hints") or {}
        kinds = ("advert_only", "package", "leaflet", "advert", "other")
        found = {t: [h for h in hints.get(t, []) if h in text] for t in kinds}
        if found["advert_only"]:
            return DocTypeGuess("advert", found["advert_only"])
        items = [item for item in self._product_items() if self._present(item, text)]
        sheet = len(items) + len(found["package"])
        if sheet >= SHEET_CUES and sheet >= len(found["advert"]):
            names = [str(item.get("name", item["id"])) for item in items][:3]
            if "说明书" in found["leaflet"] or len(found["leaflet"]) > len(found["package"]):
                return DocTypeGuess("manual", found["leaflet"] + names)
            return DocTypeGuess("label", found["package"] + names)
        if found["other"] and len(found["other"]) > len(found["advert"]):
            return DocTypeGuess("other", found["other"])
        return DocTypeGuess("advert", found["advert"])

    def _product_items(self) -> list[dict[str, Any]]:
        return [
            item
            for item in self.rules.get("required_statements") or []
            if item.get("headings") and set(item.get("applies_to", [])) >= set(PRODUCT_SHEETS)
        ]

    def _present(self, item: dict[str, Any], text: str) -> bool:
        """A required item is present when one of its patterns occurs, or one of its headings is
        followed by content (not by another heading or the end of the line)."""
        if any(self._rx(p).search(text) for p in item.get("any_of") or []):
            return True
        headings = item.get("headings") or []
        if not headings:
            return False
        names = "|".join(f"(?:{h})" for h in headings)
        return bool(self._rx(rf"(?<![\u3400-\u9fff])(?:{names})[ \t\u3000]*(?:[】\]:]|为)?\s*[^\s【\[】\]:]").search(text))

    def _ordinary_food(self, text: str) -> bool:
        ctx = self.rules.get("ordinary_food_context") or {}
        return bool(ctx.get("requires") and self._rx(ctx["requires"]).search(text)) and not (
            ctx.get("unless") and self._rx(ctx["unless"]).search(text)
        )

    def review(self, draft: str, doc_type: str = "auto") -> ReviewResult:
        norm = normalized_view(draft)
        compact = compact_view(norm)
        if doc_type in DOC_TYPES:
            guess, source = DocTypeGuess(doc_type, []), "declared"
        else:
            guess, source = self.detect_type(norm.text), "detected"
        kind = guess.kind
        findings = self._claims(draft, norm, compact, kind)
        findings += self._classified(draft, norm, kind, findings)
        findings += self._missing(norm.text, kind)
        findings += self._formats(draft, norm)
        findings = [f for f in findings if f.citations]  # every finding must rest on real indexed text
        findings.sort(key=lambda f: (f.start < 0, f.start, f.end))
        return ReviewResult(draft, kind, findings, doc_type_source=source, doc_type_evidence=guess.evidence)

    def _claims(self, draft: str, norm: View, compact: View, doc_type: str) -> list[Finding]:
        allowed = [self._rx(p) for p in self.rules.get("allowed_functions") or []]
        global_exceptions = [self._rx(p) for p in self.rules.get("global_exceptions") or []]
        found: dict[tuple[str, int, int], Finding] = {}
        for rule in self.rules["rules"]:
            if not self._applies(rule, doc_type, norm.text):
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
                        found[key] = self._finding(rule, draft, start, end)
        return list(found.values())

    def _applies(self, rule: dict[str, Any], doc_type: str, text: str) -> bool:
        if doc_type not in rule.get("applies_to", DOC_TYPES):
            return False
        if rule.get("requires_context") and not self._rx(rule["requires_context"]).search(text):
            return False
        return not (rule.get("unless_context") and self._rx(rule["unless_context"]).search(text))

    def _classified(self, draft: str, norm: View, doc_type: str, found: list[Finding]) -> list[Finding]:
        """Sentences the classifier finds in breach of a rule where no rule pattern matched. A flagged
        sentence is narrowed to its clauses that are flagged on their own (each its own finding);
        when no clause is, the whole sentence is the finding."""
        if self.classifier is None:
            return []
        text = norm.text
        out: list[Finding] = []
        for s_start, s_end in _segments(text, _SENTENCE_END, 0, len(text)):
            if len(_CJK.findall(text[s_start:s_end])) < _MIN_CLASSIFIED_CJK:
                continue
            prediction = self.classifier.predict(text[s_start:s_end])
            if not self.classifier.flags(prediction):
                continue
            clauses = [
                c
                for c in _segments(text, _CLAUSE_END, s_start, s_end)
                if len(_CJK.findall(text[c[0] : c[1]])) >= _MIN_CLASSIFIED_CJK
            ]
            narrowed: list[tuple[tuple[int, int], list[ClaimPrediction]]] = []
            if len(clauses) > 1:
                for clause in clauses:
                    clause_prediction = self.classifier.predict(text[clause[0] : clause[1]])
                    if self.classifier.flags(clause_prediction):
                        narrowed.append((clause, [clause_prediction, prediction]))
            for span, evidence in narrowed or [((s_start, s_end), [prediction])]:
                finding = self._classifier_finding(draft, norm, doc_type, (s_start, s_end), span, evidence)
                if finding and not any(
                    f.start >= 0 and _overlaps((finding.start, finding.end), (f.start, f.end)) for f in found + out
                ):
                    out.append(finding)  # (an overlapping rule finding already explains it)
        return out

    def _classifier_finding(
        self,
        draft: str,
        norm: View,
        doc_type: str,
        sentence: tuple[int, int],
        span: tuple[int, int],
        evidence: list[ClaimPrediction],
    ) -> Finding | None:
        """The finding for a flagged span under its most likely rule, or none when that rule does not
        apply to this draft (e.g. an ordinary-food rule on a registered health food)."""
        assert self.classifier is not None
        rule = self._rules_by_id.get(self.classifier.likely_rules(*evidence)[0])
        if rule is None or not self._applies(rule, doc_type, norm.text):
            return None
        spared = [self._rx(p) for p in self.rules.get("global_exceptions") or []]
        if rule.get("allowed_functions_filter", True):
            spared += [self._rx(p) for p in self.rules.get("allowed_functions") or []]
        words = norm.text[sentence[0] : sentence[1]]
        if any(
            sentence[0] + m.start() <= span[0] and span[1] <= sentence[0] + m.end() for rx in spared for m in rx.finditer(words)
        ):
            return None  # a mandatory statement or a catalogue function claim, word for word
        start, end = norm.to_original[span[0]], norm.to_original[span[1] - 1] + 1
        finding = self._finding(rule, draft, start, end)
        finding.layer, finding.score = "classifier", evidence[0].violation
        finding.confidence = "high" if evidence[0].violation >= 0.9 else "medium"
        return finding

    def _finding(
        self,
        item: dict[str, Any],
        draft: str,
        start: int,
        end: int,
        kind: str = "prohibited_claim",
        family: str = "",
        severity: str = "medium",
    ) -> Finding:
        """A finding of a rule, required statement or number format (its `kind`, `family` and
        `severity` in the rules file win over the defaults); start −1: nothing in the draft to mark."""
        return Finding(
            kind=item.get("kind", kind),
            rule=item["id"],
            text=draft[start:end] if start >= 0 else "",
            start=start,
            end=end,
            message=item["message"],
            severity=item.get("severity", severity),
            citations=self._citations_for(item.get("references") or []),
            family=item.get("family", family),
        )

    def _missing(self, text: str, doc_type: str) -> list[Finding]:
        out: list[Finding] = []
        ordinary = self._ordinary_food(text)
        for item in self.rules.get("required_statements") or []:
            if doc_type not in item.get("applies_to", []):
                continue
            if ordinary and item.get("skip_for_ordinary_food"):
                continue
            if self._present(item, text):
                continue
            out.append(self._finding(item, "", -1, -1, "missing_statement", "required_statement", "high"))
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
                out.append(self._finding(item, draft, start, end, "format_error", "number_format", "high"))
        return out


def _clause_suffix(reference: str) -> str:
    m = re.search(r"条(第.+?款)?(第.+?项)?$", reference)
    return "".join(g for g in (m.group(1), m.group(2)) if g) if m else ""
