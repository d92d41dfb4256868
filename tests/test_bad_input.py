"""Ingestion of bad and awkward input: every case uses a real file generated in the test's tmp_path.

A bad file must be reported with its own one-line reason while the rest of the batch goes on, and
the index must stay consistent (registry and Chroma agree, a document is all there or not at all)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from assistant.engine import Assistant
from assistant.evaluation.badfiles import (
    BadFile,
    amendment_text,
    encrypted_pdf,
    html_as_pdf,
    image_only_pdf,
    long_pdf,
    make_bad_files,
    make_good_files,
    snapshot,
    spc_text,
    truncated_pdf,
)
from assistant.ingest import IngestProgress
from assistant.loaders import LoadError, load_document
from assistant.settings import PROJECT_ROOT, Settings
from assistant.types import IngestReport

MakeAssistant = Callable[..., Assistant]
SAFE_DOC_ID = re.compile(r"^[a-z0-9-]+$")
REPORT_KEYS = {"added", "updated", "unchanged", "removed", "failed", "chunks", "warnings"}


# --- helpers -------------------------------------------------------------------------------------


def _names(paths: list[str]) -> set[str]:
    return {Path(p).name for p in paths}


def _reasons(report: IngestReport) -> dict[str, str]:
    return {Path(f.path).name: f.reason for f in report.failed}


def _only_failure(report: IngestReport, path: Path) -> str:
    assert not report.added and not report.updated and not report.unchanged, report
    assert [Path(f.path).name for f in report.failed] == [path.name], report.failed
    return report.failed[0].reason


def _assert_consistent(assistant: Assistant) -> None:
    """Registry and Chroma agree: every committed document has exactly its chunks in the collection,
    and the collection holds no chunk of any other document."""
    records = assistant.documents()
    for record in records:
        chunks = assistant.store.document_chunks(record.meta.doc_id)
        assert len(chunks) == record.chunk_count > 0, record.meta.source_path
        assert {c.chunk_id for c in chunks} == set(record.chunk_ids)
    assert assistant.store.collection.count() == sum(r.chunk_count for r in records)
    assert not assistant.store.registry.documents(state="pending")
    assert not assistant.store.registry.documents(state="deleting")


def _settings() -> Settings:
    return Settings(index_dir=Path("/nonexistent-index"), data_dir=Path("/nonexistent-data"))


def _load_error(path: Path) -> str:
    with pytest.raises(LoadError) as info:
        load_document(path, _settings())
    reason = str(info.value)
    assert reason and "\n" not in reason
    return reason


# --- 1. encrypted PDFs ---------------------------------------------------------------------------


def test_encrypted_pdf_with_user_password_fails(tmp_path: Path, make_assistant: MakeAssistant) -> None:
    pdf = encrypted_pdf(tmp_path / "encrypted.pdf", user_password="secret")
    assert "加密" in _load_error(pdf)
    assistant = make_assistant()
    reason = _only_failure(assistant.ingest([pdf]), pdf)
    assert "加密" in reason
    assert assistant.documents() == []
    assert assistant.store.collection.count() == 0


def test_pdf_encrypted_with_empty_user_password_loads(tmp_path: Path) -> None:
    pdf = encrypted_pdf(tmp_path / "owner-only.pdf", user_password="", owner_password="owner-secret")
    from pypdf import PdfReader

    assert PdfReader(pdf).is_encrypted
    raw = load_document(pdf, _settings())
    assert raw.meta.page_count == 1
    text = raw.pages[0].text
    assert "食品安全法实施条例" in text.replace(" ", "")


# --- 2. corrupt PDFs -------------------------------------------------------------------------------


def test_truncated_pdf_fails(tmp_path: Path) -> None:
    reason = _load_error(truncated_pdf(tmp_path / "truncated.pdf", 0.4))
    assert "损坏" in reason or "不是有效的 PDF" in reason


def test_non_pdf_renamed_to_pdf_fails(tmp_path: Path) -> None:
    reason = _load_error(html_as_pdf(tmp_path / "webpage.pdf"))
    assert "损坏" in reason or "不是有效的 PDF" in reason


# --- 3. empty files --------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".txt", ".pdf"])
def test_empty_file_fails(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    assert "为空" in _load_error(path)


# --- 4. PDF without a text layer -----------------------------------------------------------------


def test_image_only_pdf_fails_with_ocr_hint(tmp_path: Path) -> None:
    pdf = image_only_pdf(tmp_path / "scanned.pdf")
    from pypdf import PdfReader

    assert len(PdfReader(pdf).pages) == 1
    reason = _load_error(pdf)
    assert "扫描件" in reason or "OCR" in reason


# --- 5. text encodings ---------------------------------------------------------------------------


def test_gbk_text_is_ingested_and_searchable(tmp_path: Path, make_assistant: MakeAssistant) -> None:
    text = amendment_text()
    assert len(text) >= 200
    path = tmp_path / "amendment-gbk.txt"
    path.write_bytes(text.encode("gbk"))
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")  # really not UTF-8

    assistant = make_assistant()
    report = assistant.ingest([path])
    assert not report.failed, report.failed
    assert _names(report.added) == {path.name}
    hits = assistant.search("重点液态食品道路散装运输需要取得准运证吗", k=3)
    assert hits
    joined = "\n".join(h.chunk.text for h in hits)
    assert "重点液态食品道路散装运输" in joined
    assert "准运证" in joined
    # Every stored chunk is correctly decoded text of the source, not mojibake.
    record = assistant.documents()[0]
    for chunk in assistant.store.document_chunks(record.meta.doc_id):
        assert chunk.text.replace("\n", "") in text.replace("\n", "")
    _assert_consistent(assistant)


def test_utf8_bom_and_gb18030_text_are_decoded(tmp_path: Path, make_assistant: MakeAssistant) -> None:
    spc = spc_text(600)
    bom = tmp_path / "spc-bom.txt"
    bom.write_bytes(b"\xef\xbb\xbf" + spc.encode("utf-8"))
    # 𠮷 and 鿏 exist in GB18030 (four-byte sequences) but not in GBK.
    rare = "第九条　本条用于检验生僻字𠮷与鿏在导入后保持不变，保健食品备案人应当如实记录。"
    gb18030_text = amendment_text()[:400] + "\n" + rare
    gb = tmp_path / "amendment-gb18030.txt"
    gb.write_bytes(gb18030_text.encode("gb18030"))
    with pytest.raises(UnicodeEncodeError):
        rare.encode("gbk")

    assistant = make_assistant()
    report = assistant.ingest([bom, gb])
    assert not report.failed, report.failed
    assert _names(report.added) == {bom.name, gb.name}
    by_name = {Path(r.meta.source_path).name: r for r in assistant.documents()}

    bom_chunks = assistant.store.document_chunks(by_name[bom.name].meta.doc_id)
    assert "\ufeff" not in "".join(c.text for c in bom_chunks)
    assert bom_chunks[0].text.startswith(spc.split("\n")[0])
    assert any("消费者因食品、药品纠纷提起民事诉讼" in c.text for c in bom_chunks)

    gb_text = "".join(c.text for c in assistant.store.document_chunks(by_name[gb.name].meta.doc_id))
    assert "𠮷" in gb_text and "鿏" in gb_text
    assert "重点液态食品道路散装运输" in gb_text
    _assert_consistent(assistant)


# --- 6. unsupported types --------------------------------------------------------------------------


def test_unsupported_extensions_fail(tmp_path: Path) -> None:
    bad = make_bad_files(tmp_path / "bad")
    reasons = {key: _load_error(bad[key].path) for key in ("xlsx", "exe", "no_ext")}
    assert all("不支持" in r for r in reasons.values()), reasons
    assert ".xlsx" in reasons["xlsx"] and ".exe" in reasons["exe"] and "无扩展名" in reasons["no_ext"]


# --- 7. hostile file names and paths -------------------------------------------------------------


def test_hostile_file_names_and_dotdot_paths(tmp_path: Path, make_assistant: MakeAssistant) -> None:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    base = spc_text(900).split("\n")
    quoted = src / 'a b \'"引号" ..中文 名.txt'
    quoted.write_text("\n".join(base[:6]), encoding="utf-8")
    dotdot_target = src / "x.txt"
    dotdot_target.write_text(amendment_text(), encoding="utf-8")
    dotdot = src / "sub" / ".." / "x.txt"
    shell = src / "law; rm -rf ~ $(touch pwned) `touch pwned2`.txt"
    shell.write_text("\n".join(base[6:]), encoding="utf-8")
    assert str(dotdot).count("..") == 1 and dotdot.exists()

    before = snapshot(tmp_path)
    assistant = make_assistant()
    report = assistant.ingest([quoted, dotdot, shell])
    assert not report.failed, report.failed
    assert set(report.added) == {str(quoted), str(dotdot), str(shell)}

    records = {Path(r.meta.source_path).name: r for r in assistant.documents()}
    assert set(records) == {quoted.name, "x.txt", shell.name}
    for record in records.values():
        assert SAFE_DOC_ID.match(record.meta.doc_id), record.meta.doc_id
        source = Path(record.meta.source_path)
        assert source.is_absolute() and ".." not in source.parts and source.is_file()
    assert Path(records["x.txt"].meta.source_path) == dotdot_target.resolve()
    assert len({r.meta.doc_id for r in records.values()}) == 3
    _assert_consistent(assistant)

    # Nothing new outside the index folder: no files from the names, no stray copies.
    new = snapshot(tmp_path) - before
    index_dir = tmp_path / "index"
    stray = {p for p in new if p != index_dir and index_dir not in p.parents}
    assert not stray, stray
    for place in (tmp_path, src, Path.cwd(), PROJECT_ROOT):
        assert not list(place.glob("pwned*")), place

    # The same files ingested again through the normalized path are recognised, not duplicated.
    again = assistant.ingest([dotdot_target])
    assert again.unchanged == [str(dotdot_target)] and not again.failed


# --- 8. duplicates -------------------------------------------------------------------------------


def test_duplicate_content_under_another_name_fails(tmp_path: Path, make_assistant: MakeAssistant) -> None:
    original = tmp_path / "spc-provisions.txt"
    original.write_text(spc_text(), encoding="utf-8")
    copy = tmp_path / "copy" / "另一个名字.txt"
    copy.parent.mkdir()
    shutil.copyfile(original, copy)

    assistant = make_assistant()
    first = assistant.ingest([original])
    assert first.added == [str(original)] and not first.failed
    reason = _only_failure(assistant.ingest([copy]), copy)
    assert "内容完全相同" in reason
    assert original.name in reason

    records = assistant.documents()
    assert len(records) == 1
    assert Path(records[0].meta.source_path) == original.resolve()
    _assert_consistent(assistant)


# --- 9. a long PDF -------------------------------------------------------------------------------


@pytest.mark.slow
def test_500_page_pdf(tmp_path: Path, make_assistant: MakeAssistant) -> None:
    doc = long_pdf(tmp_path / "long.pdf", pages=500)
    from pypdf import PdfReader

    assert len(PdfReader(doc.path).pages) == 500
    assistant = make_assistant()
    report = assistant.ingest([doc.path])
    assert not report.failed, report.failed
    assert report.added == [str(doc.path)]
    (record,) = assistant.documents()
    assert record.meta.page_count == 500
    chunks = assistant.store.document_chunks(record.meta.doc_id)
    assert len(chunks) == record.chunk_count > 1
    for c in chunks:
        assert 1 <= c.page_start <= c.page_end <= 500, (c.page_start, c.page_end)
    assert min(c.page_start for c in chunks) == 1
    assert max(c.page_end for c in chunks) == 500
    # A page's own text is attributed to a span that includes that page.
    for page in (1, 137, 250, 499, 500):
        marker = doc.marker(page)
        holders = [c for c in chunks if marker in c.text]
        assert holders, marker
        assert all(c.page_start <= page <= c.page_end for c in holders), (page, holders[0].page_start)
    _assert_consistent(assistant)


# --- 10. and 11. a mixed folder, then re-ingested ------------------------------------------------


def _mixed_folder(root: Path) -> tuple[Path, tuple[Path, Path], dict[str, BadFile]]:
    folder = root / "batch"
    good = make_good_files(folder)
    bad = make_bad_files(folder, duplicate_of=good[1])
    return folder, good, bad


def _check_mixed_report(report: IngestReport, bad: dict[str, BadFile]) -> dict[str, str]:
    reasons = _reasons(report)
    assert set(reasons) == {b.path.name for b in bad.values()}
    assert len(report.failed) == len(bad)
    for key, b in bad.items():
        reason = reasons[b.path.name]
        assert any(k in reason for k in b.keywords), (key, reason)
    # Each kind of problem has its own reason; only the two empty files share "文件为空".
    assert reasons[bad["empty_txt"].path.name] == reasons[bad["empty_pdf"].path.name]
    assert len(set(reasons.values())) == len(bad) - 1
    return {key: reasons[b.path.name] for key, b in bad.items()}


def test_mixed_batch_reports_each_bad_file(tmp_path: Path, make_assistant: MakeAssistant) -> None:
    folder, good, bad = _mixed_folder(tmp_path)
    assistant = make_assistant()
    report = assistant.ingest([folder])
    _check_mixed_report(report, bad)
    assert _names(report.added) == {p.name for p in good}
    assert not report.updated and not report.unchanged and not report.removed

    records = assistant.documents()
    assert {Path(r.meta.source_path).name for r in records} == {p.name for p in good}
    for record in records:
        assert len(assistant.store.document_chunks(record.meta.doc_id)) == record.chunk_count > 0
    assert report.chunks == sum(r.chunk_count for r in records)
    _assert_consistent(assistant)


def test_reingest_unchanged_updated_removed(tmp_path: Path, make_assistant: MakeAssistant) -> None:
    folder, (gbk, utf8), bad = _mixed_folder(tmp_path)
    assistant = make_assistant()
    first = assistant.ingest([folder])
    assert _names(first.added) == {gbk.name, utf8.name}

    # Same folder again: nothing is embedded, the good files are unchanged, the bad ones still fail.
    embedded: list[int] = []
    second = assistant.ingest([folder], IngestProgress(on_chunks=embedded.append))
    assert _names(second.unchanged) == {gbk.name, utf8.name}
    assert not second.added and not second.updated and not second.removed
    assert embedded == []
    _check_mixed_report(second, bad)
    assert second.chunks == first.chunks

    # Modify one good file (after removing its copy, so the old text has no other owner): it is
    # updated and no chunk of the old version survives anywhere in the collection.
    bad.pop("duplicate").path.unlink()
    old_only = "消费者因食品、药品纠纷提起民事诉讼"
    new_only = "消费者因保健食品备案信息不实提起民事诉讼"
    old_text = utf8.read_text(encoding="utf-8")
    assert old_only in old_text
    utf8.write_text(old_text.replace(old_only, new_only), encoding="utf-8")
    doc_id = next(r.meta.doc_id for r in assistant.documents() if Path(r.meta.source_path) == utf8.resolve())
    old_ids = set(assistant.store.registry.get(doc_id).chunk_ids)  # type: ignore[union-attr]

    third = assistant.ingest([folder], IngestProgress(on_chunks=embedded.append))
    assert _names(third.updated) == {utf8.name}
    assert _names(third.unchanged) == {gbk.name}
    assert not third.added and not third.removed
    assert _reasons(third).keys() == {b.path.name for b in bad.values()}
    assert len(embedded) == 1
    chunks = assistant.store.document_chunks(doc_id)
    assert any(new_only in c.text for c in chunks)
    everything = assistant.store.collection.get(include=["documents"])
    assert not [t for t in everything["documents"] if old_only in (t or "")]
    new_ids = set(assistant.store.registry.get(doc_id).chunk_ids)  # type: ignore[union-attr]
    assert old_ids != new_ids
    assert not (old_ids - new_ids) & set(everything["ids"])
    _assert_consistent(assistant)

    # Delete a good file: it is removed from the index with all its chunks.
    gbk_id = next(r.meta.doc_id for r in assistant.documents() if Path(r.meta.source_path) == gbk.resolve())
    gbk.unlink()
    fourth = assistant.ingest([folder])
    assert fourth.removed == [str(gbk.resolve())]
    assert gbk_id not in {r.meta.doc_id for r in assistant.documents()}
    assert assistant.store.document_chunks(gbk_id) == []
    assert not assistant.search("重点液态食品道路散装运输", k=5, doc_ids=[gbk_id])
    _assert_consistent(assistant)


def test_a_moved_library_folder_is_followed_without_reembedding(tmp_path: Path, make_assistant: MakeAssistant) -> None:
    """A checkout or library folder moved (or an index copied beside another checkout): the same
    files are found unchanged at their new place, and the index records where they now are."""
    folder, (gbk, utf8), _bad = _mixed_folder(tmp_path)
    assistant = make_assistant()
    assistant.ingest([folder])
    moved = folder.rename(tmp_path / "moved")
    embedded: list[int] = []
    report = assistant.ingest([moved], IngestProgress(on_chunks=embedded.append))
    assert _names(report.unchanged) == {gbk.name, utf8.name}
    assert embedded == [] and not report.added and not report.removed
    paths = {Path(r.meta.source_path) for r in assistant.documents()}
    assert paths == {(moved / gbk.name).resolve(), (moved / utf8.name).resolve()}
    _assert_consistent(assistant)


# --- 12. the command line ------------------------------------------------------------------------


def _run_cli(folder: Path, index_dir: Path, cwd: Path) -> tuple[int, dict[str, object]]:
    env = {
        **os.environ,
        "ASSISTANT_INDEX_DIR": str(index_dir),
        "ASSISTANT_DATA_DIR": str(cwd / "data"),
        "PYTHONIOENCODING": "utf-8",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "assistant", "ingest", str(folder), "--json"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        cwd=cwd,
        timeout=600,
        check=False,
    )
    assert proc.stdout.endswith("\n") and proc.stdout.count("\n") == 1, (proc.stdout, proc.stderr[-2000:])
    return proc.returncode, json.loads(proc.stdout)  # stdout is the JSON document and nothing else


@pytest.mark.slow
def test_cli_ingest_json_and_exit_code(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    good = folder / "spc-provisions.txt"
    good.write_text(spc_text(800), encoding="utf-8")
    bad = truncated_pdf(folder / "truncated.pdf")
    index_dir = tmp_path / "index"

    code, out = _run_cli(folder, index_dir, tmp_path)
    assert set(out) == REPORT_KEYS
    assert code == 1
    assert out["added"] == [str(good)]
    failed = out["failed"]
    assert isinstance(failed, list) and len(failed) == 1
    assert set(failed[0]) == {"path", "reason"}
    assert failed[0]["path"] == str(bad)
    assert "损坏" in failed[0]["reason"]
    assert isinstance(out["chunks"], int) and out["chunks"] > 0

    bad.unlink()
    code, out = _run_cli(folder, index_dir, tmp_path)
    assert set(out) == REPORT_KEYS
    assert code == 0
    assert out["unchanged"] == [str(good)]
    assert out["failed"] == [] and out["added"] == [] and out["removed"] == []


def test_a_docx_that_unpacks_too_far_is_refused_before_it_is_opened(tmp_path: Path) -> None:
    from assistant.evaluation.badfiles import docx_bomb

    bomb = docx_bomb(tmp_path / "big.docx", unpacked_mb=2)
    lenient = Settings(max_compression_ratio=100_000, max_unpacked_mb=1)
    with pytest.raises(LoadError, match="超过上限 1 MB"):
        load_document(bomb, lenient, {})
    assert load_document(bomb, Settings(max_compression_ratio=100_000), {}).pages  # within both limits it opens


def test_a_pdf_stream_that_inflates_too_far_is_refused(tmp_path: Path) -> None:
    from assistant.evaluation.badfiles import pdf_stream_bomb

    bomb = pdf_stream_bomb(tmp_path / "bomb.pdf", unpacked_mb=4)
    with pytest.raises(LoadError, match="压缩炸弹"):
        load_document(bomb, Settings(max_pdf_stream_mb=1), {})
    with pytest.raises(LoadError) as within:  # under the cap it decodes and is just a page without text
        load_document(bomb, Settings(max_pdf_stream_mb=8), {})
    assert "压缩炸弹" not in str(within.value)


def test_text_beyond_the_character_limit_is_refused(tmp_path: Path) -> None:
    from assistant.evaluation.badfiles import text_flood

    flood = text_flood(tmp_path / "flood.txt", 5000)
    with pytest.raises(LoadError, match="超过上限 4,000 字"):  # decoded and counted
        load_document(flood, Settings(max_document_chars=4000), {})
    with pytest.raises(LoadError, match="文字必然超过上限 1,000 字"):  # refused by its size alone
        load_document(flood, Settings(max_document_chars=1000), {})
    assert load_document(flood, Settings(max_document_chars=6000), {}).pages


def _huge_text(path: Path) -> Path:
    """About 20 MB of real law text: minutes of cleaning, more memory than a small worker limit."""
    article = (PROJECT_ROOT / "corpus" / "anti-unfair-competition-law-2025.md").read_text(encoding="utf-8")
    path.write_text(article * 1000, encoding="utf-8")
    return path


def test_a_file_that_takes_too_long_is_abandoned_and_the_batch_goes_on(
    tmp_path: Path, make_assistant: MakeAssistant
) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    slow = _huge_text(folder / "a-slow.txt")
    good = make_good_files(folder)
    assistant = make_assistant(max_file_seconds=1, max_document_chars=100_000_000)
    report = assistant.ingest([folder])
    assert "超过 1 秒" in _reasons(report)[slow.name]
    assert _names(report.added) == {p.name for p in good}  # the worker was replaced for the next file
    _assert_consistent(assistant)


def test_a_file_that_needs_too_much_memory_is_refused(tmp_path: Path) -> None:
    from assistant.extraction import prepare_isolated

    huge = _huge_text(tmp_path / "huge.txt")
    with pytest.raises(LoadError, match="内存超过上限 256 MB"):
        prepare_isolated(huge, Settings(max_worker_memory_mb=256, max_document_chars=100_000_000))
    doc, chunks = prepare_isolated(make_good_files(tmp_path / "good")[1], Settings(max_worker_memory_mb=256))
    assert chunks and doc.meta.title
