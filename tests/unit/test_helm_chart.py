"""The Helm chart offline: lint, rendered objects against the Kubernetes schema, CRDs, values.

Renders with the helm binary ``make infra`` builds (tests/fixtures/helm.py); nothing here talks
to a cluster (tests/e2e/test_helm_install.py installs it on the local one).
"""

from __future__ import annotations

import re
import tarfile
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from controlplane.settings import Settings
from operators.config import OperatorConfig
from operators.tenant import _CHILD_RESOURCES
from tenants.builders import ADMIN_ROLE, MEMBER_ROLE
from tests.fixtures.helm import ALL_OPTIONS, CHART, KUBERNETES_VERSION, REPO, render, run_helm

TENANT_CRDS = REPO / "tenants" / "crds"
# kubernetes-validate ships schemas per minor version; the cluster's minor is what counts.
SCHEMA_VERSION = ".".join(KUBERNETES_VERSION.removeprefix("v").split(".")[:2]) + ".0"
VALUE_SETS = {"defaults": [], "all-options": ["--values", str(ALL_OPTIONS)]}


def _pod_specs(objects: list[Any]) -> dict[str, Any]:
    """Pod specs of every workload, by kind/name."""
    return {
        f"{obj['kind']}/{obj['metadata']['name']}": obj["spec"]["template"]["spec"]
        for obj in objects
        if obj["kind"] in {"Deployment", "Job"}
    }


def _by_kind(objects: list[Any], kind: str) -> list[Any]:
    return [obj for obj in objects if obj["kind"] == kind]


@pytest.mark.parametrize("values", VALUE_SETS)
def test_lint_strict_is_clean(values: str) -> None:
    result = run_helm(
        "lint", "--strict", str(CHART), "--kube-version", KUBERNETES_VERSION, *VALUE_SETS[values]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout
    assert "[ERROR]" not in result.stdout
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("values", VALUE_SETS)
def test_every_rendered_object_validates_against_the_cluster_schema(values: str) -> None:
    objects = render(*VALUE_SETS[values])
    kinds = {obj["kind"] for obj in objects}
    assert {
        "CustomResourceDefinition",
        "Deployment",
        "Service",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Job",
        "PodDisruptionBudget",
    } <= kinds
    if values == "all-options":
        assert {"Ingress", "NetworkPolicy"} <= kinds
    else:
        assert not {"Ingress", "NetworkPolicy"} & kinds
    for obj in objects:
        # strict: unknown fields are errors too, as the apiserver's strict field validation.
        kubernetes_validate.validate(obj, SCHEMA_VERSION, strict=True)


def test_crds_are_the_ones_in_tenants_crds() -> None:
    # One source of truth: the chart's crds/ is a link to tenants/crds, so every CRD file there
    # (the generated Tenant and Notebook CRDs, and any added later) ships with the chart as is.
    link = CHART / "crds"
    assert link.is_symlink(), "helm/sandlada/crds must stay a symlink to tenants/crds"
    assert link.resolve() == TENANT_CRDS.resolve()
    sources = sorted(
        (yaml.safe_load(path.read_text()) for path in TENANT_CRDS.glob("*.yaml")),
        key=lambda d: d["metadata"]["name"],
    )
    assert len(sources) >= 2  # Tenant and Notebook at least
    # What `helm install` would create (helm reads crds/ file by file).
    shipped = sorted(
        _by_kind(render(), "CustomResourceDefinition"), key=lambda d: d["metadata"]["name"]
    )
    assert shipped == sources


def test_packaged_chart_carries_copies_of_the_crds(tmp_path: Path) -> None:
    run_helm("package", str(CHART), "--destination", str(tmp_path), check=True)
    (archive,) = tmp_path.glob("sandlada-*.tgz")
    with tarfile.open(archive) as tar:
        packaged = {
            Path(member.name).name: tar.extractfile(member).read()  # type: ignore[union-attr]
            for member in tar.getmembers()
            if member.name.startswith("sandlada/crds/") and member.isfile()
        }
    assert packaged == {path.name: path.read_bytes() for path in TENANT_CRDS.glob("*.yaml")}


@pytest.mark.parametrize("values", VALUE_SETS)
def test_pods_meet_pod_security_restricted(values: str) -> None:
    # The e2e test installs into a namespace enforcing `restricted`; this names the field.
    for name, spec in _pod_specs(render(*VALUE_SETS[values])).items():
        pod_context = spec["securityContext"]
        assert pod_context["runAsNonRoot"] is True, name
        assert pod_context["runAsUser"] > 0, name
        assert pod_context["seccompProfile"]["type"] == "RuntimeDefault", name
        assert not spec.get("hostNetwork") and not spec.get("hostPID"), name
        assert all("hostPath" not in volume for volume in spec.get("volumes", [])), name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert "add" not in context["capabilities"], name
            assert context["readOnlyRootFilesystem"] is True, name
            assert set(container["resources"]) == {"requests", "limits"}, name
            assert "ports" not in container or all(
                "hostPort" not in port for port in container["ports"]
            ), name


def test_probes_point_at_the_health_endpoints() -> None:
    specs = _pod_specs(render())
    control = specs["Deployment/sandlada-controlplane"]["containers"][0]
    assert control["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert control["readinessProbe"]["httpGet"]["path"] == "/readyz"
    operator = specs["Deployment/sandlada-operator"]["containers"][0]
    assert operator["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    env = {item["name"]: item.get("value") for item in operator["env"]}
    port = next(p["containerPort"] for p in operator["ports"] if p["name"] == "health")
    assert env["SANDLADA_OPERATOR_HEALTH_URL"] == f"http://0.0.0.0:{port}/healthz"


def test_migration_job_is_a_pre_install_and_pre_upgrade_hook() -> None:
    (job,) = _by_kind(render(), "Job")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert "hook-succeeded" in annotations["helm.sh/hook-delete-policy"]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["db", "upgrade"]
    disabled = render("--set", "migrations.enabled=false")
    assert not _by_kind(disabled, "Job")


def _env(container: dict[str, Any], secrets: dict[tuple[str, str], str]) -> dict[str, str]:
    """A container's environment, with secretKeyRefs resolved from ``secrets``."""
    env = {}
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secrets[(ref["name"], ref["key"])]
    return env


def test_operator_environment_is_accepted_by_operator_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = _pod_specs(render("--values", str(ALL_OPTIONS)))["Deployment/sandlada-operator"]
    secrets = {
        ("sandlada-mlflow", "admin-password"): "an-admin-password",
        ("sandlada-mlflow", "password-key"): "a-key-of-sixteen-bytes-or-more",
    }
    for key in OperatorConfig.model_fields:
        monkeypatch.delenv(f"SANDLADA_OPERATOR_{key.upper()}", raising=False)
    for key, value in _env(spec["containers"][0], secrets).items():
        monkeypatch.setenv(key, value)
    config = OperatorConfig()
    assert config.standalone and not config.install_crd
    assert config.mlflow_configured
    assert config.notebook_storage_class == "fast-ssd"


def test_control_plane_environment_is_accepted_by_settings_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    objects = render(
        "--set",
        "oidc.issuer=https://sso.example.se/realms/sandlada",
        "--set",
        "keycloak.url=https://sso.example.se",
    )
    secrets = {
        ("sandlada-database", "url"): "postgresql+psycopg://sandlada:pw@db:5432/sandlada",
        ("sandlada-keycloak", "client-secret"): "a-real-client-secret",
        ("sandlada-portal", "client-secret"): "a-real-portal-secret",
        ("sandlada-portal", "session-secret"): "a-real-session-key",
    }
    fields = {f"SANDLADA_{name.upper()}" for name in Settings.model_fields}
    for name, spec in _pod_specs(objects).items():
        if "operator" in name:
            continue
        env = _env(spec["containers"][0], secrets)
        ours = {key for key in env if key.startswith("SANDLADA_")}
        assert ours <= fields, f"{name} sets unknown settings {ours - fields}"
        for key in list(Settings.model_fields):
            monkeypatch.delenv(f"SANDLADA_{key.upper()}", raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        settings = Settings()
        assert settings.environment == "production"
        assert settings.database_url == secrets[("sandlada-database", "url")]
        if name.startswith("Deployment/"):  # the migration Job needs no cluster
            assert str(settings.kubeconfig).startswith("/etc/sandlada/")


def test_operator_environment_names_only_operator_settings() -> None:
    spec = _pod_specs(render("--values", str(ALL_OPTIONS)))["Deployment/sandlada-operator"]
    env = {item["name"] for item in spec["containers"][0]["env"]}
    fields = {f"SANDLADA_OPERATOR_{name.upper()}" for name in OperatorConfig.model_fields}
    ours = {key for key in env if key.startswith("SANDLADA_")}
    assert ours <= fields, ours - fields
    assert {"SANDLADA_OPERATOR_STANDALONE", "SANDLADA_OPERATOR_HEALTH_URL"} <= ours


def _rules(objects: list[Any], name: str) -> list[dict[str, Any]]:
    (role,) = [obj for obj in _by_kind(objects, "ClusterRole") if obj["metadata"]["name"] == name]
    rules: list[dict[str, Any]] = role["rules"]
    return rules


def _allows(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any(
        group in rule["apiGroups"]
        and resource in rule["resources"]
        and verb in rule["verbs"]
        and "resourceNames" not in rule
        for rule in rules
    )


def test_rbac_is_least_privilege_and_covers_what_the_operator_watches() -> None:
    objects = render()
    operator = _rules(objects, "sandlada-operator")
    control = _rules(objects, "sandlada-controlplane")
    for rule in operator + control:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
        assert "*" not in rule["apiGroups"], rule
    # escalate/bind only for the two Roles the builders write (renaming one breaks this test).
    privileged = [r for r in operator if {"escalate", "bind"} & set(r["verbs"])]
    assert privileged == [
        {
            "apiGroups": ["rbac.authorization.k8s.io"],
            "resources": ["roles"],
            "verbs": ["escalate", "bind"],
            "resourceNames": [ADMIN_ROLE, MEMBER_ROLE],
        }
    ]
    for api_version, plural in _CHILD_RESOURCES:
        group = api_version.rpartition("/")[0]
        for verb in ("list", "watch", "create", "patch"):
            assert _allows(operator, group, plural, verb), (plural, verb)
    for verb in ("get", "list", "watch", "patch"):
        assert _allows(operator, "sandlada.se", "tenants", verb)
    assert _allows(operator, "sandlada.se", "tenants/status", "patch")
    # The control plane never touches Secrets; the operator writes notebook tokens and MLflow
    # credentials and reads a token back by name, but may not list or watch them (no bulk read
    # of every Secret) nor delete them (owner references do that).
    assert not any("secrets" in rule["resources"] for rule in control)
    secret_verbs = {v for r in operator if "secrets" in r["resources"] for v in r["verbs"]}
    assert secret_verbs == {"get", "create", "patch"}
    assert _allows(control, "sandlada.se", "tenants", "patch")
    assert _allows(control, "", "nodes", "list")
    assert not _allows(control, "", "namespaces", "create")
    metering = _rules(objects, "sandlada-metering")
    assert {verb for rule in metering for verb in rule["verbs"]} == {"get", "list", "watch"}


BAD_VALUES = [
    (["--set", "database.existingSecret="], "at '/database/existingSecret'"),
    (["--set", "database.existingSecret=null"], "missing property 'existingSecret'"),
    (["--set", "keycloak.existingSecret="], "at '/keycloak/existingSecret'"),
    (["--set", "portal.existingSecret=Not_A_Name"], "at '/portal/existingSecret'"),
    (["--set", "controlPlane.replicas=-1"], "at '/controlPlane/replicas': minimum"),
    (["--set", "controlPlane.replicas=two"], "at '/controlPlane/replicas'"),
    (["--set", "oidc.issuer=http://sso.example.se/realms/x"], "at '/oidc/issuer'"),
    (["--set", "controlPlane.replicaz=2"], "additional properties 'replicaz' not allowed"),
    (
        ["--set", "podDisruptionBudget.maxUnavailable=-1"],
        "at '/podDisruptionBudget/maxUnavailable'",
    ),
    (["--set", "service.type=ExternalName"], "at '/service/type'"),
    (["--set", "operator.mlflow.url=http://mlflow:5000"], "at '/operator/mlflow/existingSecret'"),
    (["--set", "image.repository="], "at '/image/repository'"),
    (
        ["--set", "controlPlane.resources.limits.memory=lots"],
        "at '/controlPlane/resources/limits/memory'",
    ),
]


@pytest.mark.parametrize(("args", "message"), BAD_VALUES, ids=[a[-1] for a, _ in BAD_VALUES])
@pytest.mark.parametrize("command", ["template", "lint"])
def test_bad_values_are_refused_naming_the_field(
    command: str, args: list[str], message: str
) -> None:
    result = run_helm(command, str(CHART), "--kube-version", KUBERNETES_VERSION, *args)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    # template: "values don't meet the specifications of the schema(s)…";
    # lint: "[ERROR] values.yaml: …"
    assert "values don't meet the specifications of the schema" in output or (
        "[ERROR] values.yaml" in output
    ), output
    assert message in output, output


# Kubernetes client calls in the product code, found by the client objects' conventional
# attribute names (``self._core.list_namespaced_pod``…); custom-object calls are covered by the
# explicit checks above and the e2e test.
_CLIENT_CALL = re.compile(
    r"\b_?(?:core|net|rbac|ext|apps|batch)\."
    r"(?P<verb>list|read|create|patch|replace|delete_collection|delete)_(?P<rest>\w+)"
)
_VERBS = {
    "list": "list",
    "read": "get",
    "create": "create",
    "patch": "patch",
    "replace": "update",
    "delete_collection": "deletecollection",
    "delete": "delete",
}
_GROUPS = {
    "networkpolicies": "networking.k8s.io",
    "roles": "rbac.authorization.k8s.io",
    "rolebindings": "rbac.authorization.k8s.io",
    "customresourcedefinitions": "apiextensions.k8s.io",
    "deployments": "apps",
    "statefulsets": "apps",
    "jobs": "batch",
}


# Calls the chart never makes happen: the operator installs the CRD itself only with
# SANDLADA_OPERATOR_INSTALL_CRD=true (local development; the chart sets it false and ships
# the CRDs), so it needs no write access to CRDs.
_NOT_IN_THE_CHART = {
    ("apiextensions.k8s.io", "customresourcedefinitions", "get", "operators/storage.py"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "patch", "operators/storage.py"),
}


def _client_calls(package: str, exclude: str = "") -> set[tuple[str, str, str, str]]:
    """(group, resource, verb, file) for every typed client call under ``package``."""
    calls = set()
    for path in (REPO / package).rglob("*.py"):
        # Test helpers and Alembic migrations (``batch_op.create_index``) are no API calls.
        if path.name == "testing.py" or "migrations" in path.parts:
            continue
        if exclude and path.is_relative_to(REPO / exclude):
            continue
        for match in _CLIENT_CALL.finditer(path.read_text()):
            rest = match["rest"]
            if "custom_object" in rest or rest == "code":
                continue
            subresource = ""
            for suffix in ("_for_all_namespaces", "_status"):
                if rest.endswith(suffix):
                    rest = rest.removesuffix(suffix)
                    subresource = "/status" if suffix == "_status" else subresource
            rest = rest.removeprefix("namespaced_").replace("_", "")
            plural = rest[:-1] + "ies" if rest.endswith("y") else rest + "s"
            resource = plural + subresource
            group = _GROUPS.get(plural, "")
            calls.add((group, resource, _VERBS[match["verb"]], str(path.relative_to(REPO))))
    return calls


@pytest.mark.parametrize(
    ("package", "exclude", "role"),
    [
        ("operators", "", "sandlada-operator"),
        ("controlplane", "controlplane/metering", "sandlada-controlplane"),
        ("controlplane/metering", "", "sandlada-metering"),
    ],
)
def test_rbac_covers_every_kubernetes_call_in_the_code(
    package: str, exclude: str, role: str
) -> None:
    # A new client call without a matching rule fails here, not in a production pod.
    rules = _rules(render(), role)
    calls = _client_calls(package, exclude)
    assert calls, f"no Kubernetes client calls found under {package}/ (pattern out of date?)"
    missing = sorted(
        f"{verb} {group or 'core'}/{resource} ({path})"
        for group, resource, verb, path in calls
        if not _allows(rules, group, resource, verb)
        and (group, resource, verb, path) not in _NOT_IN_THE_CHART
    )
    assert not missing, f"{role} lacks rules for: {missing}"
