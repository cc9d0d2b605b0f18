"""Users, passwords, roles, sessions, API tokens and CSRF tokens for the web app.

Passwords are hashed with scrypt (stdlib, memory-hard) and a random salt per user; the stored form
``scrypt$n$r$p$salt$hash`` carries its own parameters, so they can be raised later without breaking old
hashes. The session cookie (Starlette's ``SessionMiddleware``, signed with the settings' ``secret_key``)
holds a random session id and the CSRF token; the store keeps the id's SHA-256 in ``web_sessions``, so
signing out, a role change or a removal ends the session at once (a copied cookie is then worthless),
and the role is read from the database on every request. API tokens are random too, stored as SHA-256
(they carry 256 bits: no slow hash needed), one per user.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dispatcher.config import secret_bits
from dispatcher.errors import ConfigError, InputError
from dispatcher.store import ApiToken, Role, User, WebSession, audit, utcnow

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # ~16 MB, ~50 ms: OWASP's scrypt minimum
MIN_PASSWORD = 8
SESSION_MAX_AGE_S = 12 * 3600
MIN_SECRET_BYTES = 32
MIN_SECRET_BITS = 128  # config.secret_bits(): 32 random hex digits or 22 of token_urlsafe
# Values people leave in place (compose defaults, tutorials); a key made of these is no secret.
PLACEHOLDERS = (
    "change-me", "changeme", "change_me", "change-this", "changethis", "replace-me", "replaceme",
    "secret-key", "secret_key", "secretkey", "secret", "password", "dispatcher", "default",
    "example", "insecure", "please", "your", "test", "dev", "key",
)  # fmt: skip
TOKEN_PREFIX = "dsp_"  # recognisable in a leaked file or a secret scanner
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


def _user(session: Session, name: str) -> User:
    user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    if user is None:
        raise InputError(f"no user {name!r}")
    return user


def set_role(session: Session, name: str, role: str, *, actor: str) -> None:
    """Change the role; the user's browser sessions end (they sign in again under the new role)."""
    checked = Role(role)
    user = _user(session, name)
    user.role = checked.value
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    audit(session, actor, "user.role", user=name, role=checked.value)
    session.commit()


def remove_user(session: Session, name: str, *, actor: str) -> None:
    """Remove the user; the database drops their sessions and API token with them (ON DELETE CASCADE)."""
    user = _user(session, name)
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    session.delete(user)
    audit(session, actor, "user.remove", user=name)
    session.commit()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(session: Session, user: CurrentUser) -> str:
    """A new server-side session for ``user`` (commits); returns the random id the cookie carries."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.execute(delete(WebSession).where(WebSession.expires_at < now))  # sweep the expired
    user_id = session.execute(select(User.id).where(User.name == user.name)).scalar_one()
    expires = now + timedelta(seconds=SESSION_MAX_AGE_S)
    session.add(WebSession(token_hash=_digest(token), user_id=user_id, expires_at=expires))
    session.commit()
    return token


def session_owner(session: Session, token: str) -> CurrentUser | None:
    """The user of a live session id; None once it ended, expired or never existed."""
    row = session.execute(
        select(User.name, User.role)
        .join(WebSession, WebSession.user_id == User.id)
        .where(WebSession.token_hash == _digest(token), WebSession.expires_at > utcnow())
    ).one_or_none()
    return None if row is None else CurrentUser(row.name, Role(row.role))


def end_session(session: Session, token: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_hash == _digest(token)))
    session.commit()


def issue_token(session: Session, name: str, *, actor: str) -> str:
    """A new API token for ``name``, replacing any previous one (commits). Shown once: only its hash
    is kept."""
    user = _user(session, name)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    session.add(ApiToken(token_hash=_digest(token), user_id=user.id))
    audit(session, actor, "user.token", user=name)
    session.commit()
    return token


def revoke_tokens(session: Session, name: str, *, actor: str) -> int:
    """Delete the user's API token (commits); how many there were."""
    user = _user(session, name)
    result = session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    revoked = int(getattr(result, "rowcount", 0))
    audit(session, actor, "user.token.revoke", user=name, revoked=revoked)
    session.commit()
    return revoked


def token_owner(session: Session, token: str) -> CurrentUser | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = session.execute(
        select(User.name, User.role)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == _digest(token))
    ).one_or_none()
    return None if row is None else CurrentUser(row.name, Role(row.role))


def check_secret_key(key: str | None) -> str:
    """The cookie-signing key if it is strong: at least 32 bytes and not made of placeholder words.
    ``ConfigError`` naming the variable otherwise (a known key lets anyone forge an admin session)."""
    where = "DISPATCHER_SECRET_KEY (setting secret_key)"
    advice = "set it to a random value, e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'"
    if not key:
        raise ConfigError(f"{where} is not set: the web app signs session cookies with it; {advice}")
    if len(key.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"{where} is too short ({len(key.encode())} bytes, at least {MIN_SECRET_BYTES}); {advice}"
        )
    rest = key.lower()
    for word in PLACEHOLDERS:
        rest = rest.replace(word, "")
    if sum(ch.isalnum() for ch in rest) < 16 or len(set(key)) < 8:
        raise ConfigError(f"{where} is a placeholder, not a secret; {advice}")
    if secret_bits(key) < MIN_SECRET_BITS:
        raise ConfigError(f"{where} is guessable (runs or repeats of characters), not a secret; {advice}")
    return key


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))
