"""The admin gate: which mode an app runs in, the password check, the delay after wrong attempts."""

from __future__ import annotations

import itertools
import logging
from typing import Any

import pytest

from assistant.admin import (
    MAX_FAILURE_DELAY,
    AdminMode,
    AdminSession,
    admin_mode,
    failure_delay,
    is_loopback,
    password_matches,
)
from assistant.settings import Settings


@pytest.fixture(autouse=True)
def _no_admin_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own ASSISTANT_ADMIN_* variables must not decide these tests."""
    monkeypatch.delenv("ASSISTANT_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("ASSISTANT_ALLOW_OPEN_ADMIN", raising=False)


def settings(**values: Any) -> Settings:
    """Settings from arguments and the (cleaned) environment, never from a `.env` file."""
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost", "LOCALHOST", " 127.0.0.1 ", "::ffff:127.0.0.1"]
)
def test_loopback_addresses(address: str) -> None:
    assert is_loopback(address)


@pytest.mark.parametrize(
    "address", [None, "", "  ", "0.0.0.0", "::", "192.168.1.20", "10.0.0.5", "fe80::1", "myhost", "localhost.evil"]
)
def test_other_addresses_are_not_loopback(address: str | None) -> None:
    # None/empty: Streamlit binds every interface.
    assert not is_loopback(address)


def test_mode_password_wins_whatever_the_address() -> None:
    s = settings(admin_password="geheim", allow_open_admin=True)
    for address in ("127.0.0.1", "0.0.0.0", None):
        assert admin_mode(s, address) is AdminMode.password


def test_mode_without_password() -> None:
    assert admin_mode(settings(), "127.0.0.1") is AdminMode.open
    assert admin_mode(settings(), "localhost") is AdminMode.open
    assert admin_mode(settings(), "0.0.0.0") is AdminMode.locked
    assert admin_mode(settings(), "192.168.1.20") is AdminMode.locked
    assert admin_mode(settings(), None) is AdminMode.locked
    assert admin_mode(settings(allow_open_admin=True), "0.0.0.0") is AdminMode.open_by_choice
    assert admin_mode(settings(allow_open_admin=True), "127.0.0.1") is AdminMode.open


@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_password_is_unset(blank: str) -> None:
    assert settings(admin_password=blank).admin_password is None
    assert admin_mode(settings(admin_password=blank), "0.0.0.0") is AdminMode.locked
    assert not password_matches(settings(admin_password=blank), blank)


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_ADMIN_PASSWORD", "管理员口令")
    monkeypatch.setenv("ASSISTANT_ALLOW_OPEN_ADMIN", "true")
    s = settings()
    assert s.admin_password is not None
    assert s.admin_password.get_secret_value() == "管理员口令"
    assert "管理员口令" not in repr(s)  # a SecretStr: never printed
    assert s.allow_open_admin
    monkeypatch.setenv("ASSISTANT_ADMIN_PASSWORD", "")
    assert settings().admin_password is None


def test_password_matches_exactly() -> None:
    s = settings(admin_password="管理员口令 1")
    assert password_matches(s, "管理员口令 1")
    for wrong in ("", "管理员口令", "管理员口令 1 ", "管理员口令 2", "x" * 1000):
        assert not password_matches(s, wrong)
    assert not password_matches(settings(), "")  # no password set: nothing matches


def test_failure_delay_grows_and_is_capped() -> None:
    delays = [failure_delay(n) for n in range(0, 9)]
    assert delays[0] == 0.0
    assert delays[1] > 0
    assert all(a <= b for a, b in itertools.pairwise(delays))
    assert delays[2] > delays[1]
    assert max(delays) == MAX_FAILURE_DELAY <= 5
    assert failure_delay(1000) == MAX_FAILURE_DELAY


def test_session_unlocks_with_the_right_password_and_locks_again(caplog: pytest.LogCaptureFixture) -> None:
    s = settings(admin_password="geheim")
    slept: list[float] = []
    session = AdminSession()
    assert not session.may_change(AdminMode.password)

    with caplog.at_level(logging.WARNING, logger="assistant.admin"):
        assert not session.try_unlock(s, "falsch-1", sleep=slept.append)
        assert not session.try_unlock(s, "falsch-2", sleep=slept.append)
    assert not session.unlocked
    assert slept == [failure_delay(1), failure_delay(2)]
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "admin password rejected (attempt 1 this session)",
        "admin password rejected (attempt 2 this session)",
    ]
    assert all(r.levelno == logging.WARNING for r in caplog.records)
    assert "falsch" not in caplog.text  # the attempt itself is never logged

    assert session.try_unlock(s, "geheim", sleep=slept.append)
    assert len(slept) == 2  # the right password is not slowed down
    assert session.may_change(AdminMode.password)
    session.lock()
    assert not session.may_change(AdminMode.password)


def test_may_change_by_mode() -> None:
    session = AdminSession()
    assert session.may_change(AdminMode.open)
    assert session.may_change(AdminMode.open_by_choice)
    assert not session.may_change(AdminMode.locked)
    assert not session.may_change(AdminMode.password)
    session.unlocked = True
    assert not session.may_change(AdminMode.locked)  # a stale unlock never opens a locked app
