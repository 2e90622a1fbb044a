"""The sign-in throttle, in the database so that its limit holds across every process and
machine: LOGIN_THROTTLE_MAX_FAILURES per email and client address, and
LOGIN_THROTTLE_ACCOUNT_MAX_FAILURES per email from anywhere, in a sliding window of
LOGIN_THROTTLE_WINDOW_SECONDS.

An attempt is counted *before* its password is checked (committed, then counted), so a burst
of concurrent guesses cannot all slip under the limit; the n-th attempt to commit sees at
least n. One over the limit is refused without checking the password (the guesser learns
nothing) and not kept, so refusals do not extend the lock. A successful sign-in clears its
email and address's attempts.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, func, select

from .models import SignInAttempt, utcnow


@dataclass(frozen=True)
class Throttled:
    """Sign-in refused for now; `retry_after` seconds until the oldest counted attempt expires."""

    retry_after: float

    @property
    def minutes(self) -> int:
        return max(1, math.ceil(self.retry_after / 60))


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def begin_attempt(db, email: str, client_ip: str) -> uuid.UUID | Throttled:
    """Count a sign-in attempt (commits); its id, or Throttled when over a limit (not kept)."""
    config = current_app.config
    now = utcnow()
    window_start = now - timedelta(seconds=config["LOGIN_THROTTLE_WINDOW_SECONDS"])
    pair_key, account_key = _digest(email, client_ip), _digest(email)
    # Attempts past the window are of no use to anyone: keep the table small.
    db.session.execute(delete(SignInAttempt).where(SignInAttempt.created_at < window_start)
                       .execution_options(synchronize_session=False))
    attempt = SignInAttempt(pair_key=pair_key, account_key=account_key, created_at=now)
    db.session.add(attempt)
    db.session.commit()
    attempt_id = attempt.id
    for column, key, limit in ((SignInAttempt.pair_key, pair_key, config["LOGIN_THROTTLE_MAX_FAILURES"]),
                               (SignInAttempt.account_key, account_key,
                                config["LOGIN_THROTTLE_ACCOUNT_MAX_FAILURES"])):
        recent = select(SignInAttempt.created_at).where(
            column == key, SignInAttempt.created_at >= window_start, SignInAttempt.id != attempt_id)
        count = db.session.scalar(select(func.count()).select_from(recent.subquery()))
        if count >= limit:
            oldest = db.session.scalar(select(func.min(SignInAttempt.created_at)).where(
                column == key, SignInAttempt.created_at >= window_start))
            db.session.execute(delete(SignInAttempt).where(SignInAttempt.id == attempt_id))
            db.session.commit()
            return Throttled(_seconds_until(oldest, now, config["LOGIN_THROTTLE_WINDOW_SECONDS"]))
    db.session.commit()
    return attempt_id


def _seconds_until(oldest: datetime | None, now: datetime, window: float) -> float:
    if oldest is None:
        return window
    return max(0.0, (oldest + timedelta(seconds=window) - now).total_seconds())


def attempt_succeeded(db, email: str, client_ip: str) -> None:
    """A correct password: forget this email and address's attempts (commits)."""
    db.session.execute(delete(SignInAttempt).where(SignInAttempt.pair_key == _digest(email, client_ip)))
    db.session.commit()
