"""Who may change the document library from the app: the admin gate (decided here, rendered by assistant/ui/).

Reading (chat, look-up, review, trainer) is open to everyone who can reach the app. Changing the index
(upload and import, re-index, delete, rebuild) needs more once the app is reachable by others:

- an admin password is set → the session must enter it once (`AdminMode.password`);
- no password and the app listens on a loopback address only → only this machine can reach it, so the
  library stays open as it always was (`AdminMode.open`);
- no password and the app listens on another address (a LAN IP, 0.0.0.0, or Streamlit's default of all
  interfaces) → anyone on the network could change the library, so changes are refused
  (`AdminMode.locked`) unless the operator knowingly allowed it (`AdminMode.open_by_choice`).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from assistant.settings import Settings

log = logging.getLogger(__name__)

FIRST_FAILURE_DELAY = 0.5
"""Seconds a first wrong password waits; each further failure in the session doubles it."""
MAX_FAILURE_DELAY = 4.0
"""Cap on that wait: enough to make guessing slow, short enough not to punish a typo for long."""


class AdminMode(StrEnum):
    """How the app's library-changing actions are guarded."""

    password = "password"
    """An admin password is set: changes need it, once per browser session."""
    open = "open"
    """No password, loopback only: only this machine reaches the app, changes are open (as always)."""
    open_by_choice = "open_by_choice"
    """No password, reachable from the network, `allow_open_admin` set: open, knowingly."""
    locked = "locked"
    """No password, reachable from the network: changes are refused until one is set."""


def is_loopback(address: str | None) -> bool:
    """Whether a server bind address accepts connections from this machine only.

    Empty or None is Streamlit's default, which binds all interfaces, so it is not loopback; a host name
    other than `localhost` could resolve anywhere, so it is not trusted either.
    """
    host = (address or "").strip().strip("[]").lower()
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def admin_mode(settings: Settings, bound_address: str | None) -> AdminMode:
    """The gate for an app bound to `bound_address` (Streamlit's `server.address`)."""
    if settings.admin_password is not None:
        return AdminMode.password
    if is_loopback(bound_address):
        return AdminMode.open
    return AdminMode.open_by_choice if settings.allow_open_admin else AdminMode.locked


def password_matches(settings: Settings, attempt: str) -> bool:
    """Whether `attempt` is the admin password, compared in constant time (no timing hint of how much of
    it was right). False when no password is set."""
    if settings.admin_password is None:
        return False
    expected = settings.admin_password.get_secret_value().encode("utf-8")
    return hmac.compare_digest(attempt.encode("utf-8"), expected)


def failure_delay(failures: int) -> float:
    """Seconds to wait after the `failures`-th wrong password of a session: 0.5, 1, 2, 4, 4, … — guessing
    gets slow quickly, a mistyped password costs half a second."""
    if failures <= 0:
        return 0.0
    return min(FIRST_FAILURE_DELAY * 2 ** (failures - 1), MAX_FAILURE_DELAY)


@dataclass
class AdminSession:
    """One browser session's admin state: unlocked or not, and its wrong attempts so far.

    The app keeps one per Streamlit session (`st.session_state`); once unlocked it stays unlocked until
    `lock()` (退出管理) or the session ends.
    """

    unlocked: bool = False
    failures: int = 0

    def try_unlock(
        self, settings: Settings, attempt: str, sleep: Callable[[float], None] = time.sleep
    ) -> bool:
        """Check `attempt`; right → unlocked. Wrong → logged (without the attempt's text) and slowed down
        by `failure_delay`, so a script cannot try passwords quickly from one session."""
        if password_matches(settings, attempt):
            self.unlocked = True
            self.failures = 0
            return True
        self.failures += 1
        log.warning("admin password rejected (attempt %d this session)", self.failures)
        sleep(failure_delay(self.failures))
        return False

    def lock(self) -> None:
        self.unlocked = False

    def may_change(self, mode: AdminMode) -> bool:
        """Whether this session may change the library under `mode`."""
        if mode is AdminMode.password:
            return self.unlocked
        return mode in (AdminMode.open, AdminMode.open_by_choice)
