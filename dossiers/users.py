"""People who sign in to the web interface: examiners and office-admins of an office, and the
exchange's admins. Passwords are Argon2id hashes; repeated failures lock the account."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from crypto import secrets as csecrets

from . import audit
from .db import utcnow
from .errors import Conflict, InvalidRequest, NotFound, SelfLockout
from .models import Office, WebSession, WebUser

USER_ROLES = ("examiner", "office-admin")
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=12)
MIN_PASSWORD = 12


class SignInRefused(Exception):
    """Wrong username or password, a locked or disabled account: one message for all but
    the lock-out, so the form does not tell which usernames exist."""

    def __init__(self, message: str):
        super().__init__(message)


def create_user(s: Session, *, username: str, display_name: str, office: str | None, roles: list[str],
                password: str, email: str | None, actor: str) -> WebUser:
    username = username.strip().lower()
    if not username or len(username) > 100 or not all(c.isalnum() or c in "._-@" for c in username):
        raise InvalidRequest("a username is letters, digits and . _ - @")
    if len(password) < MIN_PASSWORD:
        raise InvalidRequest(f"a password has at least {MIN_PASSWORD} characters")
    if office is None:
        if roles != ["admin"]:
            raise InvalidRequest("a user without an office is an exchange admin")
    else:
        if s.get(Office, office) is None:
            raise NotFound(f"no office {office}")
        if not roles or set(roles) - set(USER_ROLES):
            raise InvalidRequest(f"roles are a non-empty subset of {', '.join(USER_ROLES)}")
    if s.scalars(select(WebUser).where(WebUser.username == username)).first():
        raise Conflict(f"the username {username} is taken")
    user = WebUser(id=str(uuid.uuid4()), username=username, display_name=display_name or username,
                   office_code=office, roles=sorted(set(roles)), email=email,
                   password_hash=csecrets.hash_secret(password))
    s.add(user)
    s.flush()
    audit.append(s, action="user.create", outcome="ok", actor=actor, office=office, subject=username,
                 detail={"roles": user.roles})
    return user


def users_of(s: Session, office: str | None) -> list[WebUser]:
    q = select(WebUser).order_by(WebUser.username)
    if office is not None:
        q = q.where(WebUser.office_code == office)
    return list(s.scalars(q))


def exchange_admins(s: Session) -> list[WebUser]:
    """The people of the exchange's operator (no office, role admin)."""
    return list(s.scalars(select(WebUser).where(WebUser.office_code.is_(None)).order_by(WebUser.username)))


def get_user(s: Session, office: str | None, user_id: str) -> WebUser:
    """A person of ``office`` (``None``: the exchange's admins); anyone else's answers as unknown."""
    user = s.get(WebUser, user_id) if user_id else None
    if user is None or user.office_code != office:
        raise NotFound("no such person" + (f" at office {office}" if office else " among the exchange's admins"))
    return user


def _end_sessions(s: Session, user: WebUser) -> None:
    s.execute(delete(WebSession).where(WebSession.user_id == user.id))


def disable_user(s: Session, office: str | None, user_id: str, *, actor: str, acting_user_id: str) -> WebUser:
    """The person cannot sign in, and every open session of theirs ends now. Nobody disables
    themselves (``acting_user_id``): an office would be left without its administrator."""
    user = get_user(s, office, user_id)
    if user.id == acting_user_id:
        raise SelfLockout("you cannot disable your own account; ask another administrator")
    _end_sessions(s, user)
    if user.disabled_at is None:
        user.disabled_at = utcnow()
        s.flush()
        audit.append(s, action="user.disable", outcome="ok", actor=actor, office=office, subject=user.username)
    return user


def enable_user(s: Session, office: str | None, user_id: str, *, actor: str) -> WebUser:
    user = get_user(s, office, user_id)
    if user.disabled_at is not None:
        user.disabled_at = None
        s.flush()
        audit.append(s, action="user.enable", outcome="ok", actor=actor, office=office, subject=user.username)
    return user


def reset_password(s: Session, office: str | None, user_id: str, password: str, *, actor: str) -> WebUser:
    """Set a new password (given to the person by another channel). It also lifts a lock-out and
    ends the person's open sessions: a password that leaked must not leave a session behind."""
    if len(password) < MIN_PASSWORD:
        raise InvalidRequest(f"a password has at least {MIN_PASSWORD} characters")
    user = get_user(s, office, user_id)
    user.password_hash = csecrets.hash_secret(password)
    user.failed_attempts, user.locked_until = 0, None
    _end_sessions(s, user)
    s.flush()
    audit.append(s, action="user.reset_password", outcome="ok", actor=actor, office=office, subject=user.username)
    return user


def unlock_user(s: Session, office: str | None, user_id: str, *, actor: str) -> WebUser:
    """Lift a lock-out after failed sign-ins, before it runs out by itself."""
    user = get_user(s, office, user_id)
    was_locked = user.locked_until is not None and user.locked_until > utcnow()
    user.failed_attempts, user.locked_until = 0, None
    s.flush()
    if was_locked:
        audit.append(s, action="user.unlock", outcome="ok", actor=actor, office=office, subject=user.username)
    return user


def sign_in(s: Session, username: str, password: str) -> WebUser:
    now = utcnow()
    user = s.scalars(select(WebUser).where(WebUser.username == username.strip().lower())).first()
    ok = csecrets.secret_matches(user.password_hash if user else None, password)
    if user is None:
        audit.append(s, action="user.sign_in", outcome="refused", subject=username[:100], reason="unknown user")
        raise SignInRefused("Wrong username or password.")
    if user.locked_until is not None and user.locked_until > now:
        audit.append(s, action="user.sign_in", outcome="refused", office=user.office_code, subject=user.username,
                     reason="locked")
        minutes = max(1, int((user.locked_until - now).total_seconds() // 60) + 1)
        raise SignInRefused(f"Too many failed attempts: this account is locked for {minutes} more minutes.")
    if not ok or user.disabled_at is not None:
        user.failed_attempts += 1
        if user.failed_attempts >= MAX_FAILURES:
            user.locked_until, user.failed_attempts = now + LOCKOUT, 0
        audit.append(s, action="user.sign_in", outcome="refused", office=user.office_code, subject=user.username,
                     reason="wrong password" if not ok else "disabled")
        raise SignInRefused("Wrong username or password.")
    user.failed_attempts, user.locked_until = 0, None
    audit.append(s, action="user.sign_in", outcome="ok", office=user.office_code, subject=user.username)
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(s: Session, user: WebUser) -> tuple[str, WebSession]:
    token = secrets.token_urlsafe(32)
    ws = WebSession(token_sha256=_digest(token), user_id=user.id, csrf_token=secrets.token_urlsafe(32),
                    expires_at=utcnow() + SESSION_LIFETIME)
    s.add(ws)
    s.flush()
    return token, ws


def session_user(s: Session, token: str | None) -> tuple[WebUser, WebSession] | None:
    if not token or len(token) > 200:
        return None
    ws = s.get(WebSession, _digest(token))
    if ws is None or ws.expires_at <= utcnow():
        return None
    user = s.get(WebUser, ws.user_id)
    if user is None or user.disabled_at is not None:
        return None
    return user, ws


def close_session(s: Session, token: str | None) -> None:
    if token:
        s.execute(delete(WebSession).where(WebSession.token_sha256 == _digest(token)))
