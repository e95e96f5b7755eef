"""Pure builders: a `TenantSpec` in, the Kubernetes objects of the tenant's isolation out.

One function per kind, each returning plain dicts ready for server-side apply; nothing here
talks to a cluster (the operator applies, the unit tests compare with stored YAML and with the
Kubernetes OpenAPI schema). `build_tenant_objects` gathers them in `TenantObjects`, whose
`TenantObjects.all` gives the order to apply them in (namespace first).

Owner references are not set here: they need the live Tenant's uid, which the operator adds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tenants.labels import standard_labels
from tenants.names import namespace_for, tenant_group
from tenants.resource import MIG_PROFILES, SharedService, TenantSpec

Object = dict[str, Any]

# Pod Security Standards version pinned to the cluster's minor version, so a Kubernetes upgrade
# cannot silently change what "restricted" means for running tenants.
POD_SECURITY_VERSION = "v1.36"
PLATFORM_NAMESPACE = "sandlada-system"
NOTEBOOK_SERVICE_ACCOUNT = "notebook"
QUOTA_NAME = "sandlada-quota"
LIMIT_RANGE_NAME = "sandlada-limits"
MLFLOW_SECRET = "mlflow-tracking"  # noqa: S105  (the Secret's name, not a secret)
ADMIN_ROLE = "sandlada-tenant-admin"
MEMBER_ROLE = "sandlada-tenant-member"

GPU_RESOURCE = "nvidia.com/gpu"
SHARED_GPU_RESOURCE = "nvidia.com/gpu.shared"

# Object counts are the same for every tier: they stop runaway scripts, not honest work.
OBJECT_COUNTS = {
    "pods": 50,
    "services": 20,
    "replicationcontrollers": 0,
    "resourcequotas": 1,
    "secrets": 50,
    "configmaps": 50,
    "persistentvolumeclaims": 20,
}

# Container defaults for pods that name no resources, capped by the tenant's quota.
DEFAULT_CPU_LIMIT_MILLI = 1000
DEFAULT_CPU_REQUEST_MILLI = 100
DEFAULT_MEMORY_LIMIT_MIB = 2048
DEFAULT_MEMORY_REQUEST_MIB = 256
DEFAULT_EPHEMERAL_LIMIT_MIB = 1024
DEFAULT_EPHEMERAL_REQUEST_MIB = 100


@dataclass(frozen=True)
class SharedServiceEndpoint:
    """Where a shared platform service listens, for the tenant's egress policy."""

    namespace: str
    pod_labels: dict[str, str]
    port: int


SHARED_SERVICES: dict[SharedService, SharedServiceEndpoint] = {
    SharedService.MLFLOW: SharedServiceEndpoint(
        namespace=PLATFORM_NAMESPACE,
        pod_labels={"app.kubernetes.io/name": "mlflow"},
        port=5000,
    ),
}

_ALL_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
_READ_VERBS = ["get", "list", "watch"]


@dataclass(frozen=True)
class TenantObjects:
    """Every object of one tenant, by kind."""

    namespace: Object
    resource_quota: Object
    limit_range: Object
    network_policies: list[Object]
    roles: list[Object]
    role_bindings: list[Object]
    service_account: Object

    def all(self) -> list[Object]:
        """All objects in apply order: the namespace first, roles before their bindings."""
        return [
            self.namespace,
            self.resource_quota,
            self.limit_range,
            *self.network_policies,
            *self.roles,
            *self.role_bindings,
            self.service_account,
        ]


def _metadata(spec: TenantSpec, name: str, *, namespaced: bool = True) -> Object:
    metadata: Object = {"name": name}
    if namespaced:
        metadata["namespace"] = namespace_for(spec.slug)
    metadata["labels"] = standard_labels(spec.slug)
    return metadata


def _milli(value: int) -> str:
    return f"{value // 1000}" if value % 1000 == 0 else f"{value}m"


def _mib(value: int) -> str:
    return f"{value // 1024}Gi" if value % 1024 == 0 else f"{value}Mi"


def build_namespace(spec: TenantSpec) -> Object:
    """Namespace ``t-<slug>`` under Pod Security ``restricted`` (enforce, audit and warn)."""
    metadata = _metadata(spec, namespace_for(spec.slug), namespaced=False)
    metadata["labels"] = {
        **metadata["labels"],
        "sandlada.se/data-classification": spec.data_classification.value,
        **{
            f"pod-security.kubernetes.io/{mode}{suffix}": value
            for mode in ("enforce", "audit", "warn")
            for suffix, value in (("", "restricted"), ("-version", POD_SECURITY_VERSION))
        },
    }
    metadata["annotations"] = {
        "sandlada.se/agency": spec.agency.name,
        "sandlada.se/organisation-number": spec.agency.organisation_number,
    }
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}


def build_resource_quota(spec: TenantSpec) -> Object:
    """The tenant's hard limits, including zeros for every accelerator not granted.

    A ResourceQuota places no limit on a resource it does not name, so every GPU kind the
    platform knows gets a key. Extended resources take only the ``requests.`` prefix (no
    overcommit). Suspension sets ``pods`` to 0: no new pods, the data stays.
    """
    quota = spec.quota
    hard: dict[str, str] = {
        "requests.cpu": str(quota.cpu),
        "limits.cpu": str(quota.cpu),
        "requests.memory": f"{quota.memory_gib}Gi",
        "limits.memory": f"{quota.memory_gib}Gi",
        "requests.ephemeral-storage": f"{quota.ephemeral_storage_gib}Gi",
        "limits.ephemeral-storage": f"{quota.ephemeral_storage_gib}Gi",
        "requests.storage": f"{quota.storage_gib}Gi",
        f"requests.{GPU_RESOURCE}": str(quota.gpus),
        f"requests.{SHARED_GPU_RESOURCE}": str(quota.shared_gpus),
    }
    for profile in MIG_PROFILES:
        hard[f"requests.nvidia.com/mig-{profile}"] = str(quota.mig.get(profile, 0))
    for name, count in OBJECT_COUNTS.items():
        hard[name] = str(count)
    hard["services.nodeports"] = "0"
    hard["services.loadbalancers"] = "0"
    if spec.suspended:
        hard["pods"] = "0"
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": _metadata(spec, QUOTA_NAME),
        "spec": {"hard": hard},
    }


def build_limit_range(spec: TenantSpec) -> Object:
    """Container defaults (so quota-bound pods need not name resources) and per-object maxima."""
    quota = spec.quota
    cpu_limit = min(DEFAULT_CPU_LIMIT_MILLI, quota.cpu * 1000)
    memory_limit = min(DEFAULT_MEMORY_LIMIT_MIB, quota.memory_gib * 1024)
    ephemeral_limit = min(DEFAULT_EPHEMERAL_LIMIT_MIB, quota.ephemeral_storage_gib * 1024)
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": _metadata(spec, LIMIT_RANGE_NAME),
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "default": {
                        "cpu": _milli(cpu_limit),
                        "memory": _mib(memory_limit),
                        "ephemeral-storage": _mib(ephemeral_limit),
                    },
                    "defaultRequest": {
                        "cpu": _milli(min(DEFAULT_CPU_REQUEST_MILLI, cpu_limit)),
                        "memory": _mib(min(DEFAULT_MEMORY_REQUEST_MIB, memory_limit)),
                        "ephemeral-storage": _mib(
                            min(DEFAULT_EPHEMERAL_REQUEST_MIB, ephemeral_limit)
                        ),
                    },
                    "max": {
                        "cpu": str(quota.cpu),
                        "memory": f"{quota.memory_gib}Gi",
                        "ephemeral-storage": f"{quota.ephemeral_storage_gib}Gi",
                    },
                },
                {
                    "type": "PersistentVolumeClaim",
                    "max": {"storage": f"{quota.storage_gib}Gi"},
                },
            ]
        },
    }


def _namespace_selector(namespace: str) -> Object:
    return {"matchLabels": {"kubernetes.io/metadata.name": namespace}}


def _network_policy(spec: TenantSpec, name: str, body: Object) -> Object:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(spec, name),
        "spec": body,
    }


def build_network_policies(spec: TenantSpec) -> list[Object]:
    """Default deny both ways, then the few allowed paths, one policy each (easy to audit)."""
    policies = [
        _network_policy(
            spec,
            "sandlada-default-deny",
            {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        ),
        _network_policy(
            spec,
            "sandlada-allow-same-namespace",
            {
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [{"podSelector": {}}]}],
                "egress": [{"to": [{"podSelector": {}}]}],
            },
        ),
        _network_policy(
            spec,
            "sandlada-allow-dns",
            {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {
                                "namespaceSelector": _namespace_selector("kube-system"),
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                            }
                        ],
                        "ports": [
                            {"protocol": "UDP", "port": 53},
                            {"protocol": "TCP", "port": 53},
                        ],
                    }
                ],
            },
        ),
        _network_policy(
            spec,
            "sandlada-allow-platform-ingress",
            {
                "podSelector": {},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {"from": [{"namespaceSelector": _namespace_selector(PLATFORM_NAMESPACE)}]}
                ],
            },
        ),
    ]
    for service in sorted(spec.shared_services):
        endpoint = SHARED_SERVICES[service]
        policies.append(
            _network_policy(
                spec,
                f"sandlada-allow-{service.value}",
                {
                    "podSelector": {},
                    "policyTypes": ["Egress"],
                    "egress": [
                        {
                            "to": [
                                {
                                    "namespaceSelector": _namespace_selector(endpoint.namespace),
                                    "podSelector": {"matchLabels": dict(endpoint.pod_labels)},
                                }
                            ],
                            "ports": [{"protocol": "TCP", "port": endpoint.port}],
                        }
                    ],
                },
            )
        )
    return policies


def _rule(group: str, resources: list[str], verbs: list[str]) -> Object:
    return {"apiGroups": [group], "resources": resources, "verbs": verbs}


def _member_rules() -> list[Object]:
    # Data scientists work with pods and notebooks and their data, read the limits they live
    # under, and never touch quota, limits, RBAC or network policy.
    return [
        _rule(
            "",
            ["pods", "services", "configmaps", "secrets", "persistentvolumeclaims"],
            _ALL_VERBS,
        ),
        _rule("", ["pods/log"], _READ_VERBS),
        _rule("", ["pods/exec"], ["get", "create"]),
        _rule("", ["events", "resourcequotas", "limitranges", "serviceaccounts"], _READ_VERBS),
        _rule("sandlada.se", ["notebooks"], _ALL_VERBS),
        _rule("sandlada.se", ["notebooks/status"], _READ_VERBS),
        _rule("networking.k8s.io", ["networkpolicies"], _READ_VERBS),
    ]


def _admin_rules() -> list[Object]:
    # Tenant admins may also shape their own network policies and delegate inside the
    # namespace. No "bind"/"escalate" verbs: the apiserver's escalation check then stops a
    # binding to anything (cluster-admin included) that grants more than the admin holds.
    return [
        *_member_rules()[:-1],
        _rule("networking.k8s.io", ["networkpolicies"], _ALL_VERBS),
        _rule("rbac.authorization.k8s.io", ["roles", "rolebindings"], _ALL_VERBS),
    ]


def build_roles(spec: TenantSpec) -> list[Object]:
    """The admin and member Roles, valid only inside the tenant's namespace."""
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _metadata(spec, name),
            "rules": rules,
        }
        for name, rules in ((ADMIN_ROLE, _admin_rules()), (MEMBER_ROLE, _member_rules()))
    ]


def build_role_bindings(spec: TenantSpec) -> list[Object]:
    """Bind each Role to the tenant's identity group (``t-<slug>-admins`` / ``-members``)."""
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _metadata(spec, role),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [
                {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Group",
                    "name": tenant_group(spec.slug, group_role),
                }
            ],
        }
        for role, group_role in ((ADMIN_ROLE, "admin"), (MEMBER_ROLE, "member"))
    ]


def build_service_account(spec: TenantSpec) -> Object:
    """The identity notebook pods run as; it holds no permissions and mounts no token."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(spec, NOTEBOOK_SERVICE_ACCOUNT),
        "automountServiceAccountToken": False,
    }


def build_tenant_objects(spec: TenantSpec) -> TenantObjects:
    """Every object that makes up tenant ``spec.slug`` on the cluster."""
    return TenantObjects(
        namespace=build_namespace(spec),
        resource_quota=build_resource_quota(spec),
        limit_range=build_limit_range(spec),
        network_policies=build_network_policies(spec),
        roles=build_roles(spec),
        role_bindings=build_role_bindings(spec),
        service_account=build_service_account(spec),
    )


def build_mlflow_secret(slug: str, env: Mapping[str, str]) -> Object:
    """Secret ``mlflow-tracking`` in the tenant's namespace: its MLflow settings as variables.

    ``env`` is what notebook pods get with ``envFrom`` (``MLFLOW_TRACKING_URI``,
    ``MLFLOW_WORKSPACE``, ``MLFLOW_TRACKING_USERNAME``, ``MLFLOW_TRACKING_PASSWORD``); the
    operator's MLflow step derives it and adds the owner reference to the Tenant.
    """
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": MLFLOW_SECRET,
            "namespace": namespace_for(slug),
            "labels": standard_labels(slug),
        },
        "type": "Opaque",
        "stringData": dict(env),
    }
