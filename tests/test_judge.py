"""The relevance judge: its text windows, the shipped weights, the gate, determinism and training."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.engine import Assistant
from assistant.judge import (
    BUNDLED_JUDGE,
    WINDOW_CHARS,
    Calibration,
    Judge,
    passage_inputs,
    source_head,
    windows,
)
from assistant.onnx_models import model_hash, quantized_cross_encoder
from assistant.settings import PROJECT_ROOT
from assistant.training.judge_data import PAIRS_FILE
from assistant.training.judge_teacher import (
    TeacherLogitsError,
    load_teacher_logits,
    pairs_digest,
    teacher_logits_file,
)
from assistant.training.publish import length_bucketed_batches

TWINS = Path(__file__).parent / "data" / "judge_twins.jsonl"


def test_the_bundled_gate_never_falls_below_its_hand_set_floor(tmp_path: Path) -> None:
    bundled = Calibration.load(BUNDLED_JUDGE)
    assert bundled.gate_floor > 0 and bundled.gate >= bundled.gate_floor
    (tmp_path / "calibration.json").write_text(json.dumps({"gate": 0.2, "unknown_field": 1}), encoding="utf-8")
    assert Calibration.load(tmp_path).gate_floor == 0.0  # older calibrations: no floor


def test_short_text_is_one_window() -> None:
    assert windows("第一条 为了保证食品安全，制定本法。") == ["第一条 为了保证食品安全，制定本法。"]


def test_long_text_splits_at_sentence_ends_within_the_limit() -> None:
    text = "".join(f"第{i}句话说明一项具体的义务和条件，必须遵守。" for i in range(40))
    parts = windows(text)
    assert len(parts) > 1
    assert "".join(parts) == text
    assert all(len(p) <= WINDOW_CHARS for p in parts)
    assert all(p.endswith("。") for p in parts)


def test_every_window_is_headed_by_its_source() -> None:
    inputs = passage_inputs("中华人民共和国食品安全法", "第七十八条", "保健食品的标签不得涉及疾病预防、治疗功能。")
    assert inputs == ["《中华人民共和国食品安全法》第七十八条：保健食品的标签不得涉及疾病预防、治疗功能。"]
    assert source_head("很长" * 30, "题注").endswith("》：")


def test_length_buckets_cover_every_pair_once_and_repeat_with_the_seed() -> None:
    lengths = [(i * 37) % 300 for i in range(1000)]
    batches = length_bucketed_batches(lengths, 16, seed=7)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert batches == length_bucketed_batches(lengths, 16, seed=7)
    assert batches != length_bucketed_batches(lengths, 16, seed=7, epoch=1)
    # Within a batch, lengths are close: padding stays small.
    spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches]
    assert sorted(spread)[len(spread) // 2] < 30


@pytest.fixture(scope="module")
def judge() -> Judge:
    return Judge()


def test_shipped_judge_loads_offline_and_is_compact(judge: Judge) -> None:
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    assert judge.path == BUNDLED_JUDGE
    weights = sum(p.stat().st_size for p in BUNDLED_JUDGE.glob("*.safetensors"))
    assert 0 < weights <= 60 * 1024 * 1024
    assert not list(BUNDLED_JUDGE.glob("checkpoint*")) and not list(BUNDLED_JUDGE.glob("optimizer*"))
    assert 0.0 < judge.calibration.gate < 1.0


def test_answering_passages_outrank_their_near_miss_twins(judge: Judge) -> None:
    """Held-out examples written for this test (not from the training data): each passage answers
    `question` and does not answer `near_miss`, although both use its words."""
    rows = [json.loads(line) for line in TWINS.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) >= 8
    wins = 0
    for row in rows:
        text = source_head(row["title"], row["article"]) + row["passage"]
        answers, near_miss = judge.score(row["question"], [text])[0], judge.score(row["near_miss"], [text])[0]
        wins += answers > near_miss
    assert wins >= len(rows) - 1, f"{wins}/{len(rows)}"


def test_onnx_copy_is_made_once_and_keyed_by_the_weights(judge: Judge) -> None:
    judge.score("问题", ["文字"])  # makes the copy on first use
    path = quantized_cross_encoder(judge.path, judge.cache_dir)
    assert path.name == f"judge-{model_hash(judge.path)}.onnx"
    assert path.stat().st_size < 30 * 1024 * 1024  # int8
    made = path.stat().st_mtime_ns
    assert quantized_cross_encoder(judge.path, judge.cache_dir).stat().st_mtime_ns == made


def test_int8_onnx_and_fp32_torch_judge_alike(judge: Judge) -> None:
    """The quantized runtime moves probabilities a little (about 0.02 on average on the dev pairs,
    evals/reports/judge-runtime.md) but keeps the twins' order."""
    torch_judge = Judge(backend="torch")
    rows = [json.loads(line) for line in TWINS.read_text(encoding="utf-8").splitlines() if line.strip()]
    for row in rows:
        text = source_head(row["title"], row["article"]) + row["passage"]
        for question in (row["question"], row["near_miss"]):
            assert abs(judge.score(question, [text])[0] - torch_judge.score(question, [text])[0]) < 0.15


def test_scores_do_not_depend_on_what_was_scored_before(judge: Judge) -> None:
    text = "《中华人民共和国广告法》第十八条：保健食品广告不得含有下列内容：（一）表示功效、安全性的断言或者保证；"
    alone = Judge(judge.path).score("保健品广告能不能说保证有效", [text])
    judge.score("别的问题", [text, text + "又一句。", "无关的文字"])
    assert judge.score("保健品广告能不能说保证有效", [text, "另一段文字"])[0] == alone[0]


@pytest.mark.slow
def test_gate_refuses_tricky_questions_and_answers_their_twins(corpus_assistant: Assistant) -> None:
    """Four committed pairs: a small firm's answerable question and its twin that no document answers.
    Every answerable one is answered. Tricky twins are refused at about 0.8 on the blind set; on
    these four the shipped judge refuses two (the fee and the shelf-distance questions), and the
    test holds it to that."""
    rows = [json.loads(line) for line in TWINS.read_text(encoding="utf-8").splitlines() if line.strip()]
    gate_rows = [r for r in rows if r.get("library_twin")]
    assert len(gate_rows) == 4
    for row in gate_rows:
        assert not corpus_assistant.ask(row["question"]).refused, row["question"]
    refused = [corpus_assistant.ask(row["near_miss"]).refused for row in gate_rows]
    assert sum(refused) >= 2, refused


@pytest.mark.slow
def test_a_cited_article_is_never_refused(corpus_assistant: Assistant) -> None:
    answer = corpus_assistant.ask("食品安全法第七十八条规定了什么？")
    assert not answer.refused
    assert answer.citations[0].article == "第七十八条"


@pytest.mark.slow
def test_same_batch_same_output_in_separate_processes(corpus_assistant: Assistant, tmp_path: Path) -> None:
    questions = [
        "保健食品标签不得涉及什么内容",
        "网上卖保健品要办什么证",
        "保健品广告里能请医生代言吗",
        "食品召回以后要向谁报告",
        "上海保健食品质量提升行动的目标是什么",
        "惩罚性赔偿怎么计算",
        "个人所得税怎么交",
    ]
    batch = tmp_path / "q.jsonl"
    batch.write_text(
        "\n".join(json.dumps({"id": i, "question": q}, ensure_ascii=False) for i, q in enumerate(questions)),
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "ASSISTANT_INDEX_DIR": str(corpus_assistant.settings.index_dir),
        "ASSISTANT_DATA_DIR": str(corpus_assistant.settings.data_dir),
    }

    def run(verb: str, order: list[str]) -> dict[int, str]:
        batch.write_text("\n".join(order), encoding="utf-8")
        out = subprocess.run(
            [sys.executable, "-m", "assistant", verb, "--batch", str(batch), "--json"],
            capture_output=True,
            text=True,
            env=env,
            cwd=PROJECT_ROOT,
            timeout=600,
            check=True,
        ).stdout
        return {json.loads(line)["id"]: line for line in out.splitlines() if line.strip()}

    lines = batch.read_text(encoding="utf-8").splitlines()
    for verb in ("search", "ask"):
        first, second = run(verb, lines), run(verb, list(reversed(lines)))
        assert first == second, verb


def test_teacher_logits_must_exist_and_match_their_pairs(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.jsonl.gz"
    with gzip.open(pairs, "wt", encoding="utf-8") as f:
        f.write(json.dumps({"question": "问", "text": "答", "label": 1}, ensure_ascii=False) + "\n")
    with pytest.raises(TeacherLogitsError, match="train judge-teacher"):
        load_teacher_logits(pairs)
    with gzip.open(teacher_logits_file(pairs), "wt", encoding="utf-8") as f:
        json.dump({"pairs_sha256": pairs_digest(pairs), "logits": [1.5]}, f)
    assert load_teacher_logits(pairs) == [1.5]
    with gzip.open(pairs, "at", encoding="utf-8") as f:  # the pairs changed since they were scored
        f.write(json.dumps({"question": "问", "text": "另一段", "label": 0}, ensure_ascii=False) + "\n")
    with pytest.raises(TeacherLogitsError, match="另一份样本对"):
        load_teacher_logits(pairs)


@pytest.mark.slow
def test_train_judge_runs_end_to_end_on_a_tiny_slice(tmp_path: Path) -> None:
    with gzip.open(PAIRS_FILE, "rt", encoding="utf-8") as f:
        rows = [json.loads(next(f)) for _ in range(64)]
    tiny = tmp_path / "pairs.jsonl.gz"
    with gzip.open(tiny, "wt", encoding="utf-8") as f:
        for i, row in enumerate(rows):
            f.write(json.dumps({**row, "split": "dev" if i % 8 == 0 else "train"}, ensure_ascii=False) + "\n")
    out = subprocess.run(
        [sys.executable, "-m", "assistant", "train", "judge", "--pairs", str(tiny), "--output", str(tmp_path / "j")],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.splitlines()[-1])["pairs"] == 56
    trained = Judge(tmp_path / "j", cache_dir=tmp_path / "onnx")
    assert len(trained.score("问题", ["文字", "另一段文字"])) == 2
    assert not list((tmp_path / "j").glob("checkpoint*"))

    # Distillation: the tiny judge scores the pairs as a teacher, a one-layer judge learns its logits.
    env = {**os.environ, "ASSISTANT_MODEL_CACHE_DIR": str(tmp_path / "onnx")}
    train = [sys.executable, "-m", "assistant", "train"]
    for args in (
        ["judge-teacher", "--teacher", str(tmp_path / "j"), "--pairs", str(tiny)],
        ["judge", "--pairs", str(tiny), "--output", str(tmp_path / "d"), "--layers", "1", "--distil"],
    ):
        out = subprocess.run(train + args, capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=600, env=env)
        assert out.returncode == 0, out.stderr[-2000:]
    record = json.loads((tmp_path / "d" / "training.json").read_text(encoding="utf-8"))
    assert record["layers"] == 1 and record["distilled_from_teacher_logits"]
