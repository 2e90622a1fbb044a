"""API tokens across real processes: a gunicorn with two workers (each its own memory) refuses a
token on the very next request once it is revoked, or its user deactivated, in another process
(this one), whichever worker answers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from dashboard.users import create_token, revoke_token, set_user_active

from server_support import GunicornProcess, process_env

BURST = 8


def burst(server: GunicornProcess, pool: ThreadPoolExecutor, token: str) -> list[int]:
    """The statuses of BURST concurrent API reads with the token (both workers serve them)."""
    headers = {"Authorization": f"Bearer {token}"}
    return list(pool.map(lambda _: server.request("GET", "/api/clips", headers=headers)[0], range(BURST)))


def test_a_revoked_token_and_a_deactivated_users_token_fail_at_once_in_every_worker(
        app, db, database_uri, make_user, tmp_path):
    admin_id = make_user("admin").id
    revoked_user_id, deactivated_user_id = make_user("editor").id, make_user("editor").id
    revoked = create_token(db, revoked_user_id, "laptop")
    revoked_id, revoked_token = revoked.token.id, revoked.plaintext
    deactivated_token = create_token(db, deactivated_user_id, "phone").plaintext
    db.session.remove()
    env = process_env(app, database_uri, GUNICORN_WORKER_CONNECTIONS=1)  # one at a time: both serve
    with GunicornProcess(env, tmp_path / "gunicorn.log", workers=2) as server, ThreadPoolExecutor(BURST) as pool:
        assert burst(server, pool, revoked_token) == [200] * BURST
        assert burst(server, pool, deactivated_token) == [200] * BURST

        revoke_token(db, revoked_user_id, revoked_id)
        set_user_active(db, deactivated_user_id, False, actor_id=admin_id)

        assert burst(server, pool, revoked_token) == [401] * BURST
        assert burst(server, pool, deactivated_token) == [401] * BURST
