"""Services own their transactions, including the failed ones.

A service that raises (a refused input, a conflict, a crash) rolls back what it started before
the error reaches the view: on SQLite an open write transaction would otherwise keep the write
lock until the view got round to it, and every view had to remember to.
"""

from __future__ import annotations

from functools import wraps


def rolls_back(service):
    """Wrap a service `service(db, ...)`: when it raises, roll the session back, then re-raise."""

    @wraps(service)
    def wrapper(db, *args, **kwargs):
        try:
            return service(db, *args, **kwargs)
        except BaseException:
            db.session.rollback()
            raise

    return wrapper
