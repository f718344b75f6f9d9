"""People who sign in to the web interface: examiners and office-admins of an office, and the
exchange's admins. Passwords are Argon2id hashes; repeated failures lock the account."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta

from sqlalchemy import case, delete, literal, or_, select, update
from sqlalchemy.orm import Session

from crypto import secrets as csecrets

from . import audit
from .db import UTCDateTime, utcnow
from .errors import Conflict, InvalidRequest, NotFound, SelfLockout
from .models import Office, WebSession, WebUser
from .vocab import AuditAction, AuditOutcome, UserRole

USER_ROLES = tuple(UserRole)
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=12)
MIN_PASSWORD = 12


# The one answer to every refused sign-in: an unknown username, a wrong password, a locked or a
# disabled account read the same, so the form does not tell which usernames exist.
REFUSED = (f"Wrong username or password. After {MAX_FAILURES} failed attempts an account is locked for "
           f"{int(LOCKOUT.total_seconds() // 60)} minutes.")


class SignInRefused(Exception):
    """Wrong username or password, a locked or disabled account: one message (:data:`REFUSED`)."""

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
                   password_hash=csecrets.hash_password(password))
    s.add(user)
    s.flush()
    audit.append(s, action=AuditAction.USER_CREATE, outcome=AuditOutcome.OK,
                 actor=actor, office=office, subject=username,
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
        audit.append(s, action=AuditAction.USER_DISABLE, outcome=AuditOutcome.OK,
                     actor=actor, office=office, subject=user.username)
    return user


def enable_user(s: Session, office: str | None, user_id: str, *, actor: str) -> WebUser:
    user = get_user(s, office, user_id)
    if user.disabled_at is not None:
        user.disabled_at = None
        s.flush()
        audit.append(s, action=AuditAction.USER_ENABLE, outcome=AuditOutcome.OK,
                     actor=actor, office=office, subject=user.username)
    return user


def reset_password(s: Session, office: str | None, user_id: str, password: str, *, actor: str) -> WebUser:
    """Set a new password (given to the person by another channel). It also lifts a lock-out and
    ends the person's open sessions: a password that leaked must not leave a session behind."""
    if len(password) < MIN_PASSWORD:
        raise InvalidRequest(f"a password has at least {MIN_PASSWORD} characters")
    user = get_user(s, office, user_id)
    user.password_hash = csecrets.hash_password(password)
    user.failed_attempts, user.locked_until = 0, None
    _end_sessions(s, user)
    s.flush()
    audit.append(s, action=AuditAction.USER_RESET_PASSWORD, outcome=AuditOutcome.OK,
                 actor=actor, office=office, subject=user.username)
    return user


def unlock_user(s: Session, office: str | None, user_id: str, *, actor: str) -> WebUser:
    """Lift a lock-out after failed sign-ins, before it runs out by itself."""
    user = get_user(s, office, user_id)
    was_locked = user.locked_until is not None and user.locked_until > utcnow()
    user.failed_attempts, user.locked_until = 0, None
    s.flush()
    if was_locked:
        audit.append(s, action=AuditAction.USER_UNLOCK, outcome=AuditOutcome.OK,
                     actor=actor, office=office, subject=user.username)
    return user


def _count_failure(s: Session, user_id: str, now) -> bool:
    """One failed attempt, counted in a single statement so that parallel attempts cannot lose
    each other's count; the attempt that reaches :data:`MAX_FAILURES` locks the account in the
    same statement. Attempts while the account is locked do not count (and do not extend it).
    Returns False when the account was locked already."""
    reaches = WebUser.failed_attempts + 1 >= MAX_FAILURES
    counted = s.execute(
        update(WebUser)
        .where(WebUser.id == user_id, or_(WebUser.locked_until.is_(None), WebUser.locked_until <= now))
        .values(failed_attempts=case((reaches, 0), else_=WebUser.failed_attempts + 1),
                locked_until=case((reaches, literal(now + LOCKOUT, UTCDateTime)), else_=WebUser.locked_until))
        .returning(WebUser.id)
        .execution_options(synchronize_session=False)
    ).first()
    return counted is not None


def _clear_failures(s: Session, user_id: str, now) -> bool:
    """Let the person in: only if the account is neither locked nor disabled at this moment (a
    lock set by a parallel attempt since the row was read wins). Returns False when refused."""
    cleared = s.execute(
        update(WebUser)
        .where(WebUser.id == user_id, WebUser.disabled_at.is_(None),
               or_(WebUser.locked_until.is_(None), WebUser.locked_until <= now))
        .values(failed_attempts=0, locked_until=None)
        .returning(WebUser.id)
        .execution_options(synchronize_session=False)
    ).first()
    return cleared is not None


def sign_in(s: Session, username: str, password: str) -> WebUser:
    """The person, or :class:`SignInRefused` with the one message :data:`REFUSED`, whether the
    username is unknown, the password wrong, or the account locked or disabled. Every path does
    one Argon2 verification, so neither the answer nor its time tells which usernames exist."""
    now = utcnow()
    user = s.scalars(select(WebUser).where(WebUser.username == username.strip().lower())).first()
    ok = csecrets.password_matches(user.password_hash if user else None, password)
    if user is None:
        audit.append(s, action=AuditAction.USER_SIGN_IN, outcome=AuditOutcome.REFUSED,
                     subject=username[:100], reason="unknown user")
        raise SignInRefused(REFUSED)
    reason: str | None
    if not ok or user.disabled_at is not None:
        counted = _count_failure(s, user.id, now)
        reason = "locked" if not counted else "wrong password" if not ok else "disabled"
    else:
        reason = None if _clear_failures(s, user.id, now) else "locked"
    s.expire(user, ["failed_attempts", "locked_until"])
    if reason is not None:
        audit.append(s, action=AuditAction.USER_SIGN_IN, outcome=AuditOutcome.REFUSED,
                     office=user.office_code, subject=user.username,
                     reason=reason)
        raise SignInRefused(REFUSED)
    audit.append(s, action=AuditAction.USER_SIGN_IN, outcome=AuditOutcome.OK,
                 office=user.office_code, subject=user.username)
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
