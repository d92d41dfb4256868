"""Server mode with a real `chroma run`, SIGKILL during ingest, concurrency, hostile input
(slow; the same checks `python -m assistant eval reliability` runs, on fewer kill points)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.evaluation.reliability import (
    check_concurrency,
    check_kill_points,
    check_mutation_fuzz,
    check_server_concurrency,
    check_server_mode,
)
from assistant.library import safe_file_name, save_upload
from assistant.settings import Settings

slow = pytest.mark.slow


@slow
def test_server_mode_ingest_and_second_client_process(tmp_path: Path) -> None:
    result = check_server_mode(tmp_path)
    assert result.passed, result.details


@slow
def test_sigkill_during_ingest_leaves_a_consistent_index(tmp_path: Path) -> None:
    result = check_kill_points(tmp_path, points=("after_begin:2", "mid_upsert:2", "before_commit:3"), timed_kills=(3.0,))
    assert result.passed, result.details


@slow
def test_concurrent_search_and_ask_during_ingest(tmp_path: Path, make_assistant) -> None:  # type: ignore[no-untyped-def]
    assistant = make_assistant(index_dir=tmp_path / "index", corpus_dir=tmp_path / "corpus")
    result = check_concurrency(tmp_path, assistant)
    assert result.passed, result.details


@slow
def test_server_mode_client_processes_during_ingest(tmp_path: Path) -> None:
    result = check_server_concurrency(tmp_path, clients=3)
    assert result.passed, result.details


@slow
def test_mutated_pdfs_and_word_documents_are_indexed_or_refused(tmp_path: Path, make_assistant) -> None:  # type: ignore[no-untyped-def]
    # Every seed × mutation kind once; the full 300 run in `eval reliability`.
    result = check_mutation_fuzz(tmp_path, count=25, assistant=make_assistant(index_dir=tmp_path / "index"))
    assert result.passed, result.details


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "..\\..\\boot.ini", "/abs/path/法规.pdf", "a;rm -rf ~.txt", "$(touch x).md", "...", "", "\x00evil.txt"],
)
def test_upload_names_cannot_escape_the_uploads_folder(tmp_path: Path, name: str) -> None:
    settings = Settings(data_dir=tmp_path / "data", index_dir=tmp_path / "index")
    saved = save_upload(name, b"x", settings)
    assert saved.parent == settings.uploads_dir.resolve()
    assert not any(ch in saved.name for ch in "/\\\x00;$`")


@settings(max_examples=150, deadline=None)
@given(st.text())
def test_safe_file_name_is_always_a_plain_name(name: str) -> None:
    safe = safe_file_name(name)
    assert safe and "/" not in safe and "\\" not in safe and safe not in {".", ".."}
