"""Token verification on the real path: discovery, JWKS over HTTP, RS256, issuer, audience, exp."""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from controlplane.auth.oidc import OidcVerifier
from controlplane.errors import NotAuthenticatedError, ServiceUnavailableError
from tests.fixtures.tokens import AUDIENCE, KIRUNA_REQUESTER, Persona, TestIssuer
from tests.integration.controlplane.conftest import Api

ME = "/api/v1/tenants"


def _status(api: Api, token: str) -> tuple[int, str]:
    response = api.client.get(ME, headers={"Authorization": f"Bearer {token}"})
    return response.status_code, response.json().get(
        "detail", ""
    ) if response.status_code != 200 else ""


class TestBearerTokens:
    def test_valid_token_is_accepted(self, api: Api, oidc_issuer: TestIssuer) -> None:
        assert _status(api, oidc_issuer.mint())[0] == 200

    def test_missing_and_non_bearer_are_401(self, api: Api) -> None:
        assert api.client.get(ME).status_code == 401
        response = api.client.get(ME, headers={"Authorization": "Basic YWRtaW46YWRtaW4="})
        assert response.status_code == 401
        assert response.json()["error"] == "not_authenticated"

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"expires_in": -120}, "expired"),
            ({"audience": "some-other-client"}, "audience"),
            ({"issuer": "http://127.0.0.1:1/realms/evil"}, "issuer"),
            ({"drop": ["sub"]}, "sub"),
            ({"drop": ["exp"]}, "exp"),
        ],
    )
    def test_bad_claims_are_401(
        self, api: Api, oidc_issuer: TestIssuer, kwargs: dict[str, object], message: str
    ) -> None:
        status, detail = _status(api, oidc_issuer.mint(KIRUNA_REQUESTER, **kwargs))  # type: ignore[arg-type]
        assert status == 401
        assert message in detail

    def test_forged_signature_is_401(self, api: Api, oidc_issuer: TestIssuer) -> None:
        # Same key id as the real key, signed by a key the issuer never published.
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        status, _ = _status(api, oidc_issuer.mint(key=stranger))
        assert status == 401

    def test_tampered_payload_is_401(self, api: Api, oidc_issuer: TestIssuer) -> None:
        header, _, signature = oidc_issuer.mint().split(".")
        admin = oidc_issuer.mint(Persona("x", "x", None, roles=("platform-admin",)))
        status, _ = _status(api, f"{header}.{admin.split('.')[1]}.{signature}")
        assert status == 401

    def test_hs256_with_public_key_and_none_are_401(
        self, api: Api, oidc_issuer: TestIssuer
    ) -> None:
        claims = jwt.decode(oidc_issuer.mint(), options={"verify_signature": False})
        hs = jwt.encode(
            claims, "secret", algorithm="HS256", headers={"kid": oidc_issuer.current_kid}
        )
        assert _status(api, hs)[0] == 401
        none = jwt.encode(claims, "", algorithm="none", headers={"kid": oidc_issuer.current_kid})
        assert _status(api, none)[0] == 401
        assert _status(api, "not.a.jwt")[0] == 401

    def test_unknown_key_id_is_401(self, api: Api, oidc_issuer: TestIssuer) -> None:
        status, detail = _status(api, oidc_issuer.mint(kid="no-such-key"))
        assert status == 401
        assert "unknown key id" in detail


class TestKeyRotation:
    def test_new_key_is_fetched_once_and_cached(self, oidc_issuer: TestIssuer) -> None:
        verifier = OidcVerifier(oidc_issuer.url, AUDIENCE, min_refetch_seconds=0)
        try:
            verifier.verify(oidc_issuer.mint())
            fetches = oidc_issuer.jwks_fetches
            for _ in range(5):
                verifier.verify(oidc_issuer.mint())
            assert oidc_issuer.jwks_fetches == fetches, "JWKS must be cached"
            old_token = oidc_issuer.mint()
            oidc_issuer.rotate(keep_old=True)
            assert verifier.verify(oidc_issuer.mint())["sub"] == KIRUNA_REQUESTER.sub
            assert oidc_issuer.jwks_fetches == fetches + 1, "an unknown kid refetches the JWKS"
            assert verifier.verify(old_token)["sub"] == KIRUNA_REQUESTER.sub
        finally:
            verifier.close()

    def test_refetches_are_spaced(self, oidc_issuer: TestIssuer) -> None:
        verifier = OidcVerifier(oidc_issuer.url, AUDIENCE, min_refetch_seconds=3600)
        try:
            verifier.verify(oidc_issuer.mint())
            fetches = oidc_issuer.jwks_fetches
            for kid in ("made-up-1", "made-up-2", "made-up-3"):
                with pytest.raises(NotAuthenticatedError):
                    verifier.verify(oidc_issuer.mint(kid=kid))
            assert oidc_issuer.jwks_fetches == fetches
        finally:
            verifier.close()

    def test_unreachable_issuer_is_503_not_401(self) -> None:
        verifier = OidcVerifier("http://127.0.0.1:9/realms/gone", AUDIENCE, timeout=2)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        token = jwt.encode({"sub": "x"}, key, algorithm="RS256", headers={"kid": "k"})
        try:
            with pytest.raises(ServiceUnavailableError):
                verifier.verify(token)
        finally:
            verifier.close()
