"""The package installs anywhere: default folders inside and outside a checkout."""

from __future__ import annotations

import ast
import os
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
