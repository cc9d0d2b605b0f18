"""Users, passwords, roles, sessions and CSRF tokens for the web app.

Passwords are hashed with scrypt (stdlib, memory-hard) and a random salt per user; the stored form
``scrypt$n$r$p$salt$hash`` carries its own parameters, so they can be raised later without breaking old
hashes. The session cookie (Starlette's ``SessionMiddleware``, signed with the settings' ``secret_key``)
holds only the user's name and the CSRF token: the role is read from the database on every request, so
a role change or a removal takes effect at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatcher.errors import InputError
from dispatcher.store import Role, User, audit

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # ~16 MB, ~50 ms: OWASP's scrypt minimum
MIN_PASSWORD = 8
RANK = {Role.VIEWER: 0, Role.SENDER: 1, Role.ADMIN: 2}
_DUMMY_HASH: str | None = None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=256 * 1024 * 1024,
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


@dataclass(frozen=True)
class CurrentUser:
    name: str
    role: Role

    def can(self, role: Role) -> bool:
        return RANK[self.role] >= RANK[role]


def authenticate(session: Session, name: str, password: str) -> CurrentUser | None:
    """The user if the password matches. An unknown name costs the same time as a wrong password."""
    global _DUMMY_HASH
    user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    if user is None:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = hash_password(secrets.token_hex(8))
        verify_password(password, _DUMMY_HASH)
        return None
    if not verify_password(password, user.password_hash):
        return None
    return CurrentUser(user.name, Role(user.role))


def load_user(session: Session, name: str) -> CurrentUser | None:
    role = session.execute(select(User.role).where(User.name == name)).scalar_one_or_none()
    return None if role is None else CurrentUser(name, Role(role))


def check_new_user(name: str, password: str, role: str) -> Role:
    if not name or len(name) > 64 or not name.isprintable() or name != name.strip():
        raise InputError("a user name is 1-64 printable characters without surrounding spaces")
    if len(password) < MIN_PASSWORD:
        raise InputError(f"a password needs at least {MIN_PASSWORD} characters")
    try:
        return Role(role)
    except ValueError:
        raise InputError(f"unknown role {role!r} (expected viewer, sender or admin)") from None


def add_user(session: Session, name: str, password: str, role: str, *, actor: str) -> None:
    """Create a user (commits). ``InputError`` if the name is taken or the password too short."""
    checked = check_new_user(name, password, role)
    if session.execute(select(User.id).where(User.name == name)).scalar_one_or_none() is not None:
        raise InputError(f"user {name!r} already exists")
    session.add(User(name=name, password_hash=hash_password(password), role=checked.value))
    audit(session, actor, "user.add", user=name, role=checked.value)
    session.commit()


def set_role(session: Session, name: str, role: str, *, actor: str) -> None:
    checked = Role(role)
    user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    if user is None:
        raise InputError(f"no user {name!r}")
    user.role = checked.value
    audit(session, actor, "user.role", user=name, role=checked.value)
    session.commit()


def remove_user(session: Session, name: str, *, actor: str) -> None:
    user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    if user is None:
        raise InputError(f"no user {name!r}")
    session.delete(user)
    audit(session, actor, "user.remove", user=name)
    session.commit()


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))
