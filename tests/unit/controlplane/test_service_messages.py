"""The identity provider's and the cluster's "unreachable" / "not configured" messages.

They come from the message catalogue (controlplane/messages.py), so an error reads right in
English and in Swedish and keeps its error code. Real clients against a port nobody listens on
produce the "unreachable" errors; nothing is mocked.
"""

from __future__ import annotations

import socket
from typing import NoReturn

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException

from controlplane.auth.oidc import OidcVerifier
from controlplane.cluster.storage import (
    NOT_CONFIGURED_MESSAGE,
    ClusterError,
    ClusterNotConfiguredError,
    ClusterUnavailableError,
    _call,
)
from controlplane.errors import ServiceUnavailableError
from controlplane.identity.storage import IdentityStore
from controlplane.members import service as members
from controlplane.portal.oidc import PortalOidcClient


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _raise(exc: Exception) -> NoReturn:
    raise exc


class TestCluster:
    def test_not_configured_in_both_languages_with_its_code(self) -> None:
        for error in (
            ClusterNotConfiguredError(),
            ClusterNotConfiguredError(NOT_CONFIGURED_MESSAGE),
        ):
            assert error.code == "cluster_not_configured"
            assert error.status_code == 409
            assert error.render("en") == (
                "no Kubernetes cluster is configured (SANDLADA_KUBECONFIG); tenants are "
                "recorded and provisioned once one is"
            )
            assert error.render("sv").startswith("inget Kubernetes-kluster är konfigurerat")
            # One language per message: no " / " Swedish tail in the English text any more.
            assert "kluster" not in error.render("en")
        # The plain-text constant (CLI, logs) keeps both languages.
        assert (
            f"{ClusterNotConfiguredError().render('en')} / "
            f"{ClusterNotConfiguredError().render('sv')}"
        ) == NOT_CONFIGURED_MESSAGE

    def test_other_text_is_kept(self) -> None:
        error = ClusterNotConfiguredError("something else")
        assert error.render("sv") == "something else"

    def test_unavailable_apiserver(self) -> None:
        with pytest.raises(ClusterUnavailableError) as info:
            _call("list Tenants", lambda: _raise(ApiException(status=503, reason="Busy")))
        assert info.value.code == "cluster_unavailable"
        assert info.value.render("en") == (
            "Kubernetes is unavailable (list Tenants: 503 Busy); try again shortly"
        )
        assert info.value.render("sv") == (
            "Kubernetes svarar inte just nu (list Tenants: 503 Busy); försök igen om en stund"
        )

    def test_unreachable_apiserver_with_a_real_connection(self) -> None:
        pool = urllib3.PoolManager(retries=False, timeout=2)
        url = f"http://127.0.0.1:{_closed_port()}/apis"
        with pytest.raises(ClusterUnavailableError) as info:
            _call("apply Tenant x", lambda: pool.request("GET", url))
        assert info.value.status_code == 503
        assert info.value.render("en").startswith("Kubernetes is unreachable (apply Tenant x: ")
        assert info.value.render("sv").startswith(
            "Kubernetes går inte att nå just nu (apply Tenant x: "
        )

    def test_refusal_is_a_cluster_error(self) -> None:
        with pytest.raises(ClusterError) as info:
            _call("apply Tenant x", lambda: _raise(ApiException(status=403, reason="Forbidden")))
        assert info.value.code == "cluster_error"
        assert info.value.render("en") == "Kubernetes refused to apply Tenant x: 403 Forbidden"
        assert info.value.render("sv") == (
            "Kubernetes nekade anropet (apply Tenant x): 403 Forbidden"
        )


class TestIdentity:
    def test_unreachable_keycloak(self) -> None:
        store = IdentityStore(
            f"http://127.0.0.1:{_closed_port()}", "sandlada", "sandlada-controlplane", "x", 2.0
        )
        with pytest.raises(ServiceUnavailableError) as info:
            store.find_by_username("alva")
        assert info.value.code == "unavailable"
        assert info.value.status_code == 503
        english, swedish = info.value.render("en"), info.value.render("sv")
        assert english.startswith(
            "the identity provider (Keycloak) cannot be reached or refused the control plane's "
            "request; nothing was changed, try again in a while (look up user by username: "
        )
        assert swedish.startswith(
            "identitetstjänsten (Keycloak) svarar inte eller nekade kontrollplanets anrop; inget "
            "har ändrats, försök igen om en stund (look up user by username: "
        )

    def test_not_configured(self) -> None:
        with pytest.raises(ServiceUnavailableError) as info:
            members.require(None)
        assert info.value.render("en") == (
            "identity administration is not configured on this control plane "
            "(SANDLADA_KEYCLOAK_URL), so members cannot be managed"
        )
        assert info.value.render("sv") == (
            "identitetsadministration är inte konfigurerad i kontrollplanet "
            "(SANDLADA_KEYCLOAK_URL), så medlemmar kan inte hanteras"
        )


class TestPortalSignIn:
    def test_unreachable_sign_in_service(self) -> None:
        issuer = f"http://127.0.0.1:{_closed_port()}/realms/sandlada"
        client = PortalOidcClient(
            issuer, "sandlada-portal", "x", OidcVerifier(issuer, "sandlada-controlplane")
        )
        try:
            with pytest.raises(ServiceUnavailableError) as info:
                client.authorization_url("http://portal/cb", "s", "n", "c", "sv")
        finally:
            client.close()
        url = f"{issuer}/.well-known/openid-configuration"
        assert info.value.render("en").startswith(f"identity provider unreachable at {url}: ")
        assert info.value.render("sv").startswith(
            f"identitetsleverantören går inte att nå på {url}: "
        )
