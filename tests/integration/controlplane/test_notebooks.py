"""The notebooks API against the real local cluster, with tokens from the local OIDC issuer.

Tenants are SQL rows made here (ready, with a grant) and a plain namespace ``t-<slug>`` on the
cluster; no operator runs, so launched notebooks stay ``Pending`` while the API's own checks
(who may, which profile, how much quota) are what is under test. Names are per run because
the cluster outlives the rolled-back database transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client as k8s
from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.models import (
    Agency,
    AgencyKind,
    AiActRisk,
    AuditEvent,
    DataClassification,
    RequestStatus,
    SandboxRequest,
    Tenant,
    TenantStatus,
)
from controlplane.settings import Settings
from infra.cluster.launcher import ClusterInfo
from tenants.names import namespace_for
from tenants.notebook import PLURAL
from tenants.resource import GROUP, VERSION
from tests.fixtures.cluster import api_client, wait_until
from tests.fixtures.notebooks import ensure_notebook_crd
from tests.fixtures.tokens import (
    ADMIN,
    KIRUNA,
    KIRUNA_COLLEAGUE,
    LULEA_REQUESTER,
    Persona,
    TestIssuer,
)
from tests.integration.controlplane.conftest import GPU_MODEL, Api

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

PROFILES = "/api/v1/notebook-profiles"


@pytest.fixture
def settings(oidc_issuer: TestIssuer, engine: Any, cluster: ClusterInfo) -> Settings:
    return Settings(
        environment="test",
        database_url=str(engine.url.render_as_string(hide_password=False)),
        oidc_issuer=oidc_issuer.url,
        jwks_min_refetch_seconds=0,
        kubeconfig=cluster.kubeconfig,
        kubernetes_timeout_seconds=10,
        tenant_sync_seconds=0,
    )


@pytest.fixture(scope="module")
def kube(cluster: ClusterInfo) -> Iterator[k8s.ApiClient]:
    api = api_client(cluster)
    ensure_notebook_crd(api)
    yield api
    api.close()  # type: ignore[no-untyped-call]


class World:
    """One test's tenants (SQL rows + namespaces) and the people in them."""

    def __init__(self, session: Session, kube: k8s.ApiClient) -> None:
        self.session = session
        self.kube = kube
        self.core = k8s.CoreV1Api(kube)
        self.namespaces: list[str] = []
        agency = session.scalar(select(Agency).where(Agency.organisation_number == "2120002742"))
        if agency is None:
            agency = Agency(
                organisation_number="2120002742",
                name="Kiruna kommun",
                kind=AgencyKind.MUNICIPALITY,
            )
            session.add(agency)
            session.flush()
        self.agency: Agency = agency

    def tenant(
        self,
        *,
        gpus: int = 2,
        gpu_model: str | None = GPU_MODEL,
        cpu: int = 64,
        memory_gib: int = 512,
        storage_gib: int = 1000,
        classification: DataClassification = DataClassification.INTERNAL,
        status: TenantStatus = TenantStatus.READY,
        namespace: bool = True,
    ) -> Tenant:
        slug = f"nbt-{uuid.uuid4().hex[:8]}"
        request = SandboxRequest(
            name=slug,
            agency_id=self.agency.id,
            requester_subject="sub-requester",
            requester_name="Anna",
            requester_email=None,
            purpose="Notebook tests.",
            legal_basis="Kommunallagen.",
            data_classification=classification,
            ai_act_risk=AiActRisk.MINIMAL,
            requested_quota={},
            end_date=datetime.now(UTC).date() + timedelta(days=30),
            status=RequestStatus.APPROVED,
        )
        self.session.add(request)
        self.session.flush()
        tenant = Tenant(
            slug=slug,
            request_id=request.id,
            agency_id=self.agency.id,
            status=status,
            gpus=gpus,
            gpu_model=gpu_model if gpus else None,
            cpu=cpu,
            memory_gib=memory_gib,
            storage_gib=storage_gib,
            expires_on=request.end_date,
        )
        self.session.add(tenant)
        self.session.commit()
        if namespace:
            body: Any = {"metadata": {"name": namespace_for(slug)}}
            self.core.create_namespace(body)
            self.namespaces.append(namespace_for(slug))
        return tenant

    def close(self) -> None:
        for name in self.namespaces:
            self.core.delete_namespace(name)


@pytest.fixture
def world(session: Session, kube: k8s.ApiClient) -> Iterator[World]:
    w = World(session, kube)
    yield w
    w.close()


def member(slug: str, name: str = "maja") -> Persona:
    return Persona(f"sub-{name}-{slug}", f"{name}.kiruna", KIRUNA, groups=(f"t-{slug}-members",))


def tenant_admin(slug: str) -> Persona:
    return Persona(f"sub-boss-{slug}", "boss.kiruna", KIRUNA, groups=(f"t-{slug}-admins",))


def launch(
    api: Api,
    slug: str,
    persona: Persona | None,
    name: str,
    profile: str = "cpu-small",
    *,
    sv: bool = False,
) -> Any:
    return api.request(
        "POST",
        f"/api/v1/tenants/{slug}/notebooks",
        persona,
        json={"name": name, "profile": profile},
        headers={"Accept-Language": "sv"} if sv else {},
    )


def error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code, body
    detail: str = body["detail"]
    return detail


class TestProfiles:
    def test_anonymous_is_401(self, api: Api) -> None:
        assert api.request("GET", PROFILES, None).status_code == 401

    def test_catalogue_shape(self, api: Api) -> None:
        response = api.request("GET", PROFILES, LULEA_REQUESTER)
        assert response.status_code == 200, response.text
        profiles = {p["slug"]: p for p in response.json()}
        assert {"cpu-small", "gpu-a100", "gpu-l4"} <= set(profiles)
        a100 = profiles["gpu-a100"]
        assert (a100["gpus"], a100["gpu_model"]) == (1, GPU_MODEL)
        assert {"cpu", "memory_gib", "storage_gib", "display_name"} <= set(a100)
        assert set(a100["display_name"]) == {"sv", "en"}

    def test_for_a_tenant_only_what_it_may_use(self, api: Api, world: World) -> None:
        a100_tenant = world.tenant(namespace=False)
        slug = a100_tenant.slug
        usable = {
            p["slug"]
            for p in api.request("GET", PROFILES, member(slug), params={"tenant": slug}).json()
        }
        assert "gpu-a100" in usable and "gpu-a100-x4" in usable
        assert "gpu-l4" not in usable  # another GPU model than the grant
        assert "cpu-small" in usable
        open_cpu = world.tenant(gpus=0, classification=DataClassification.OPEN, namespace=False)
        usable = {
            p["slug"]
            for p in api.request(
                "GET", PROFILES, member(open_cpu.slug), params={"tenant": open_cpu.slug}
            ).json()
        }
        assert usable == {"cpu-small", "cpu-large"}

    def test_for_a_tenant_needs_membership(self, api: Api, world: World) -> None:
        slug = world.tenant(namespace=False).slug
        assert (
            api.request("GET", PROFILES, LULEA_REQUESTER, params={"tenant": slug}).status_code
            == 404
        )
        assert (
            api.request("GET", PROFILES, KIRUNA_COLLEAGUE, params={"tenant": slug}).status_code
            == 403
        )


class TestLaunch:
    def test_who_may_launch(self, api: Api, world: World) -> None:
        slug = world.tenant().slug
        assert launch(api, slug, None, "a").status_code == 401
        error(launch(api, slug, LULEA_REQUESTER, "a"), 404, "not_found")
        error(launch(api, slug, KIRUNA_COLLEAGUE, "a"), 403, "forbidden")
        response = launch(api, slug, member(slug), "analys")
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["name"] == "analys"
        assert body["profile"] == "cpu-small"
        assert body["phase"] == "Pending"
        assert body["owner"] == member(slug).sub
        assert body["owner_name"] == "Maja Kiruna"
        assert body["url"] is None and body["stop_reason"] is None
        assert {"started_at", "last_activity"} <= set(body)
        assert launch(api, slug, ADMIN, "admins-own").status_code == 202

        # It is on the cluster as the operator expects it.
        raw: Any = k8s.CustomObjectsApi(world.kube).get_namespaced_custom_object(
            GROUP, VERSION, namespace_for(slug), PLURAL, "analys"
        )
        assert raw["spec"]["owner"] == member(slug).sub
        assert raw["spec"]["cpu"] == 2
        assert raw["metadata"]["labels"]["sandlada.se/notebook"] == "analys"

        listed = api.request("GET", f"/api/v1/tenants/{slug}/notebooks", member(slug, "other"))
        assert listed.status_code == 200
        assert [n["name"] for n in listed.json()] == ["admins-own", "analys"]
        one = api.request("GET", f"/api/v1/tenants/{slug}/notebooks/analys", member(slug))
        assert one.status_code == 200 and one.json()["name"] == "analys"
        error(
            api.request("GET", f"/api/v1/tenants/{slug}/notebooks/nope", member(slug)),
            404,
            "not_found",
        )
        error(
            api.request("GET", f"/api/v1/tenants/{slug}/notebooks", LULEA_REQUESTER),
            404,
            "not_found",
        )
        error(
            api.request("GET", f"/api/v1/tenants/{slug}/notebooks", KIRUNA_COLLEAGUE),
            403,
            "forbidden",
        )

        launched = world.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "notebook.launched")
        ).all()
        assert {e.subject_id for e in launched} >= {f"{slug}/analys", f"{slug}/admins-own"}

    def test_duplicate_name_is_409(self, api: Api, world: World) -> None:
        slug = world.tenant().slug
        assert launch(api, slug, member(slug), "dup").status_code == 202
        detail = error(launch(api, slug, member(slug, "b"), "dup"), 409, "notebook_exists")
        assert "'dup' already exists" in detail
        detail = error(launch(api, slug, member(slug, "b"), "dup", sv=True), 409, "notebook_exists")
        assert "finns redan" in detail

    def test_owner_starts_a_stopped_notebook_again(self, api: Api, world: World) -> None:
        slug = world.tenant(gpus=1).slug
        namespace = namespace_for(slug)
        custom = k8s.CustomObjectsApi(world.kube)
        assert launch(api, slug, member(slug), "nb", "gpu-a100").status_code == 202
        # Stopped as the idle culler does it: spec.stopped, the reason in status.
        patch: Any = {"spec": {"stopped": True}}
        custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            "nb",
            patch,
            _content_type="application/merge-patch+json",
        )
        # Someone else may not take the name over.
        error(launch(api, slug, member(slug, "other"), "nb", "cpu-small"), 409, "notebook_exists")
        # Its GPU is free again, and its owner starts it again, with another profile even.
        response = launch(api, slug, member(slug), "nb", "cpu-small")
        assert response.status_code == 202, response.text
        assert response.json()["profile"] == "cpu-small"
        raw: Any = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "nb")
        assert raw["spec"]["stopped"] is False
        assert raw["spec"]["gpus"] == 0 and "gpuModel" not in raw["spec"]
        # Running again, it is a duplicate once more.
        error(launch(api, slug, member(slug), "nb", "cpu-small"), 409, "notebook_exists")

    @pytest.mark.parametrize(
        ("name", "profile", "field"),
        [
            ("Bad_Name", "cpu-small", "name"),
            ("9lives", "cpu-small", "name"),
            ("x" * 41, "cpu-small", "name"),
            ("ok", "no-such-profile", "profile"),
            ("ok", "gpu-l4", "profile"),  # an L4 profile for an A100 tenant
        ],
    )
    def test_bad_input_is_422_naming_the_field(
        self, api: Api, world: World, name: str, profile: str, field: str
    ) -> None:
        slug = world.tenant(namespace=False).slug
        detail = error(launch(api, slug, member(slug), name, profile), 422, "invalid_input")
        assert detail.startswith(f"{field}: ") or f"{field}:" in detail, detail

    def test_profile_not_for_this_classification_is_422(self, api: Api, world: World) -> None:
        slug = world.tenant(classification=DataClassification.OPEN, namespace=False).slug
        detail = error(launch(api, slug, member(slug), "big", "gpu-a100-x4"), 422, "invalid_input")
        assert "profile" in detail and "'public'" in detail
        no_gpus = world.tenant(gpus=0, namespace=False).slug
        detail = error(launch(api, no_gpus, member(no_gpus), "g", "gpu-a100"), 422, "invalid_input")
        assert "no GPUs granted" in detail
        detail = error(
            launch(api, no_gpus, member(no_gpus), "g", "gpu-a100", sv=True), 422, "invalid_input"
        )
        assert detail.startswith("profile: ") and "inga GPU:er tilldelade" in detail

    def test_extra_fields_are_422(self, api: Api, world: World) -> None:
        slug = world.tenant(namespace=False).slug
        response = api.request(
            "POST",
            f"/api/v1/tenants/{slug}/notebooks",
            member(slug),
            json={"name": "x", "profile": "cpu-small", "gpus": 8},
        )
        assert "gpus" in error(response, 422, "invalid_input")

    @pytest.mark.parametrize(
        ("status", "words"),
        [(TenantStatus.SUSPENDED, "suspended"), (TenantStatus.PROVISIONING, "provisioning")],
    )
    def test_tenant_not_ready_is_409(
        self, api: Api, world: World, status: TenantStatus, words: str
    ) -> None:
        slug = world.tenant(status=status, namespace=False).slug
        assert words in error(launch(api, slug, member(slug), "x"), 409, "tenant_not_ready")


class TestQuota:
    def test_gpu_quota_names_what_is_in_use(self, api: Api, world: World) -> None:
        slug = world.tenant(gpus=2).slug
        assert launch(api, slug, member(slug), "one", "gpu-a100").status_code == 202
        assert launch(api, slug, member(slug, "b"), "two", "gpu-a100").status_code == 202
        detail = error(launch(api, slug, member(slug), "three", "gpu-a100"), 409, "quota_exceeded")
        assert "GPU quota exhausted: 2 of 2 NVIDIA A100 SXM4 80GB in use" in detail
        detail = error(
            launch(api, slug, member(slug), "three", "gpu-a100", sv=True), 409, "quota_exceeded"
        )
        assert "GPU-kvoten räcker inte: 2 av 2 NVIDIA A100 SXM4 80GB används" in detail
        # Nothing was created for the refused launch.
        names = [
            n["name"]
            for n in api.request("GET", f"/api/v1/tenants/{slug}/notebooks", member(slug)).json()
        ]
        assert names == ["one", "two"]
        # A CPU profile still fits: the GPU quota is all that is used up.
        assert launch(api, slug, member(slug), "cpu", "cpu-small").status_code == 202

    def test_other_pods_count_and_a_stopped_notebook_frees_its_share(
        self, api: Api, world: World
    ) -> None:
        slug = world.tenant(gpus=0, cpu=4, memory_gib=64).slug
        namespace = namespace_for(slug)
        pod: Any = {
            "metadata": {"name": "batch-job"},
            "spec": {
                "containers": [
                    {
                        "name": "main",
                        "image": "busybox",
                        "resources": {"requests": {"cpu": "1500m", "memory": "1Gi"}},
                    }
                ]
            },
        }
        world.core.create_namespaced_pod(namespace, pod)
        assert launch(api, slug, member(slug), "first").status_code == 202  # 1.5 + 2 of 4
        detail = error(launch(api, slug, member(slug), "second"), 409, "quota_exceeded")
        assert "CPU quota exhausted: 3.5 of 4 cores in use" in detail
        assert "profile 'cpu-small' needs 2" in detail
        # Stopping (deleting) the first gives its CPU back (once its pod is gone, should an
        # operator have made one: wait for it).
        response = api.request("DELETE", f"/api/v1/tenants/{slug}/notebooks/first", member(slug))
        assert response.status_code == 204, response.text
        wait_until(
            lambda: launch(api, slug, member(slug), "second").status_code == 202,
            timeout=60,
            what="the stopped notebook's CPU to be free again",
        )

    def test_storage_counts_kept_home_volumes(self, api: Api, world: World) -> None:
        slug = world.tenant(gpus=0, storage_gib=15).slug
        claim: Any = {
            "metadata": {"name": "home-old"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "10Gi"}},
            },
        }
        world.core.create_namespaced_persistent_volume_claim(namespace_for(slug), claim)
        detail = error(launch(api, slug, member(slug), "new"), 409, "quota_exceeded")
        assert "storage quota exhausted: 10 of 15 GiB in use" in detail
        # Relaunching under the old name reuses its home volume: no new storage needed.
        assert launch(api, slug, member(slug), "old").status_code == 202

    def test_apiserver_quota_refusal_is_409(self, api: Api, world: World) -> None:
        slug = world.tenant().slug
        quota: Any = {
            "metadata": {"name": "no-notebooks"},
            "spec": {"hard": {f"count/{PLURAL}.{GROUP}": "0"}},
        }
        world.core.create_namespaced_resource_quota(namespace_for(slug), quota)
        detail = error(launch(api, slug, member(slug), "x"), 409, "quota_exceeded")
        assert "exceeded quota: no-notebooks" in detail
        events = world.session.scalars(
            select(AuditEvent).where(AuditEvent.subject_id == f"{slug}/x")
        ).all()
        assert events == []  # the launch's audit event was rolled back with it


class TestStop:
    def test_owner_stops_own_others_need_tenant_admin(self, api: Api, world: World) -> None:
        slug = world.tenant().slug
        base = f"/api/v1/tenants/{slug}/notebooks"
        assert launch(api, slug, member(slug), "mine").status_code == 202
        assert launch(api, slug, member(slug), "also-mine").status_code == 202
        assert api.request("DELETE", f"{base}/mine", None).status_code == 401
        error(api.request("DELETE", f"{base}/mine", LULEA_REQUESTER), 404, "not_found")
        detail = error(
            api.request("DELETE", f"{base}/mine", member(slug, "colleague")), 403, "forbidden"
        )
        assert "belongs to Maja Kiruna" in detail and "tenant's admin role" in detail
        swedish = api.request(
            "DELETE",
            f"{base}/mine",
            member(slug, "colleague"),
            headers={"Accept-Language": "sv-SE,sv;q=0.9"},
        )
        assert "administratörsrollen" in error(swedish, 403, "forbidden")
        assert api.request("DELETE", f"{base}/mine", member(slug)).status_code == 204
        assert api.request("DELETE", f"{base}/also-mine", tenant_admin(slug)).status_code == 204
        # Going (an operator's finalizer may hold it a moment): shown Stopped, stopping it again
        # changes nothing, then it is gone.
        for name in ("mine", "also-mine"):
            response = api.request("GET", f"{base}/{name}", member(slug))
            assert response.status_code == 404 or response.json()["phase"] == "Stopped"
            assert api.request("DELETE", f"{base}/{name}", member(slug)).status_code in {204, 404}

            def gone(path: str = f"{base}/{name}") -> bool:
                return api.request("GET", path, member(slug)).status_code == 404

            wait_until(gone, timeout=60, what=f"notebook {name} deleted")
            error(api.request("DELETE", f"{base}/{name}", member(slug)), 404, "not_found")
        stopped = world.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "notebook.stopped")
        ).all()
        assert sorted(e.subject_id for e in stopped if e.subject_id.startswith(slug)) == [
            f"{slug}/also-mine",
            f"{slug}/mine",
        ]  # once each: stopping what is already going is not another stop
        by_subject = {e.subject_id: e for e in stopped}
        assert by_subject[f"{slug}/mine"].actor == member(slug).sub
        assert by_subject[f"{slug}/also-mine"].actor == tenant_admin(slug).sub
        before = by_subject[f"{slug}/also-mine"].before
        assert before is not None
        assert before["owner"] == member(slug).sub

    def test_platform_admin_may_stop(self, api: Api, world: World) -> None:
        slug = world.tenant().slug
        assert launch(api, slug, member(slug), "nb").status_code == 202
        response = api.request("DELETE", f"/api/v1/tenants/{slug}/notebooks/nb", ADMIN)
        assert response.status_code == 204
