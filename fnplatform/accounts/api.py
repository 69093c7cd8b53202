"""Open WebUI's auth and user endpoints under /api/v1/auths/ and /api/v1/users/.

Scripts written against Open WebUI sign in, read who they are, manage their API key
and (staff) accounts here. Each operation translates the request, calls one service
or selector, and shapes its result; fnplatform.api maps service errors to statuses.
"""

from django.http import HttpRequest
from ninja import Query, Router

from fnplatform.accounts import selectors, services
from fnplatform.accounts.auth import bearer_token
from fnplatform.accounts.models import SigninToken
from fnplatform.accounts.schemas import (
    AddUserIn,
    AddUserOut,
    ApiKeyOut,
    SessionUserOut,
    SigninIn,
    SigninOut,
    SignoutOut,
    UserListOut,
    UserOut,
    user_fields,
)
from fnplatform.schemas import ErrorOut

auths_router = Router(tags=["auths"])
users_router = Router(tags=["users"])

# Statuses fnplatform.api and ninja's auth may answer with, declared per operation.
UNAUTHORIZED = {401: ErrorOut}
FORBIDDEN = {403: ErrorOut}
NOT_FOUND = {404: ErrorOut}
BAD_REQUEST = {400: ErrorOut}


def _epoch(value) -> int:
    return int(value.timestamp())


@auths_router.get("/", response={200: SessionUserOut, **UNAUTHORIZED})
def get_session_user(request: HttpRequest):
    """The caller: id, email, name, role; with the bearer token used and its expiry."""
    credential = getattr(request, "credential", None)
    expires = credential.expires_at if isinstance(credential, SigninToken) else None
    return {
        **user_fields(request.auth),
        "token": getattr(request, "bearer_token", None),
        "token_type": "Bearer",
        "expires_at": _epoch(expires) if expires else None,
    }


@auths_router.post("/signin", auth=None, response={200: SigninOut, **BAD_REQUEST})
def signin(request: HttpRequest, payload: SigninIn):
    """Email (or username) and password give a bearer token that expires
    (FNPLATFORM_SIGNIN_TOKEN_SECONDS); a wrong one is a 400, as in Open WebUI."""
    user, token, plaintext = services.signin(
        login=payload.email or payload.username, password=payload.password
    )
    return {
        **user_fields(user),
        "token": plaintext,
        "token_type": "Bearer",
        "expires_at": _epoch(token.expires_at),
    }


@auths_router.api_operation(["GET", "POST"], "/signout", auth=None, response={200: SignoutOut})
def signout(request: HttpRequest):
    """Revoke the sign-in token of the Authorization header (API keys and sessions stay)."""
    services.signin_token_revoke(token=bearer_token(request))
    return {"status": True}


@auths_router.post("/add", response={200: AddUserOut, **BAD_REQUEST, **UNAUTHORIZED, **FORBIDDEN})
def add_user(request: HttpRequest, payload: AddUserIn):
    """Create an account (staff with auth.add_user; role "admin" makes staff and needs
    auth.change_user too; "pending", the default, makes it inactive)."""
    created, token = services.user_add(
        user=request.auth,
        name=payload.name,
        email=payload.email,
        password=payload.password,
        role=payload.role or "pending",
    )
    return {**user_fields(created), "token": token, "token_type": "Bearer"}


@auths_router.get("/api_key", response={200: ApiKeyOut, **UNAUTHORIZED, **NOT_FOUND})
def get_api_key(request: HttpRequest):
    """The caller's account key, shown by its first characters: only its hash is kept."""
    api_key = services.account_key_for(user=request.auth)
    return {"api_key": f"{api_key.prefix}…"}


@auths_router.post("/api_key", response={200: ApiKeyOut, **UNAUTHORIZED})
def create_api_key(request: HttpRequest):
    """A new account key, in plaintext this once; the previous account key is revoked."""
    _, key = services.account_key_create(user=request.auth)
    return {"api_key": key}


@auths_router.delete("/api_key", response={200: bool, **UNAUTHORIZED})
def delete_api_key(request: HttpRequest):
    """Revoke the caller's account key (keys made on the settings page stay)."""
    services.account_key_revoke(user=request.auth)
    return True


@users_router.get("/", response={200: UserListOut, **UNAUTHORIZED, **FORBIDDEN})
def list_users(
    request: HttpRequest,
    query: str = "",
    order_by: str = "created_at",
    direction: str = "asc",
    page: int = Query(1, ge=1, le=1_000_000),
):
    """Accounts, 30 a page (staff with auth.view_user)."""
    users, total = selectors.user_list(
        user=request.auth, query=query, order_by=order_by, direction=direction, page=page
    )
    return {"users": users, "total": total}


@users_router.get("/{id}", response={200: UserOut, **UNAUTHORIZED, **NOT_FOUND})
def get_user(request: HttpRequest, id: int):
    """One account: the caller's own, or any for staff with auth.view_user (unlike Open
    WebUI, an ordinary user cannot look up others)."""
    return selectors.user_get_for(user=request.auth, id=id)


@users_router.delete("/{id}", response={200: bool, **UNAUTHORIZED, **FORBIDDEN, **NOT_FOUND})
def delete_user(request: HttpRequest, id: int):
    """Delete an account (staff with auth.delete_user; never your own)."""
    services.user_delete(user=request.auth, id=id)
    return True
