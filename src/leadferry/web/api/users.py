"""``/users``: who may log in (admins only), and who the caller is (anyone)."""

from __future__ import annotations

from fastapi import APIRouter

from leadferry.store import User
from leadferry.web.api.models import UserPublic, UsersPublic, problems
from leadferry.web.api.routing import ApiRoute
from leadferry.web.deps import AdminDep, StoreDep, ViewerDep

router = APIRouter(prefix="/users", tags=["users"], route_class=ApiRoute)


def user_public(user: User) -> UserPublic:
    return UserPublic(id=user.id, name=user.name, role=user.role, created_at=user.created_at)


@router.get("", responses=problems(403))
def list_users(store: StoreDep, _user: AdminDep) -> UsersPublic:
    """Every user with their role (admin only). Users are managed with ``leadferry users``
    or the Users page."""
    found = [user_public(u) for u in store.list_users()]
    return UsersPublic(data=found, count=len(found))


@router.get("/me")
def who_am_i(user: ViewerDep) -> UserPublic:
    """The user the token (or session) belongs to."""
    return user_public(user)
