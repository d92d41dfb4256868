"""Reciprocal-rank fusion and the lay-term query expansion (no model needed)."""

from __future__ import annotations

import pytest

from assistant.query_terms import expand_query
from assistant.retrieve import RRF_K, rrf_fuse


def test_rrf_rewards_agreement() -> None:
    fused = rrf_fuse([["a", "b", "c"], ["b", "a", "d"]])
    assert fused["a"] == pytest.approx(1 / (RRF_K + 1) + 1 / (RRF_K + 2))
    assert fused["a"] == pytest.approx(fused["b"])
    assert fused["a"] > fused["c"] > 0 and fused["c"] == pytest.approx(fused["d"])


def test_rrf_single_list_keeps_order() -> None:
    fused = rrf_fuse([["x", "y", "z"]])
    assert sorted(fused, key=lambda k: -fused[k]) == ["x", "y", "z"]


def test_rrf_empty() -> None:
    assert rrf_fuse([[], []]) == {}


def test_expansion_adds_statutory_terms_once() -> None:
    expanded = expand_query("少儿频道上可以播保健品广告吗")
    assert "未成年人" in expanded and "保健食品" in expanded
    assert expanded.count("未成年人") == 1
    assert expand_query("第七十八条") == "第七十八条"


def test_expansion_can_take_its_terms_from_a_follow_ups_own_words() -> None:
    rewrite = "给超市采购经理塞红包，让他多进我们的货，算违法，老板本人也要担责？"
    own = expand_query(rewrite, expand_from="老板本人也要担责吗？")
    assert own.startswith(rewrite) and "法定代表人" in own and "贿赂" not in own
    assert "贿赂" in expand_query(rewrite) and "法定代表人" in expand_query(rewrite)
