"""Reliability checks, shared by the test suite and `python -m assistant eval reliability`:
Chroma server mode with a real `chroma run`, SIGKILL at every write point of an ingest, concurrent
search/ask during an ingest, and the bad-input matrix. Each check returns what it tried and saw."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from assistant.engine import Assistant
from assistant.evaluation.golden import REPORTS_DIR
from assistant.loaders import content_hash
from assistant.settings import PROJECT_ROOT, ChromaMode, Settings

CORPUS = PROJECT_ROOT / "corpus"
# Small, quick documents for the subprocess ingests (Markdown laws: no PDF parsing cost).
SMALL_DOCS = (
    "spc-interpretation-food-safety-civil-disputes-1-2020.md",
    "spc-provisions-food-drug-disputes-2021.md",
    "food-safety-law-amendment-decision-2025.md",
    "spc-interpretation-food-drug-punitive-damages-2024.md",
)
KILL_POINTS = ("before_begin:2", "after_begin:2", "mid_upsert:2", "before_commit:3", "after_commit:1")


@dataclass
class CheckResult:
    name: str
    passed: bool
    details: list[str] = field(default_factory=list)


# --- helpers -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def chroma_server(path: Path) -> Iterator[int]:
    """A real `chroma run` on 127.0.0.1 (a free port), stopped afterwards."""
    port = free_port()
    chroma = Path(sys.executable).with_name("chroma")
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    proc = subprocess.Popen(
        [str(chroma), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if proc.poll() is not None:
                raise RuntimeError("chroma run exited at start")
            time.sleep(0.2)
        else:
            raise RuntimeError("chroma run did not start within 60 s")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(
        {
            "ASSISTANT_INDEX_DIR": str(settings.index_dir),
            "ASSISTANT_DATA_DIR": str(settings.data_dir),
            "ASSISTANT_CORPUS_DIR": str(settings.corpus_dir),
            "ASSISTANT_CHROMA_MODE": settings.chroma_mode.value,
            "ASSISTANT_CHROMA_HOST": settings.chroma_host,
            "ASSISTANT_CHROMA_PORT": str(settings.chroma_port),
            "ASSISTANT_COLLECTION": settings.collection,
            "HF_HUB_OFFLINE": "1",
        }
    )
    env.update(extra)
    return env


def run_cli(
    settings: Settings, *args: str, timeout: float = 600, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args],
        env=cli_env(settings, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=PROJECT_ROOT,
    )


def small_corpus(folder: Path, names: tuple[str, ...] = SMALL_DOCS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy2(CORPUS / name, folder / name)
    return folder


def consistency_problems(assistant: Assistant, corpus: Path | None = None) -> list[str]:
    """Every committed document fully present (all its chunks, matching hash); no orphan chunks;
    no unfinished record left behind by a dead writer; `docs` and the store agree."""
    store = assistant.store
    problems = []
    records = store.registry.documents(state=None)
    stuck = [r.meta.doc_id for r in records if r.state != "committed"]
    if stuck:
        problems.append(f"unfinished records after recovery: {stuck}")
    stored = store.collection.get(include=["metadatas"])
    by_doc: dict[str, set[str]] = {}
    for cid, meta in zip(stored["ids"], stored["metadatas"], strict=True):
        by_doc.setdefault(str(meta["doc_id"]), set()).add(cid)
    committed = {r.meta.doc_id: r for r in records if r.state == "committed"}
    for doc_id, record in committed.items():
        if by_doc.get(doc_id, set()) != set(record.chunk_ids):
            problems.append(
                f"{doc_id}: store has {len(by_doc.get(doc_id, set()))} chunks, registry {len(record.chunk_ids)}"
            )
        source = Path(record.meta.source_path)
        if (
            corpus is not None
            and source.exists()
            and content_hash(source.read_bytes()) != record.meta.content_hash
        ):
            problems.append(f"{doc_id}: hash differs from the file")
    orphans = sorted(set(by_doc) - set(committed))
    if orphans:
        problems.append(f"chunks of documents not committed: {orphans}")
    listed = {r.meta.doc_id for r in assistant.documents()}
    if listed != set(committed):
        problems.append("docs listing and registry disagree")
    return problems


# --- checks --------------------------------------------------------------------------------------


def check_kill_points(
    workdir: Path, points: tuple[str, ...] = KILL_POINTS, timed_kills: tuple[float, ...] = (2.0, 5.0)
) -> CheckResult:
    """SIGKILL an `ingest` subprocess at each fault point (and after fixed delays), then prove the
    index consistent and that a second ingest completes the job."""
    result = CheckResult("kill points", True)
    corpus = small_corpus(workdir / "corpus")
    for i, point in enumerate(list(points) + [f"timer:{t}" for t in timed_kills]):
        settings = Settings(index_dir=workdir / f"index-{i}", data_dir=workdir / "data", corpus_dir=corpus)
        if point.startswith("timer:"):
            proc = subprocess.Popen(
                [sys.executable, "-m", "assistant", "ingest", str(corpus), "--json"],
                env=cli_env(settings),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=PROJECT_ROOT,
            )
            time.sleep(float(point.split(":")[1]))
            proc.send_signal(signal.SIGKILL)
            code = proc.wait()
        else:
            code = run_cli(settings, "ingest", str(corpus), "--json", ASSISTANT_CRASH_AT=point).returncode
        killed = code == -signal.SIGKILL
        assistant = Assistant(settings)
        before = len(assistant.documents())
        problems = consistency_problems(assistant, corpus)
        assistant.close()
        second = run_cli(settings, "ingest", str(corpus), "--json")
        report = json.loads(second.stdout or "{}")
        assistant = Assistant(settings)
        problems += consistency_problems(assistant, corpus)
        complete = len(assistant.documents()) == len(SMALL_DOCS)
        assistant.close()
        ok = not problems and complete and second.returncode == 0 and (killed or point.startswith("timer:"))
        result.passed &= ok
        result.details.append(
            f"{point}: exit {code}{' (killed)' if killed else ''}, {before} documents committed after the kill, "
            f"re-ingest added {len(report.get('added', []))} / unchanged {len(report.get('unchanged', []))}, "
            f"{'consistent' if not problems else 'PROBLEMS: ' + '; '.join(problems)}"
        )
    return result


def server_settings(workdir: Path, local_folder: str, corpus: Path, port: int) -> Settings:
    """Settings of one client of the `chroma run` server on `port`, with its own local folder."""
    return Settings(
        index_dir=workdir / local_folder,
        data_dir=workdir / "data",
        corpus_dir=corpus,
        chroma_mode=ChromaMode.http,
        chroma_port=port,
    )


def check_server_mode(workdir: Path) -> CheckResult:
    """Ingest through a real `chroma run` server, then query it from a second client process."""
    result = CheckResult("server mode", True)
    corpus = small_corpus(workdir / "corpus", SMALL_DOCS[:2])
    with chroma_server(workdir / "chroma-server") as port:
        settings = server_settings(workdir, "client-a", corpus, port)
        ingest = run_cli(settings, "ingest", str(corpus), "--json")
        added = json.loads(ingest.stdout or "{}").get("added", [])
        other = settings.model_copy(update={"index_dir": workdir / "client-b"})  # no shared local files
        docs = json.loads(run_cli(other, "docs", "--json").stdout or "{}").get("documents", [])
        search = json.loads(run_cli(other, "search", "惩罚性赔偿 价款十倍", "--json").stdout or "{}").get(
            "hits", []
        )
        lookup = json.loads(run_cli(other, "lookup", "食品药品纠纷规定第一条", "--json").stdout or "{}")
        ok = len(added) == 2 and len(docs) == 2 and bool(search) and bool(lookup.get("found"))
        result.passed = ok
        result.details.append(
            f"chroma run on 127.0.0.1:{port}; client A ingested {len(added)} documents; client B (own local "
            f"folder) listed {len(docs)} documents, search returned {len(search)} hits, look-up found={lookup.get('found')}"
        )
    return result


def check_concurrency(workdir: Path, assistant: Assistant | None = None, workers: int = 20) -> CheckResult:
    """20 concurrent search/ask calls (threads, library API) while new documents are ingested."""
    result = CheckResult("concurrency", True)
    corpus = small_corpus(workdir / "corpus", SMALL_DOCS[:2])
    own = assistant is None
    if assistant is None:
        assistant = Assistant(
            Settings(index_dir=workdir / "index", data_dir=workdir / "data", corpus_dir=corpus)
        )
    assistant.ingest([corpus])
    extra = small_corpus(workdir / "later", SMALL_DOCS[2:])
    questions = [
        ("search", "惩罚性赔偿 价款十倍"),
        ("ask", "购买者明知食品不符合安全标准还能要求赔偿吗？"),
        ("search", "食品药品纠纷 管辖"),
    ]
    errors: list[str] = []
    empties: list[str] = []
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        kind, text = questions[i % len(questions)]
        start = time.perf_counter()
        try:
            if kind == "search":
                empty = not assistant.search(text, k=5)
            else:
                answer = assistant.ask(text)
                empty = answer.refused
        except Exception as err:
            with lock:
                errors.append(f"{kind}: {type(err).__name__}: {err}")
            return
        with lock:
            latencies.append((time.perf_counter() - start) * 1000)
            if empty:
                empties.append(text)

    ingest_thread = threading.Thread(target=lambda: assistant.ingest([extra]))
    ingest_thread.start()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ingest_thread.join()
    docs = len(assistant.documents())
    if own:
        assistant.close()
    ordered = sorted(latencies) or [0.0]
    result.passed = not errors and not empties and docs == len(SMALL_DOCS)
    result.details.append(
        f"{workers} concurrent calls during an ingest of {len(SMALL_DOCS) - 2} documents: {len(errors)} exceptions, "
        f"{len(empties)} empty results, latency p50 {ordered[len(ordered) // 2]:.0f} ms, max {ordered[-1]:.0f} ms; "
        f"{docs} documents indexed afterwards"
    )
    result.details += errors[:5] + [f"empty: {e}" for e in empties[:5]]
    return result


def check_server_concurrency(workdir: Path, clients: int = 4) -> CheckResult:
    """Server mode: separate client processes search a `chroma run` server while another process
    ingests new documents into it."""
    result = CheckResult("server-mode concurrency", True)
    corpus = small_corpus(workdir / "corpus", SMALL_DOCS[:2])
    later = small_corpus(workdir / "later", SMALL_DOCS[2:])
    with chroma_server(workdir / "chroma-server") as port:
        settings = server_settings(workdir, "writer", corpus, port)
        first = run_cli(settings, "ingest", str(corpus), "--json")
        queries = workdir / "queries.jsonl"
        queries.write_text(
            "\n".join(
                json.dumps({"id": i, "question": q})
                for i, q in enumerate(["惩罚性赔偿 价款十倍", "食品药品纠纷 管辖法院"] * 5)
            )
            + "\n",
            encoding="utf-8",
        )
        ingest = subprocess.Popen(
            [sys.executable, "-m", "assistant", "ingest", str(later), "--json"],
            env=cli_env(settings),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=PROJECT_ROOT,
        )
        readers = [
            subprocess.Popen(
                [sys.executable, "-m", "assistant", "search", "--batch", str(queries), "--k", "3"],
                env=cli_env(settings.model_copy(update={"index_dir": workdir / f"reader-{i}"})),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=PROJECT_ROOT,
            )
            for i in range(clients)
        ]
        started = time.perf_counter()
        outputs = [r.communicate(timeout=600) for r in readers]
        elapsed = time.perf_counter() - started
        ingest_out, _ = ingest.communicate(timeout=600)
        lines = [json.loads(line) for out, _ in outputs for line in out.splitlines() if line.strip()]
        empty = [line for line in lines if not line.get("hits")]
        failed = [r.returncode for r in readers if r.returncode != 0]
        added = json.loads(ingest_out or "{}").get("added", [])
        docs = json.loads(run_cli(settings, "docs", "--json").stdout or "{}").get("documents", [])
        result.passed = (
            first.returncode == 0
            and not failed
            and not empty
            and len(lines) == 10 * clients
            and len(docs) == 4
        )
        result.details.append(
            f"{clients} client processes × 10 searches against 127.0.0.1:{port} while a fifth process ingested "
            f"{len(added)} documents: {len(lines)} results, {len(empty)} empty, {len(failed)} client failures, "
            f"{elapsed:.1f} s wall time for the clients (model load included); {len(docs)} documents afterwards"
        )
    return result


def check_bad_inputs(workdir: Path, assistant: Assistant | None = None) -> CheckResult:
    from assistant.evaluation.badfiles import make_bad_files, make_good_files

    result = CheckResult("bad input", True)
    folder = workdir / "batch"
    folder.mkdir(parents=True, exist_ok=True)
    good = make_good_files(folder)
    bad = make_bad_files(folder)
    own = assistant is None
    if assistant is None:
        assistant = Assistant(
            Settings(index_dir=workdir / "bad-index", data_dir=workdir / "data", corpus_dir=folder)
        )
    report = assistant.ingest([folder])
    reasons = {Path(f.path).name: f.reason for f in report.failed}
    for name, item in sorted(bad.items()):
        reason = reasons.get(item.path.name, "")
        ok = bool(reason)
        result.passed &= ok
        result.details.append(f"{name} ({item.path.name}): {'refused — ' + reason if ok else 'NOT refused'}")
    goods_in = {Path(p).name for p in report.added}
    for path in good:
        ok = path.name in goods_in
        result.passed &= ok
        result.details.append(f"good file {path.name}: {'indexed' if ok else 'MISSING'}")
    problems = consistency_problems(assistant)
    result.passed &= not problems
    result.details.append("index consistent" if not problems else "PROBLEMS: " + "; ".join(problems))
    if own:
        assistant.close()
    return result


def check_mutation_fuzz(workdir: Path, count: int = 300, assistant: Assistant | None = None) -> CheckResult:
    """Mutated real PDFs and DOCX files (assistant/evaluation/fuzz.py) through one ingest batch."""
    from assistant.evaluation.fuzz import run_fuzz

    own = assistant is None
    if assistant is None:
        assistant = Assistant(Settings(index_dir=workdir / "fuzz-index", data_dir=workdir / "data"))
    limit = assistant.settings.max_file_seconds
    fuzz = run_fuzz(assistant, workdir / "variants", count)
    problems = consistency_problems(assistant)
    if own:
        assistant.close()
    # A file's time includes embedding it; a hang would show as the per-file limit reached and passed.
    hung = [name for seconds, name in fuzz.slowest if seconds > limit + 30]
    result = CheckResult(
        "mutation fuzz", fuzz.variants >= count and not fuzz.unaccounted and not hung and not problems
    )
    result.details += [
        f"{fuzz.variants} variants (byte flips, truncation, duplicated and deleted regions, inflated streams) of "
        f"real PDFs and Word documents: {fuzz.indexed} indexed, {fuzz.refused} refused with a reason, "
        f"{len(fuzz.unaccounted)} unaccounted {fuzz.unaccounted[:5]}",
        f"{fuzz.seconds:.0f} s in all; slowest files (embedding included): "
        + ", ".join(f"{name} {seconds:.1f} s" for seconds, name in fuzz.slowest),
        f"peak memory: worker {fuzz.worker_max_rss_mb:.0f} MB, ingesting process {fuzz.ingest_max_rss_mb:.0f} MB "
        "(which also made the variants) "
        f"(limits: {assistant.settings.max_worker_memory_mb} MB address space, {limit} s per file)",
        "index consistent" if not problems else "PROBLEMS: " + "; ".join(problems),
        "reasons given: "
        + "; ".join(f"{reason} ×{n}" for reason, n in fuzz.reasons.most_common()),
    ]
    return result


def run(settings: Settings, report_path: Path | None = None) -> tuple[bool, str]:
    results: list[CheckResult] = []
    with tempfile.TemporaryDirectory(prefix="reliability-") as tmp:
        root = Path(tmp)
        for name, check in (
            ("server", check_server_mode),
            ("kills", check_kill_points),
            ("concurrency", check_concurrency),
            ("server-concurrency", check_server_concurrency),
            ("bad", check_bad_inputs),
            ("fuzz", check_mutation_fuzz),
        ):
            try:
                results.append(check(root / name))
            except Exception as err:  # a crashed check is a failed check, reported as such
                results.append(CheckResult(name, False, [f"check crashed: {type(err).__name__}: {err}"]))
    lines = [
        "# Reliability report",
        "",
        f"Generated by `python -m assistant eval reliability` on {date.today()}: a real `chroma run` server, "
        "SIGKILL at each write point of an ingest, concurrent calls during an ingest, the bad-input matrix and "
        "a mutation fuzz of real PDFs and Word documents.",
        "",
    ]
    for r in results:
        lines += [f"## {r.name}: {'passed' if r.passed else 'FAILED'}", ""]
        lines += [f"- {d}" for d in r.details] + [""]
    passed = sum(r.passed for r in results)
    summary = f"reliability: {passed} passed, {len(results) - passed} failed"
    lines.append(summary)
    path = report_path or REPORTS_DIR / "reliability.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return passed == len(results), summary
