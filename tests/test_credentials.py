"""Account credentials: encrypted at rest, write-only through the API, rotatable, never leaked."""

from __future__ import annotations

import json
import uuid

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text

from dashboard.credentials import (
    CredentialError,
    get_account_credentials,
    remove_account_credentials,
    set_account_credentials,
)
from dashboard.models import LedgerEvent, SocialAccount

from api_support import COMPLETE_CREDENTIALS, assert_problem, count, publish
from conftest import base_config

SECRETS = {value for values in COMPLETE_CREDENTIALS.values() for value in values.values()}


@pytest.fixture
def admin(api_headers):
    return api_headers("admin")


@pytest.fixture
def runner(app):
    """Flask's CLI runner for this app."""
    return app.test_cli_runner()


def raw_account_rows(db) -> str:
    """Every stored column of every account, as the database hands them back."""
    db.session.commit()
    with db.engine.connect() as conn:
        return repr(conn.execute(text("SELECT * FROM social_accounts")).all())


def all_ledger_metadata(db) -> str:
    db.session.expire_all()
    return json.dumps([event.event_metadata for event in db.session.scalars(select(LedgerEvent))])


def put_credentials(client, headers, account_id, values):
    return client.put(f"/api/accounts/{account_id}/credentials", headers=headers, json=values)


# Encryption at rest -----------------------------------------------------------------------------

@pytest.mark.parametrize("platform", ["instagram", "tiktok", "youtube"])
def test_credentials_are_encrypted_at_rest(client, db, admin, make_account, platform):
    account_id = make_account(platform).id
    response = put_credentials(client, admin, account_id, COMPLETE_CREDENTIALS[platform])
    assert response.status_code == 200, response.json

    stored = raw_account_rows(db)
    for secret in COMPLETE_CREDENTIALS[platform].values():
        assert secret not in stored
    for key in COMPLETE_CREDENTIALS[platform]:
        assert key not in stored  # not even the key names: the whole JSON is encrypted
    assert get_account_credentials(db, account_id) == COMPLETE_CREDENTIALS[platform]


def test_get_account_credentials_none_and_unreadable(db, make_account):
    assert get_account_credentials(db, make_account().id) is None
    foreign = Fernet(Fernet.generate_key()).encrypt(b'{"access_token": "zzz-secret"}').decode()
    unreadable = make_account(credentials_ciphertext=foreign).id
    with pytest.raises(CredentialError) as error:
        get_account_credentials(db, unreadable)
    assert "zzz-secret" not in str(error.value)


# The API: write-only ---------------------------------------------------------------------------

def test_put_credentials_reports_a_status_never_a_value(client, db, admin, make_account):
    account_id = make_account("tiktok").id

    partial = put_credentials(client, admin, account_id, {"access_token": "act.secret-tiktok-token-0004"})
    assert partial.status_code == 200
    assert partial.json == {"account_id": str(account_id), "credentials": "incomplete",
                            "credential_keys_set": ["access_token"],
                            "missing": ["client_key", "client_secret"]}

    complete = put_credentials(client, admin, account_id, {**COMPLETE_CREDENTIALS["tiktok"],
                                                           "refresh_token": "rft.secret-0007"})
    assert complete.json == {"account_id": str(account_id), "credentials": "complete",
                             "credential_keys_set": ["access_token", "client_key", "client_secret",
                                                     "refresh_token"],
                             "missing": []}
    account = client.get(f"/api/accounts/{account_id}", headers=admin).json
    assert (account["credentials"], account["credential_keys_set"]) == (
        "complete", ["access_token", "client_key", "client_secret", "refresh_token"])


def test_put_replaces_earlier_credentials(client, db, admin, make_account):
    account_id = make_account("instagram").id
    put_credentials(client, admin, account_id, COMPLETE_CREDENTIALS["instagram"])
    put_credentials(client, admin, account_id, {"access_token": "  new-token  ", "instagram_account_id": ""})
    assert get_account_credentials(db, account_id) == {"access_token": "new-token"}
    assert client.get(f"/api/accounts/{account_id}", headers=admin).json["credentials"] == "incomplete"


def test_account_shows_each_credential_status(client, db, admin, make_account):
    none = make_account("youtube").id
    incomplete = make_account("youtube").id
    set_account_credentials(db, incomplete, {"client_id": "id"})
    complete = make_account("youtube").id
    set_account_credentials(db, complete, COMPLETE_CREDENTIALS["youtube"])
    foreign = Fernet(Fernet.generate_key()).encrypt(b"{}").decode()
    unreadable = make_account("youtube", credentials_ciphertext=foreign).id

    statuses = {item["id"]: item["credentials"]
                for item in client.get("/api/accounts", headers=admin).json["items"]}
    assert statuses == {str(none): "none", str(incomplete): "incomplete",
                        str(complete): "complete", str(unreadable): "unreadable"}
    unreadable_body = client.get(f"/api/accounts/{unreadable}", headers=admin).json
    assert unreadable_body["credential_keys_set"] == []


@pytest.mark.parametrize(("values", "field"), [
    ({"access_token": "x", "password": "hunter2"}, "credentials.password"),
    ({"client_secret": "x"}, "credentials.client_secret"),  # a TikTok/YouTube key on Instagram
    ({"access_token": 123}, "credentials.access_token"),
    ({}, "credentials"),
    ({"access_token": "   "}, "credentials"),
])
def test_bad_credentials_are_refused_and_nothing_changes(client, db, admin, make_account, values, field):
    account_id = make_account("instagram").id
    set_account_credentials(db, account_id, COMPLETE_CREDENTIALS["instagram"])
    stored_before = db.session.get(SocialAccount, account_id).credentials_ciphertext
    events_before = count(db, LedgerEvent)

    assert_problem(put_credentials(client, admin, account_id, values), 400, field)

    db.session.expire_all()
    assert db.session.get(SocialAccount, account_id).credentials_ciphertext == stored_before
    assert count(db, LedgerEvent) == events_before


def test_credentials_of_unknown_account(client, admin):
    assert_problem(put_credentials(client, admin, uuid.uuid4(), {"access_token": "x"}), 404)
    assert_problem(client.delete(f"/api/accounts/{uuid.uuid4()}/credentials", headers=admin), 404)
    assert_problem(put_credentials(client, admin, "acme", {"access_token": "x"}), 400, "account_id")


def test_delete_credentials(client, db, admin, make_account, make_clip, api_headers):
    account_id = make_account("instagram").id
    set_account_credentials(db, account_id, COMPLETE_CREDENTIALS["instagram"])

    response = client.delete(f"/api/accounts/{account_id}/credentials", headers=admin)

    assert response.status_code == 204
    assert get_account_credentials(db, account_id) is None
    assert client.get(f"/api/accounts/{account_id}", headers=admin).json["credentials"] == "none"
    assert client.delete(f"/api/accounts/{account_id}/credentials", headers=admin).status_code == 204
    removed = db.session.scalars(select(LedgerEvent).where(
        LedgerEvent.event_type == "account_credentials_removed")).all()
    assert [(e.entity_id, e.event_metadata) for e in removed] == [(account_id, {"platform": "instagram"})]

    result = publish(client, api_headers("editor"), clip_id=make_clip().id, platform="instagram",
                     social_account_id=account_id)
    assert result.json["success"] is True  # through the simulator now


def test_secrets_never_leave_through_the_api_the_ledger_or_the_logs(client, db, admin, api_headers,
                                                                   make_account, make_clip, caplog,
                                                                   monkeypatch):
    bodies = []
    accounts = {}
    for platform, values in COMPLETE_CREDENTIALS.items():
        accounts[platform] = make_account(platform).id
        bodies.append(put_credentials(client, admin, accounts[platform], values))
    clip_id = make_clip().id
    editor = api_headers("editor")
    for platform, account_id in accounts.items():
        bodies.append(publish(client, editor, clip_id=clip_id, platform=platform,
                              social_account_id=account_id))
    from dashboard.publishing.providers import YouTubeDataClient

    def leaky_failure(self, file_path, **kw):
        raise PermissionError("401 authError")

    monkeypatch.setattr(YouTubeDataClient, "upload_video_stub", leaky_failure)
    bodies.append(publish(client, editor, clip_id=clip_id, platform="youtube",
                          social_account_id=accounts["youtube"]))
    for account_id in accounts.values():
        bodies.append(client.get(f"/api/accounts/{account_id}", headers=admin))
        bodies.append(client.patch(f"/api/accounts/{account_id}", headers=admin, json={"active": True}))
    bodies.append(client.get("/api/accounts", headers=admin))
    bodies.append(client.get("/api/ledger?limit=200", headers=admin))
    bodies.append(client.get(f"/publishing/logs/{clip_id}", headers=admin))
    remove_account_credentials(db, accounts["tiktok"])

    assert all(response.status_code < 300 for response in bodies)
    exposed = "".join(response.get_data(as_text=True) for response in bodies)
    exposed += all_ledger_metadata(db) + caplog.text
    exposed += "".join(repr(db.session.get(SocialAccount, a)) for a in accounts.values())
    leaked = [secret for secret in SECRETS if secret in exposed]
    assert leaked == []


# Rotation ---------------------------------------------------------------------------------------

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


class TestRotation:
    """`flask credentials rotate` with CREDENTIALS_KEYS=[new, old], as an operator would run it."""

    @pytest.fixture
    def app_config(self, database_uri):
        return {**base_config(database_uri), "CREDENTIALS_KEYS": [NEW_KEY, OLD_KEY]}

    def test_rotate_re_encrypts_under_the_newest_key(self, app, db, runner, make_account):
        written_before_rotation = {}
        for platform, values in COMPLETE_CREDENTIALS.items():
            token = Fernet(OLD_KEY).encrypt(json.dumps(values).encode()).decode()
            written_before_rotation[make_account(platform, credentials_ciphertext=token).id] = values
        untouched = make_account("instagram").id
        lost_key_token = Fernet(Fernet.generate_key()).encrypt(b"{}").decode()
        lost = make_account("tiktok", credentials_ciphertext=lost_key_token).id

        result = runner.invoke(args=["credentials", "rotate"])

        assert result.exit_code == 0, result.output
        assert "re-encrypted 3 account(s)" in result.stdout
        assert "1 account(s) hold credentials no configured key can open" in result.stderr
        app.config["CREDENTIALS_KEYS"] = [NEW_KEY]  # the old key is retired
        db.session.expire_all()
        for account_id, values in written_before_rotation.items():
            assert get_account_credentials(db, account_id) == values
        assert get_account_credentials(db, untouched) is None
        assert db.session.get(SocialAccount, lost).credentials_ciphertext == lost_key_token
        app.config["CREDENTIALS_KEYS"] = [OLD_KEY]
        with pytest.raises(CredentialError):
            get_account_credentials(db, next(iter(written_before_rotation)))
        rotated = db.session.scalars(select(LedgerEvent).where(
            LedgerEvent.event_type == "credentials_rotated")).one()
        assert rotated.event_metadata == {"rotated": 3, "unreadable": 1}

    def test_new_writes_use_the_newest_key(self, app, db, make_account):
        account_id = make_account("instagram").id
        set_account_credentials(db, account_id, COMPLETE_CREDENTIALS["instagram"])
        app.config["CREDENTIALS_KEYS"] = [NEW_KEY]
        assert get_account_credentials(db, account_id) == COMPLETE_CREDENTIALS["instagram"]
