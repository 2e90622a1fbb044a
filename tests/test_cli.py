"""flask commands: users create, tokens create, seed-demo, first-run."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from dashboard.demo import DEMO_ACCOUNTS, DEMO_CLIPS
from dashboard.models import ApiToken, Clip, SocialAccount, User
from dashboard.users import check_password, create_user

from api_support import count

PASSWORD = "a long enough password"


@pytest.fixture
def runner(app):
    """Flask's CLI runner for this app."""
    return app.test_cli_runner()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_users_create_reads_the_password_from_stdin(runner, db):
    result = runner.invoke(args=["users", "create", "Ops@Example.com", "--role", "admin",
                                 "--password-stdin"], input=PASSWORD + "\n")

    assert result.exit_code == 0, result.output
    assert "created admin ops@example.com" in result.output
    assert PASSWORD not in result.output
    user = check_password(db, "ops@example.com", PASSWORD)
    assert user is not None and user.role == "admin"
    assert PASSWORD not in user.password_hash


def test_users_create_prompts_twice_without_stdin_flag(runner, db):
    result = runner.invoke(args=["users", "create", "viewer@example.com"],
                           input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert check_password(db, "viewer@example.com", PASSWORD).role == "viewer"


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (["users", "create", "a@example.com", "--password-stdin"], "short\n", "password"),
    (["users", "create", "not-an-email", "--password-stdin"], PASSWORD + "\n", "email"),
    (["users", "create", "a@example.com", "--role", "owner", "--password-stdin"], PASSWORD + "\n", "owner"),
])
def test_users_create_refuses_bad_input(runner, db, args, stdin, message):
    result = runner.invoke(args=args, input=stdin)
    assert result.exit_code != 0
    assert message in result.output
    assert count(db, User) == 0


def test_users_create_refuses_a_duplicate(runner, db):
    create_user(db, "dup@example.com", PASSWORD, "editor")
    result = runner.invoke(args=["users", "create", "DUP@example.com", "--password-stdin"],
                           input=PASSWORD + "\n")
    assert result.exit_code != 0 and "already exists" in result.output
    assert count(db, User) == 1


def test_tokens_create_prints_a_working_token_once(runner, db, client):
    create_user(db, "ci@example.com", PASSWORD, "editor")

    result = runner.invoke(args=["tokens", "create", "ci@example.com", "--name", "ci"])

    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert re.fullmatch(r"sdb_[A-Za-z0-9_-]{40,}", token)
    assert client.get("/api/clips", headers=bearer(token)).status_code == 200
    stored = db.session.scalars(select(ApiToken)).one()
    assert stored.name == "ci" and token not in stored.token_hash


def test_tokens_create_for_an_unknown_user_fails(runner, db):
    result = runner.invoke(args=["tokens", "create", "ghost@example.com", "--name", "ci"])
    assert result.exit_code != 0 and "ghost@example.com" in result.output
    assert count(db, ApiToken) == 0


def demo_counts() -> tuple[int, int]:
    accounts = sum(1 + len(satellites) for _, _, satellites in DEMO_ACCOUNTS.values())
    return accounts, len(DEMO_CLIPS)


def test_seed_demo_is_idempotent(runner, db):
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0 and "demo data added" in first.output
    assert (count(db, SocialAccount), count(db, Clip)) == demo_counts()
    satellites = db.session.scalars(
        select(SocialAccount).where(SocialAccount.parent_account_id.is_not(None))).all()
    assert satellites
    assert all(s.parent.platform == s.platform and s.parent.is_main for s in satellites)

    second = runner.invoke(args=["seed-demo"])

    assert second.exit_code == 0 and "not added" in second.output
    assert (count(db, SocialAccount), count(db, Clip)) == demo_counts()


def test_seed_demo_leaves_a_database_in_use_alone(runner, db, make_clip):
    make_clip(title="Ours")
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0 and "not added" in result.output
    assert (count(db, SocialAccount), count(db, Clip)) == (0, 1)


def test_first_run_prints_a_password_and_token_once(runner, db, client):
    first = runner.invoke(args=["first-run"])

    assert first.exit_code == 0, first.output
    password = re.search(r"password:\s+(\S+)", first.output).group(1)
    token = re.search(r"API token \(shown once\):\s+(\S+)", first.output).group(1)
    admin = check_password(db, "admin@example.com", password)
    assert admin is not None and admin.role == "admin"
    assert client.get("/api/accounts", headers=bearer(token)).status_code == 200
    assert (count(db, SocialAccount), count(db, Clip)) == demo_counts()

    second = runner.invoke(args=["first-run"])

    assert second.exit_code == 0
    assert password not in second.output and token not in second.output
    assert "password:" not in second.output and "API token" not in second.output
    assert count(db, User) == 1 and count(db, ApiToken) == 1
    assert (count(db, SocialAccount), count(db, Clip)) == demo_counts()


def test_a_user_added_between_the_check_and_the_commit_is_a_conflict(db, monkeypatch):
    """Two admins adding the same email at once: the loser gets a Conflict, not a 500."""
    import uuid as uuid_module

    from sqlalchemy import func, select
    from werkzeug.security import generate_password_hash

    from dashboard import users
    from dashboard.errors import Conflict
    from dashboard.models import User

    def hash_while_another_request_commits(password):
        # Runs after create_user checked the email was free: another request takes it now.
        with db.engine.begin() as other:
            other.execute(User.__table__.insert().values(
                id=uuid_module.uuid4(), email="twin@example.com", role="viewer", active=True,
                timezone="UTC", password_hash="x", created_at=users.utcnow(), updated_at=users.utcnow()))
        return generate_password_hash(password, method="pbkdf2:sha256:1000")

    monkeypatch.setattr(users, "generate_password_hash", hash_while_another_request_commits)
    with pytest.raises(Conflict, match="twin@example.com already exists"):
        users.create_user(db, "twin@example.com", "correct horse battery", "editor")
    assert db.session.scalar(select(func.count()).select_from(User)) == 1
