"""The notebook profiles catalogue and the Notebook resource models, CRD and body."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic import ValidationError

from tenants.catalog import Catalog, Profile, load_catalog
from tenants.notebook import (
    CRD_PATH,
    Notebook,
    NotebookSpec,
    internal_url,
    notebook_body,
    notebook_crd,
    render_crd,
)

# The GPU models of the local cluster's kwok nodes (infra/cluster/config.py).
CLUSTER_GPU_MODELS = {"NVIDIA-A100-SXM4-80GB", "NVIDIA-L4"}


def _profile(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "slug": "p",
        "display_name": {"sv": "Namn", "en": "Name"},
        "description": {"sv": "Text", "en": "Text"},
        "image": "quay.io/jupyter/scipy-notebook:python-3.12",
        "cpu": 1,
        "memory_gib": 2,
        "storage_gib": 5,
    }
    return {**base, **changes}


def test_packaged_catalogue_offers_cpu_small_gpu_and_large_gpu() -> None:
    catalog = load_catalog()
    cpu_only = [p for p in catalog.profiles if p.gpus == 0]
    gpu = [p for p in catalog.profiles if p.gpus > 0]
    assert cpu_only, "no CPU-only profile"
    assert {p.gpu_model for p in gpu} == CLUSTER_GPU_MODELS
    for profile in catalog.profiles:
        assert profile.display_name["sv"] != profile.display_name["en"] or profile.gpus
        assert profile.description["sv"] and profile.description["en"]
    assert catalog.defaults.idle_timeout_seconds < catalog.defaults.max_age_seconds


def test_every_profile_makes_a_valid_notebook_spec() -> None:
    catalog = load_catalog()
    for profile in catalog.profiles:
        body = notebook_body("t-kiruna", "nb1", profile, "sub-1", "Anna", catalog.defaults)
        spec = NotebookSpec.model_validate(body["spec"])
        assert (spec.gpus, spec.gpu_model, spec.cpu) == (
            profile.gpus,
            profile.gpu_model,
            profile.cpu,
        )


def test_get_by_slug() -> None:
    catalog = load_catalog()
    assert catalog.get("gpu-l4") is not None
    assert catalog.get("gpu-l4").gpu_model == "NVIDIA-L4"  # type: ignore[union-attr]
    assert catalog.get("no-such-profile") is None


def test_load_catalog_from_another_file(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "defaults": {"idle_timeout_seconds": 600, "max_age_seconds": 3600},
                "profiles": [_profile(slug="only-one")],
            }
        )
    )
    catalog = load_catalog(path)
    assert [p.slug for p in catalog.profiles] == ["only-one"]
    assert catalog.defaults.idle_timeout_seconds == 600


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"display_name": {"sv": "Bara svenska"}}, "en"),
        ({"description": {"en": "English only"}}, "sv"),
        ({"gpus": 1}, "gpu_model is required"),
        ({"gpu_model": "NVIDIA-L4"}, "without gpus"),
        ({"allowed_tiers": ["secret"]}, "unknown tiers"),
        ({"slug": "Not A Slug"}, "DNS-1123"),
        ({"gpus": 1, "gpu_model": "X", "gpu_resource": "amd.com/gpu"}, "gpu_resource"),
    ],
)
def test_bad_profiles_are_refused(changes: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        Profile.model_validate(_profile(**changes))


def test_duplicate_slugs_are_refused() -> None:
    with pytest.raises(ValidationError, match="duplicate"):
        Catalog.model_validate(
            {
                "defaults": {"idle_timeout_seconds": 600, "max_age_seconds": 3600},
                "profiles": [_profile(), _profile()],
            }
        )


def test_allowed_tiers_and_groups() -> None:
    open_to_all = Profile.model_validate(_profile())
    restricted = Profile.model_validate(
        _profile(allowed_tiers=["confidential"], allowed_groups=["t-x-admins"])
    )
    assert open_to_all.allows("public")
    assert not restricted.allows("public", {"t-x-admins"})
    assert not restricted.allows("confidential", {"t-x-members"})
    assert restricted.allows("confidential", {"t-x-admins"})


def test_committed_notebook_crd_is_generated_from_the_models() -> None:
    # Fails when the models changed without `python -m tenants.notebook` being rerun.
    assert CRD_PATH.read_text() == render_crd()


def test_notebook_crd_is_valid_and_structural() -> None:
    kubernetes_validate.validate(notebook_crd(), "1.36.0", strict=True)
    text = yaml.safe_dump(notebook_crd())
    for keyword in ("$ref", "anyOf", "$defs", "title:", "const:", "exclusiveMinimum"):
        assert keyword not in text
    version = notebook_crd()["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert {"Phase", "Profile", "Age"} <= set(columns)


def test_notebook_body_round_trips_and_labels() -> None:
    catalog = load_catalog()
    profile = catalog.get("gpu-a100")
    assert profile is not None
    body = notebook_body("t-kiruna", "analys", profile, "sub-1", "Anna A", catalog.defaults)
    assert body["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "sandlada",
        "sandlada.se/tenant": "kiruna",
        "sandlada.se/notebook": "analys",
    }
    notebook = Notebook.model_validate(body)
    assert notebook.spec.gpu_resource == "nvidia.com/gpu"
    assert notebook.spec.stopped is False
    assert notebook.spec.max_age_seconds == catalog.defaults.max_age_seconds
    assert internal_url("t-kiruna", "analys") == (
        "http://nb-analys.t-kiruna.svc:8888/notebooks/t-kiruna/analys/"
    )


@pytest.mark.parametrize("name", ["1starts-with-digit", "Upper", "x" * 41, "under_score", ""])
def test_bad_notebook_names_are_refused(name: str) -> None:
    catalog = load_catalog()
    with pytest.raises(ValueError, match="notebook name"):
        notebook_body("t-kiruna", name, catalog.profiles[0], "sub", "", catalog.defaults)


def test_notebook_body_needs_a_tenant_namespace() -> None:
    catalog = load_catalog()
    with pytest.raises(ValueError, match="tenant namespace"):
        notebook_body("default", "nb", catalog.profiles[0], "sub", "", catalog.defaults)
