"""The portal's OIDC client: authorization code flow with PKCE (S256) against Keycloak.

Tokens from the code exchange and from refreshes are verified before they are used: the
access token with the control plane's own :class:`~controlplane.auth.oidc.OidcVerifier`
(audience ``sandlada-controlplane``, as the API checks it), the ID token with a second verifier
for the portal's client id, plus its ``nonce``. Sign-out ends the Keycloak session with the
refresh token (back-channel, RFC 7009-style logout endpoint of Keycloak).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from controlplane.auth.oidc import OidcVerifier
from controlplane.errors import NotAuthenticatedError, ServiceUnavailableError
from controlplane.messages import message


def pkce_pair() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class TokenSet:
    """Verified result of a code exchange or refresh."""

    claims: dict[str, Any]  # of the access token
    refresh_token: str


class PortalOidcClient:
    """Talks to the issuer for the portal (a confidential client)."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str,
        access_verifier: OidcVerifier,
        *,
        timeout: float = 5.0,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self._secret = client_secret
        self._access_verifier = access_verifier
        self._id_verifier = OidcVerifier(self.issuer, client_id, timeout=timeout)
        self._http = httpx.Client(timeout=timeout)
        self._discovery: dict[str, Any] | None = None

    def close(self) -> None:
        self._id_verifier.close()
        self._http.close()

    def _endpoint(self, name: str) -> str:
        if self._discovery is None:
            url = f"{self.issuer}/.well-known/openid-configuration"
            try:
                response = self._http.get(url)
                response.raise_for_status()
                self._discovery = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                raise ServiceUnavailableError(
                    message("auth.idp_unreachable", url=url, error=str(exc))
                ) from exc
        assert self._discovery is not None
        return str(self._discovery[name])

    def authorization_url(
        self, redirect_uri: str, state: str, nonce: str, challenge: str, ui_locale: str
    ) -> str:
        params = {
            "client_id": self.client_id,
            "response_type": "code",
            "scope": "openid profile email",
            "redirect_uri": redirect_uri,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "ui_locales": ui_locale,
        }
        return f"{self._endpoint('authorization_endpoint')}?{urlencode(params)}"

    def _token_request(self, data: dict[str, str]) -> dict[str, Any]:
        endpoint = self._endpoint("token_endpoint")
        try:
            response = self._http.post(endpoint, data=data, auth=(self.client_id, self._secret))
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError(
                message("auth.idp_unreachable", url=endpoint, error=str(exc))
            ) from exc
        if response.status_code >= 500:
            raise ServiceUnavailableError(
                message("identity.signin_failed", status=response.status_code)
            )
        body = response.json() if response.content else {}
        if response.status_code != 200 or not isinstance(body, dict):
            raise NotAuthenticatedError(
                f"the sign-in service refused the token request: {body.get('error', '')}"
            )
        return body

    def _verified(self, body: dict[str, Any], nonce: str | None) -> TokenSet:
        access = body.get("access_token")
        refresh = body.get("refresh_token")
        if not isinstance(access, str) or not isinstance(refresh, str):
            raise NotAuthenticatedError("the sign-in service returned no tokens")
        claims = self._access_verifier.verify(access)
        id_token = body.get("id_token")
        if nonce is not None:
            if not isinstance(id_token, str):
                raise NotAuthenticatedError("the sign-in service returned no ID token")
            id_claims = self._id_verifier.verify(id_token)
            if id_claims.get("nonce") != nonce or id_claims.get("sub") != claims.get("sub"):
                raise NotAuthenticatedError("the ID token does not belong to this sign-in")
        return TokenSet(claims=claims, refresh_token=refresh)

    def exchange_code(self, code: str, redirect_uri: str, verifier: str, nonce: str) -> TokenSet:
        body = self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
            }
        )
        return self._verified(body, nonce)

    def refresh(self, refresh_token: str) -> TokenSet:
        body = self._token_request({"grant_type": "refresh_token", "refresh_token": refresh_token})
        return self._verified(body, None)

    def logout(self, refresh_token: str) -> None:
        """End the Keycloak session this refresh token belongs to (best effort)."""
        try:
            self._http.post(
                self._endpoint("end_session_endpoint"),
                data={"refresh_token": refresh_token},
                auth=(self.client_id, self._secret),
            )
        except httpx.HTTPError:
            # The local cookie is cleared regardless; Keycloak's session then ends on its own
            # idle timeout.
            return
