"""Users, roles, tokens and page sessions of the command centre.

A users file (TOML, owner-only) holds each user's name, role and a salted scrypt hash of their
token; ``crowdsafe users add NAME --role R`` makes a random token, prints it once and stores only
its hash. A token is ``cs_<key>_<secret>``: ``key`` finds the user's entry without trying every
hash. ``CROWDSAFE_TOKEN``, when set, is also accepted, as the operator ``operator`` (a
single-operator setup).

Roles, each with the rights of those before it: ``viewer`` (read), ``operator`` (acknowledge,
raise manual incidents), ``supervisor`` (resolve, silence).

The page logs in once with its token and gets a session cookie: a random id mapped here to the
user, never the token itself. Tokens are never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Role = Literal["viewer", "operator", "supervisor"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "supervisor")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
TOKEN = re.compile(r"^cs_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")
# scrypt's interactive-login cost (RFC 7914: N=2^14, r=8, p=1; 16 MiB, tens of ms).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


class UsersError(ValueError):
    """A users file that cannot be read or a user that cannot be added."""


@dataclass(frozen=True)
class User:
    name: str
    role: Role

    def may(self, role: Role) -> bool:
        """Whether this user has ``role``'s rights (a supervisor has an operator's)."""
        return ROLES.index(self.role) >= ROLES.index(role)


@dataclass(frozen=True)
class _Entry:
    name: str
    role: Role
    key: str
    hash: str  # scrypt$N$r$p$salt$digest (base64)


def hash_token(token: str, salt: bytes | None = None) -> str:
    """A salted scrypt hash of ``token`` in one string (what the users file stores).

    >>> h = hash_token("cs_0123456789ab_" + "x" * 32)
    >>> h.startswith("scrypt$16384$8$1$"), verify_token("cs_0123456789ab_" + "x" * 32, h)
    (True, True)
    """
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(
        token.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=64 * 1024 * 1024
    )
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_token(token: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(
            token.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
            maxmem=64 * 1024 * 1024, dklen=len(want),
        )  # fmt: skip
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def new_token() -> tuple[str, str]:
    """A fresh token and its lookup key."""
    key = secrets.token_hex(6)
    return f"cs_{key}_{secrets.token_urlsafe(32)}", key


def _quote(text: str) -> str:
    # A TOML basic string: names and hashes hold no quote, backslash or control character.
    assert re.fullmatch(r"[^\"\\\x00-\x1f]*", text), text
    return f'"{text}"'


def read_users(path: Path) -> list[_Entry]:
    """The users of ``path`` (none when it does not exist)."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsersError(f"{path}: {exc}") from None
    out = []
    for i, u in enumerate(data.get("users", [])):
        try:
            entry = _Entry(u["name"], u["role"], u["key"], u["hash"])
        except (KeyError, TypeError):
            raise UsersError(f"{path}: user #{i + 1} needs name, role, key and hash") from None
        if entry.role not in ROLES:
            raise UsersError(f"{path}: user {entry.name!r}: unknown role {entry.role!r}")
        out.append(entry)
    return out


def write_users(path: Path, entries: list[_Entry]) -> None:
    """Write the users file, owner-only (0600), replacing it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# crowdsafe command-centre users (crowdsafe users add NAME --role ROLE)", ""]
    for e in entries:
        lines += [
            "[[users]]",
            f"name = {_quote(e.name)}",
            f"role = {_quote(e.role)}",
            f"key = {_quote(e.key)}",
            f"hash = {_quote(e.hash)}",
            "",
        ]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def add_user(path: Path, name: str, role: str) -> str:
    """Add (or give a new token to) user ``name`` with ``role``; the new token (shown once)."""
    if not NAME.match(name):
        raise UsersError(f"bad user name {name!r}: letters, digits and . _ @ - (at most 64)")
    if role not in ROLES:
        raise UsersError(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
    token, key = new_token()
    entries = [e for e in read_users(path) if e.name != name]
    entries.append(_Entry(name, role, key, hash_token(token)))  # type: ignore[arg-type]
    write_users(path, entries)
    return token


def remove_user(path: Path, name: str) -> bool:
    entries = read_users(path)
    kept = [e for e in entries if e.name != name]
    if len(kept) == len(entries):
        return False
    write_users(path, kept)
    return True


class Authenticator:
    """Who a token or a session cookie belongs to. The users file is re-read when it changes,
    so ``crowdsafe users add`` takes effect without a restart."""

    def __init__(
        self, users_file: Path, env_token: str | None = None, session_idle_s: float = 43200
    ) -> None:
        self.users_file = users_file
        self._env_token = env_token or None
        self.session_idle_s = session_idle_s
        self._lock = threading.Lock()
        self._stamp: tuple | None = ()
        self._by_key: dict[str, _Entry] = {}
        # sha256 of tokens already verified -> (the entry's hash, user): scrypt once per token
        self._verified: dict[bytes, tuple[str, User]] = {}
        self._sessions: dict[str, tuple[User, float]] = {}

    def _reload(self) -> None:
        try:
            st = self.users_file.stat()
            stamp: tuple | None = (st.st_mtime_ns, st.st_ino, st.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp:
            return
        entries = read_users(self.users_file)
        self._by_key = {e.key: e for e in entries}
        self._verified.clear()
        self._stamp = stamp

    def user_for_token(self, token: str | None) -> User | None:
        """The user of ``token``, or None."""
        if not token or len(token) > 200:
            return None
        if self._env_token and hmac.compare_digest(token.encode(), self._env_token.encode()):
            return User("operator", "operator")
        m = TOKEN.match(token)
        if not m:
            return None
        with self._lock:
            self._reload()
            entry = self._by_key.get(m.group(1))
            if entry is None:
                return None
            fingerprint = hashlib.sha256(token.encode()).digest()
            cached = self._verified.get(fingerprint)
            if cached is not None and cached[0] == entry.hash:
                return cached[1]
        if not verify_token(token, entry.hash):
            return None
        user = User(entry.name, entry.role)
        with self._lock:
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[fingerprint] = (entry.hash, user)
        return user

    def still_valid(self, user: User) -> bool:
        """Whether ``user`` still exists with that role (a removed user's session ends)."""
        if self._env_token and user == User("operator", "operator"):
            return True
        with self._lock:
            self._reload()
            return any(e.name == user.name and e.role == user.role for e in self._by_key.values())

    # --- page sessions -----------------------------------------------------------------------

    def open_session(self, user: User) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._expire(time.monotonic())
            self._sessions[sid] = (user, time.monotonic())
        return sid

    def session_user(self, sid: str | None) -> User | None:
        if not sid:
            return None
        now = time.monotonic()
        with self._lock:
            found = self._sessions.get(sid)
            if found is None or now - found[1] > self.session_idle_s:
                self._sessions.pop(sid, None)
                return None
            self._sessions[sid] = (found[0], now)
        if not self.still_valid(found[0]):
            self.close_session(sid)
            return None
        return found[0]

    def close_session(self, sid: str | None) -> None:
        with self._lock:
            self._sessions.pop(sid or "", None)

    def _expire(self, now: float) -> None:
        for sid in [s for s, (_, t) in self._sessions.items() if now - t > self.session_idle_s]:
            del self._sessions[sid]
