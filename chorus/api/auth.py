"""Bearer tokens with roles, from configuration (`CHORUS_API_TOKENS`): `read` may GET, `operate` may also POST."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import HTTPException, Request

from processors.runtime.settings import ApiToken

RANK = {"read": 0, "operate": 1}


@dataclass(frozen=True)
class Principal:
    subject: str
    role: str


class Auth:
    def __init__(self, tokens: dict[str, ApiToken]) -> None:
        self._tokens = dict(tokens)

    def identify(self, token: str) -> Principal | None:
        # Compare against every token in constant time: no early exit that leaks which prefix matched.
        found = None
        for known, spec in self._tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                found = Principal(spec.subject, spec.role)
        return found

    def require(self, role: str, *, allow_query: bool = False) -> Callable[[Request], Principal]:
        """A dependency: 401 without a valid token, 403 when its role is below `role`.

        `allow_query`: also accept `?access_token=` (browsers' EventSource cannot send headers)."""

        def dependency(request: Request) -> Principal:
            header = request.headers.get("authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                token = request.query_params.get("access_token", "") if allow_query else ""
            if not token.strip():
                raise HTTPException(401, "missing bearer token (Authorization: Bearer <token>)",
                                    headers={"WWW-Authenticate": "Bearer"})
            principal = self.identify(token.strip())
            if principal is None:
                raise HTTPException(401, "unknown bearer token", headers={"WWW-Authenticate": "Bearer"})
            if RANK[principal.role] < RANK[role]:
                raise HTTPException(403, f"token of {principal.subject!r} has role {principal.role!r}; "
                                         f"this needs {role!r}")
            return principal

        return dependency
