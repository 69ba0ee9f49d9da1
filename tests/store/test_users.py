"""Users, API tokens and web sessions in a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import text

from leadferry import auth
from leadferry.errors import ConfigError, ConflictError, NotFoundError
from leadferry.settings import Settings
from leadferry.store import DatasetSpec, Store, User
from leadferry.store.database import create_store_engine

from ._support import T0, Clock

PASSWORD = "correct-horse-battery"


@pytest.fixture(autouse=True)
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Cheap argon2 parameters: the defaults cost a third of a second per hash."""
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))
    auth.dummy_hash.cache_clear()
    yield
    auth.dummy_hash.cache_clear()


@pytest.fixture
def admin(store: Store) -> User:
    return store.add_user("ana", PASSWORD, "admin")


def stored_bytes(home: Path) -> bytes:
    """Everything SQLite wrote: the database file and its write-ahead log."""
    return b"".join(path.read_bytes() for path in sorted(home.glob("leadferry.sqlite*")))


# -- auth ----------------------------------------------------------------------------------


def test_roles_are_ordered_viewer_editor_admin() -> None:
    allowed = {(r, n) for r in auth.ROLES for n in auth.ROLES if auth.role_allows(r, n)}
    assert allowed == {
        ("viewer", "viewer"),
        ("editor", "viewer"),
        ("editor", "editor"),
        ("admin", "viewer"),
        ("admin", "editor"),
        ("admin", "admin"),
    }
    assert not auth.role_allows("root", "viewer")
    with pytest.raises(ValueError, match="unknown role"):
        auth.role_allows("admin", "root")


def test_check_role_names_the_allowed_roles() -> None:
    assert auth.check_role("editor") == "editor"
    with pytest.raises(ConfigError, match="unknown role 'owner': use one of viewer, editor, admin"):
        auth.check_role("owner")


def test_password_hashing_uses_argon2id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "_hasher", PasswordHasher())  # the real parameters
    hashed = auth.hash_password(PASSWORD)
    assert hashed.startswith("$argon2id$")
    assert PASSWORD not in hashed
    assert hashed != auth.hash_password(PASSWORD)  # salted
    assert auth.verify_password(hashed, PASSWORD)
    assert not auth.verify_password(hashed, PASSWORD + "!")
    assert not auth.needs_rehash(hashed)


@pytest.mark.parametrize("hashed", ["", "not a hash", "$argon2id$v=19$m=65536,t=3,p=4$x$y"])
def test_a_malformed_hash_verifies_nothing(hashed: str) -> None:
    assert auth.verify_password(hashed, PASSWORD) is False


def test_a_short_password_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError, match="at least 8 characters") as caught:
        auth.check_password("s3cr3t!")
    assert "s3cr3t!" not in str(caught.value)
    auth.check_password("12345678")


def test_secrets_are_random_and_kept_as_digests() -> None:
    secret = auth.new_secret()
    assert len(secret) == 43
    assert secret != auth.new_secret()
    assert auth.digest(secret) == auth.digest(secret)
    assert len(auth.digest(secret)) == 64
    token = auth.new_api_token()
    assert token.startswith("lf_")
    assert auth.token_prefix(token) == token[3:11]
    assert auth.token_prefix("lf_short") is None
    assert auth.token_prefix("ghp_" + secret) is None


# -- users ---------------------------------------------------------------------------------


def test_a_user_is_added_and_read_back(store: Store) -> None:
    assert store.user_count() == 0
    added = store.add_user("ana", PASSWORD, "admin")
    store.add_user("bo", PASSWORD, "viewer")
    assert added == User(id=added.id, name="ana", role="admin", created_at=T0)
    assert store.get_user("ana") == added
    assert [(u.name, u.role) for u in store.list_users()] == [("ana", "admin"), ("bo", "viewer")]
    assert store.user_count() == 2


def test_a_taken_name_is_a_conflict(store: Store, admin: User) -> None:
    with pytest.raises(ConflictError, match="a user named 'ana' already exists"):
        store.add_user("ana", PASSWORD, "viewer")


@pytest.mark.parametrize(
    ("name", "password", "role", "message"),
    [
        ("ana", PASSWORD, "root", "unknown role 'root': use one of viewer, editor, admin"),
        ("", PASSWORD, "viewer", "invalid user name ''"),
        ("ana smith", PASSWORD, "viewer", "invalid user name 'ana smith'"),
        ("ana", "short", "viewer", "a password needs at least 8 characters"),
    ],
)
def test_bad_users_are_refused(
    store: Store, name: str, password: str, role: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        store.add_user(name, password, role)
    assert password not in str(caught.value)
    assert store.user_count() == 0


def test_unknown_users_are_not_found(store: Store) -> None:
    for call in (
        lambda: store.get_user("nobody"),
        lambda: store.set_password("nobody", PASSWORD),
        lambda: store.set_role("nobody", "viewer"),
        lambda: store.remove_user("nobody"),
        lambda: store.create_token("nobody", "ci"),
        lambda: store.list_tokens("nobody"),
        lambda: store.create_session("nobody", timedelta(hours=1)),
        lambda: store.end_sessions("nobody"),
    ):
        with pytest.raises(NotFoundError, match="no user named 'nobody'"):
            call()


def test_authenticate_checks_the_password(store: Store, admin: User) -> None:
    assert store.authenticate("ana", PASSWORD) == admin
    assert store.authenticate("ana", PASSWORD.upper()) is None
    assert store.authenticate("nobody", PASSWORD) is None


def test_an_unknown_name_costs_a_verification_too(
    store: Store, admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    import leadferry.store.users as users

    verified: list[str] = []

    def verify(hashed: str, password: str) -> bool:
        verified.append(hashed)
        return auth.verify_password(hashed, password)

    monkeypatch.setattr(users, "verify_password", verify)
    assert store.authenticate("nobody", PASSWORD) is None
    assert verified == [auth.dummy_hash()]


def test_a_weak_hash_is_replaced_when_its_password_is_given(
    store: Store, admin: User, settings: Settings
) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    engine = create_store_engine(settings.metadata_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("update users set password_hash = :h"), {"h": weak})
        assert store.authenticate("ana", PASSWORD) == admin
        with engine.connect() as conn:
            renewed = conn.execute(text("select password_hash from users")).scalar_one()
    finally:
        engine.dispose()
    assert renewed != weak
    assert not auth.needs_rehash(renewed)
    assert store.authenticate("ana", PASSWORD) == admin


def test_set_password_replaces_it(store: Store, admin: User, clock: Clock) -> None:
    clock.advance(minutes=5)
    store.set_password("ana", "new-password-42")
    assert store.authenticate("ana", PASSWORD) is None
    assert store.authenticate("ana", "new-password-42") == admin
    with pytest.raises(ConfigError, match="at least 8 characters"):
        store.set_password("ana", "short")


def test_the_last_admin_cannot_be_demoted(store: Store, admin: User) -> None:
    with pytest.raises(ConfigError, match="'ana' is the last admin"):
        store.set_role("ana", "editor")
    store.add_user("cy", PASSWORD, "admin")
    assert store.set_role("ana", "editor").role == "editor"
    with pytest.raises(ConfigError, match="'cy' is the last admin"):
        store.set_role("cy", "viewer")
    assert store.set_role("cy", "admin").role == "admin"  # no change is no demotion
    with pytest.raises(ConfigError, match="unknown role"):
        store.set_role("ana", "superuser")


def test_the_last_admin_cannot_be_removed(store: Store, admin: User) -> None:
    store.add_user("bo", PASSWORD, "viewer")
    with pytest.raises(ConfigError, match="'ana' is the last admin"):
        store.remove_user("ana")
    store.remove_user("bo")
    store.add_user("cy", PASSWORD, "admin")
    store.remove_user("ana")
    assert [u.name for u in store.list_users()] == ["cy"]


# -- API tokens ----------------------------------------------------------------------------


def test_a_token_is_shown_once_and_only_its_digest_is_stored(
    store: Store, admin: User, home: Path
) -> None:
    token, plaintext = store.create_token("ana", "ci-export")
    session_id, _ = store.create_session("ana", timedelta(hours=1))
    assert plaintext.startswith("lf_")
    assert (token.user, token.name, token.prefix) == ("ana", "ci-export", plaintext[3:11])
    assert (token.created_at, token.last_used_at) == (T0, None)
    assert plaintext not in repr(store.list_tokens())
    store.close()
    stored = stored_bytes(home)
    assert auth.digest(plaintext).encode() in stored
    for secret in (plaintext, plaintext[11:], PASSWORD, session_id):
        assert secret.encode() not in stored


def test_tokens_are_listed_per_user(store: Store, admin: User) -> None:
    store.add_user("bo", PASSWORD, "viewer")
    first, _ = store.create_token("ana", "ci")
    second, _ = store.create_token("bo", "laptop")
    third, _ = store.create_token("ana", "  backup  ")
    assert store.list_tokens() == [first, second, third]
    assert store.list_tokens("ana") == [first, third]
    assert third.name == "backup"
    with pytest.raises(ConfigError, match="a token name needs 1 to 64 characters"):
        store.create_token("ana", "  ")


def test_a_token_identifies_its_user_and_records_its_use(
    store: Store, admin: User, clock: Clock
) -> None:
    _, plaintext = store.create_token("ana", "ci")
    clock.advance(minutes=3)
    assert store.user_for_token(plaintext) == admin
    assert store.list_tokens()[0].last_used_at == clock.now
    used = clock.now
    clock.advance(seconds=30)  # within a minute: no write
    assert store.user_for_token(plaintext) == admin
    assert store.list_tokens()[0].last_used_at == used
    clock.advance(minutes=1)
    assert store.user_for_token(plaintext) == admin
    assert store.list_tokens()[0].last_used_at == clock.now


@pytest.mark.parametrize("given", ["", "lf_", "lf_unknown-token-0123456789", "Bearer x", None])
def test_unknown_or_malformed_tokens_identify_nobody(
    store: Store, admin: User, given: str | None
) -> None:
    store.create_token("ana", "ci")
    assert store.user_for_token(given) is None  # type: ignore[arg-type]


def test_a_revoked_token_stops_working(store: Store, admin: User) -> None:
    token, plaintext = store.create_token("ana", "ci")
    assert store.revoke_token(token.id) == token
    assert store.user_for_token(plaintext) is None
    assert store.list_tokens() == []
    with pytest.raises(NotFoundError, match=f"no API token with id {token.id}"):
        store.revoke_token(token.id)


def test_a_user_cannot_revoke_another_users_token(store: Store, admin: User) -> None:
    store.add_user("bo", PASSWORD, "viewer")
    token, plaintext = store.create_token("ana", "ci")
    with pytest.raises(NotFoundError, match=f"no API token with id {token.id} of user 'bo'"):
        store.revoke_token(token.id, "bo")
    assert store.user_for_token(plaintext) == admin
    store.revoke_token(token.id, "ana")
    assert store.list_tokens() == []


def test_a_new_password_keeps_tokens_working(store: Store, admin: User) -> None:
    _, plaintext = store.create_token("ana", "ci")
    store.set_password("ana", "new-password-42")
    assert store.user_for_token(plaintext) == admin


# -- web sessions --------------------------------------------------------------------------


def test_a_session_carries_its_user_and_a_csrf_token(store: Store, admin: User) -> None:
    session_id, created = store.create_session("ana", timedelta(hours=8))
    assert created.user == admin
    assert created.expires_at == T0 + timedelta(hours=8)
    assert len(created.csrf_token) == 43
    assert store.get_session(session_id) == created
    other_id, other = store.create_session("ana", timedelta(hours=8))
    assert other_id != session_id
    assert other.csrf_token != created.csrf_token
    assert store.get_session("no-such-session") is None
    assert store.get_session("") is None


def test_a_session_shows_the_users_current_role(store: Store, admin: User) -> None:
    store.add_user("bo", PASSWORD, "viewer")
    session_id, _ = store.create_session("bo", timedelta(hours=1))
    store.set_role("bo", "editor")
    session = store.get_session(session_id)
    assert session is not None
    assert session.user.role == "editor"


def test_sessions_expire(store: Store, admin: User, clock: Clock, settings: Settings) -> None:
    session_id, _ = store.create_session("ana", timedelta(minutes=30))
    clock.advance(minutes=29)
    assert store.get_session(session_id) is not None
    clock.advance(minutes=1)
    assert store.get_session(session_id) is None
    engine = create_store_engine(settings.metadata_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("select count(*) from web_sessions")).scalar_one() == 0
    finally:
        engine.dispose()
    with pytest.raises(ValueError, match="must be positive"):
        store.create_session("ana", timedelta(0))


def test_logging_out_ends_one_session(store: Store, admin: User) -> None:
    session_id, _ = store.create_session("ana", timedelta(hours=1))
    other_id, _ = store.create_session("ana", timedelta(hours=1))
    store.end_session(session_id)
    store.end_session(session_id)  # twice is fine
    store.end_session("")
    assert store.get_session(session_id) is None
    assert store.get_session(other_id) is not None


def test_end_sessions_ends_all_of_one_users(store: Store, admin: User) -> None:
    store.add_user("bo", PASSWORD, "viewer")
    ids = [store.create_session("ana", timedelta(hours=1))[0] for _ in range(2)]
    kept, _ = store.create_session("bo", timedelta(hours=1))
    assert store.end_sessions("ana") == 2
    assert [store.get_session(i) for i in ids] == [None, None]
    assert store.get_session(kept) is not None


def test_a_password_change_ends_the_users_sessions(store: Store, admin: User) -> None:
    store.add_user("bo", PASSWORD, "viewer")
    session_id, _ = store.create_session("ana", timedelta(hours=1))
    kept, _ = store.create_session("bo", timedelta(hours=1))
    store.set_password("ana", "new-password-42")
    assert store.get_session(session_id) is None
    assert store.get_session(kept) is not None


def test_removing_a_user_ends_their_sessions_and_tokens(store: Store, admin: User) -> None:
    store.add_user("bo", PASSWORD, "editor")
    session_id, _ = store.create_session("bo", timedelta(hours=1))
    _, plaintext = store.create_token("bo", "ci")
    kept, _ = store.create_token("ana", "ci")
    store.remove_user("bo")
    assert store.get_session(session_id) is None
    assert store.user_for_token(plaintext) is None
    assert store.list_tokens() == [kept]
    assert store.authenticate("bo", PASSWORD) is None


# -- the owner of a dataset (stored next to the users' tables, in the same migration) --------


def test_a_dataset_keeps_its_owner(store: Store, dataset: str) -> None:
    assert store.get_dataset(dataset).owner is None
    store.create_dataset(DatasetSpec("owned", "acme", "leads", {"lid": 1}, owner="ana"))
    owned = store.get_dataset("owned")
    assert owned.owner == "ana"
    assert owned.spec.owner == "ana"
    assert store.update_dataset("owned", owner="Sales ops").owner == "Sales ops"
    assert store.update_dataset("owned", owner=None).owner is None
