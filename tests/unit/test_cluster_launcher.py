"""The pure parts of the local cluster launcher: certificates, command lines, nodes, go.mod."""

from __future__ import annotations

import hashlib
import ipaddress
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from infra.cluster import gen_replaces, pki
from infra.cluster.config import (
    GO_DIR,
    GPU_PRODUCT_LABEL,
    GPU_RESOURCE,
    KUBE_SOURCES,
    ClusterConfig,
    NodePool,
    default_node_pools,
    kube_source_hash,
    parse_node_pools,
    read_versions,
)
from infra.cluster.render import (
    apiserver_args,
    controller_manager_args,
    etcd_args,
    kubeconfig,
    kwok_args,
    node_manifests,
)


@pytest.fixture(scope="module")
def ca() -> pki.KeyPair:
    return pki.make_ca()


def test_ca_is_a_ca_that_signs_only_leaves(ca: pki.KeyPair) -> None:
    constraints = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca is True
    assert constraints.path_length == 0
    assert ca.cert.subject == ca.cert.issuer


def test_serving_cert_covers_loopback_and_service_names(ca: pki.KeyPair) -> None:
    serving = pki.make_serving_cert(ca, ["localhost", "kubernetes.default.svc"], ["127.0.0.1"])
    serving.cert.verify_directly_issued_by(ca.cert)
    sans = serving.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "kubernetes.default.svc"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    usage = serving.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_client_cert_carries_user_in_cn_and_groups_in_o(ca: pki.KeyPair) -> None:
    admin = pki.make_client_cert(ca, "kubernetes-admin", ("system:masters", "ops"))
    admin.cert.verify_directly_issued_by(ca.cert)
    subject = admin.cert.subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "kubernetes-admin"
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
        "system:masters",
        "ops",
    ]
    usage = admin.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_keys_round_trip_through_pem(ca: pki.KeyPair, tmp_path: Path) -> None:
    cert_path, key_path = tmp_path / "ca.crt", tmp_path / "ca.key"
    cert_path.write_bytes(ca.cert_pem())
    pki.write_secret(key_path, ca.key_pem())
    assert key_path.stat().st_mode & 0o777 == 0o600
    loaded = pki.load_keypair(cert_path, key_path)
    assert loaded.cert == ca.cert
    assert pki.public_key_pem(loaded.key) == pki.public_key_pem(ca.key)


def test_kubeconfig_embeds_credentials() -> None:
    config = kubeconfig(
        server="https://127.0.0.1:16443",
        ca_pem=b"CA",
        cert_pem=b"CERT",
        key_pem=b"KEY",
        cluster="c",
        user="u",
    )
    assert config["clusters"][0]["cluster"] == {
        "server": "https://127.0.0.1:16443",
        "certificate-authority-data": "Q0E=",
    }
    assert config["users"][0]["user"]["client-key-data"] == "S0VZ"
    assert config["current-context"] == "c"


def test_apiserver_keeps_default_admission_and_uses_node_rbac() -> None:
    args = apiserver_args(ClusterConfig())
    assert "--authorization-mode=Node,RBAC" in args
    # Defaults include ResourceQuota, LimitRanger and PodSecurity; overriding them could drop one.
    assert not [a for a in args if "admission-plugins" in a]
    assert any(a.startswith("--service-account-signing-key-file=") for a in args)
    assert "--secure-port=16443" in args
    assert "--bind-address=127.0.0.1" in args


def test_controller_manager_signs_tokens_and_etcd_stays_on_loopback() -> None:
    config = ClusterConfig()
    cm = controller_manager_args(config)
    assert f"--service-account-private-key-file={config.pki_dir / 'sa.key'}" in cm
    assert "--use-service-account-credentials=true" in cm
    for arg in etcd_args(config):
        for url in re.findall(r"https?://[^,]+", arg):
            assert url.startswith("http://127.0.0.1:")


def test_kwok_manages_only_annotated_nodes(tmp_path: Path) -> None:
    args = kwok_args(ClusterConfig(), [tmp_path / "stages.yaml"])
    assert "--manage-all-nodes=false" in args
    assert "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake" in args


def test_default_nodes_are_four_gpu_nodes_with_eight_gpus_and_two_cpu_nodes() -> None:
    nodes = node_manifests(default_node_pools())
    gpu_nodes = [n for n in nodes if GPU_RESOURCE in n["status"]["capacity"]]
    cpu_nodes = [n for n in nodes if GPU_RESOURCE not in n["status"]["capacity"]]
    assert len(gpu_nodes) == 4
    assert len(cpu_nodes) == 2
    assert {n["status"]["allocatable"][GPU_RESOURCE] for n in gpu_nodes} == {"8"}
    products = sorted(n["metadata"]["labels"][GPU_PRODUCT_LABEL] for n in gpu_nodes)
    assert products == ["NVIDIA-A100-SXM4-80GB"] * 2 + ["NVIDIA-L4"] * 2
    assert all(GPU_PRODUCT_LABEL not in n["metadata"]["labels"] for n in cpu_nodes)
    assert all(n["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake" for n in nodes)
    assert len({n["metadata"]["name"] for n in nodes}) == 6


def test_node_pools_parse_from_the_environment_syntax() -> None:
    pools = parse_node_pools("h100=1:4:NVIDIA-H100-80GB-HBM3, cpu=3")
    assert pools[0] == NodePool(
        name="h100", count=1, cpu="64", memory="512Gi", gpus=4, gpu_product="NVIDIA-H100-80GB-HBM3"
    )
    assert pools[1].gpus == 0
    assert pools[1].node_names() == ["kwok-cpu-0", "kwok-cpu-1", "kwok-cpu-2"]


@pytest.mark.parametrize("spec", ["gpu=2:8", "Bad=1", "a=1,a=2", "cpu"])
def test_bad_node_pool_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="node pool"):
        parse_node_pools(spec)


def test_kube_source_hash_is_sha256_of_the_sources_concatenated() -> None:
    # The setup script keys the cache with `cat go.mod go.sum main.go | sha256sum`.
    data = b"".join((GO_DIR / name).read_bytes() for name in KUBE_SOURCES)
    assert kube_source_hash() == hashlib.sha256(data).hexdigest()[:12]


def test_replaces_are_derived_from_the_kubernetes_mod_file() -> None:
    mod = (
        "module k8s.io/kubernetes\nrequire k8s.io/api v0.0.0\nreplace (\n"
        "\tk8s.io/api => ./staging/src/k8s.io/api\n"
        "\tk8s.io/client-go => ./staging/src/k8s.io/client-go\n"
        "\tgithub.com/x/y => github.com/x/y v1.0.0\n)\n"
    )
    modules = gen_replaces.staging_modules(mod)
    assert modules == ["k8s.io/api", "k8s.io/client-go"]
    block = gen_replaces.render_block(modules, gen_replaces.staging_version("v1.36.3"))
    assert "\tk8s.io/api => k8s.io/api v0.36.3\n" in block
    once = gen_replaces.splice("module m\n", block)
    assert gen_replaces.splice(once, block) == once


def test_committed_go_mod_matches_versions_env() -> None:
    go_mod = (GO_DIR / "go.mod").read_text()
    version = read_versions()["KUBERNETES_VERSION"]
    assert re.search(rf"^\s*k8s\.io/kubernetes {re.escape(version)}$", go_mod, re.MULTILINE)
    staging = gen_replaces.staging_version(version)
    replaces = re.findall(r"^\t(k8s\.io/\S+) => \1 (\S+)$", go_mod, re.MULTILINE)
    assert len(replaces) > 20
    assert {v for _, v in replaces} == {staging}
