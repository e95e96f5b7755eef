"""Verify OIDC access tokens (RS256 JWTs) against the issuer's published keys.

Discovery (``{issuer}/.well-known/openid-configuration``) gives the JWKS URL. Keys are cached;
a token signed with a key id we have not seen triggers one refetch so that key rotation at the
issuer needs no restart, and refetches are spaced so that made-up key ids cannot turn the
control plane into a load generator against the issuer.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

import httpx
import jwt
from jwt import PyJWK, PyJWKSet

from controlplane.errors import NotAuthenticatedError, ServiceUnavailableError
from controlplane.messages import message

ALGORITHMS = ["RS256"]
CLOCK_LEEWAY_SECONDS = 30
# Clients reuse one access token for its lifetime (minutes), so remembering tokens that passed
# verification spares an RSA verification per request. Keyed by the whole token, signature
# included, and only until the token's own expiry; a key the issuer withdraws stays trusted
# for tokens already seen until they expire, which is the same window a JWKS cache gives.
VERIFIED_CACHE_SIZE = 4096


class OidcVerifier:
    """Checks signature, issuer, audience and expiry of bearer tokens; thread-safe."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        *,
        timeout: float = 5.0,
        cache_seconds: float = 300.0,
        min_refetch_seconds: float = 5.0,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self._cache_seconds = cache_seconds
        self._min_refetch_seconds = min_refetch_seconds
        self._http = httpx.Client(timeout=timeout)
        self._lock = threading.Lock()
        self._jwks_uri: str | None = None
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at = float("-inf")
        self._verified: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()

    def close(self) -> None:
        self._http.close()

    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = self._http.get(url)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ServiceUnavailableError(
                message("auth.idp_unreachable", url=url, error=str(exc))
            ) from exc
        if not isinstance(document, dict):
            raise ServiceUnavailableError(message("auth.idp_bad_document", url=url))
        return document

    def _refresh(self) -> None:
        if self._jwks_uri is None:
            discovery = self._get_json(f"{self.issuer}/.well-known/openid-configuration")
            if str(discovery.get("issuer", "")).rstrip("/") != self.issuer:
                raise ServiceUnavailableError(
                    message(
                        "auth.idp_wrong_issuer", found=discovery.get("issuer"), expected=self.issuer
                    )
                )
            self._jwks_uri = str(discovery["jwks_uri"])
        jwks = self._get_json(self._jwks_uri)
        try:
            key_set = PyJWKSet.from_dict(jwks)
        except jwt.PyJWTError as exc:
            raise ServiceUnavailableError(
                message("auth.idp_bad_jwks", url=self._jwks_uri, error=str(exc))
            ) from exc
        self._keys = {key.key_id: key for key in key_set.keys if key.key_id}
        self._fetched_at = time.monotonic()

    def _signing_key(self, kid: str) -> PyJWK:
        with self._lock:
            age = time.monotonic() - self._fetched_at
            if age > self._cache_seconds or (
                kid not in self._keys and age >= self._min_refetch_seconds
            ):
                self._refresh()
            key = self._keys.get(kid)
        if key is None:
            raise NotAuthenticatedError(message("auth.unknown_key", kid=kid))
        return key

    def cached(self, token: str) -> dict[str, Any] | None:
        """The claims of a token verified before and not yet expired, else None."""
        with self._lock:
            entry = self._verified.get(token)
            if entry is None:
                return None
            expires, claims = entry
            if time.time() > expires:
                del self._verified[token]
                return None
            self._verified.move_to_end(token)
            return claims

    def _remember(self, token: str, claims: dict[str, Any]) -> None:
        with self._lock:
            self._verified[token] = (float(claims["exp"]), claims)
            while len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims if it is valid; raises NotAuthenticatedError otherwise."""
        claims = self.cached(token)
        if claims is not None:
            return claims
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise NotAuthenticatedError(message("auth.malformed_token", error=str(exc))) from exc
        if header.get("alg") not in ALGORITHMS:
            raise NotAuthenticatedError(message("auth.bad_algorithm", algorithm=header.get("alg")))
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise NotAuthenticatedError(message("auth.no_key_id"))
        key = self._signing_key(kid)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                leeway=CLOCK_LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise NotAuthenticatedError(message("auth.expired")) from exc
        except jwt.InvalidAudienceError as exc:
            raise NotAuthenticatedError(
                message("auth.wrong_audience", audience=self.audience)
            ) from exc
        except jwt.InvalidIssuerError as exc:
            raise NotAuthenticatedError(message("auth.wrong_issuer", issuer=self.issuer)) from exc
        except jwt.PyJWTError as exc:
            raise NotAuthenticatedError(message("auth.invalid_token", error=str(exc))) from exc
        self._remember(token, claims)
        return claims
