"""The Tenant CustomResourceDefinition, generated from the pydantic models in `tenants.resource`.

pydantic emits JSON Schema (draft 2020-12 with ``$ref``/``anyOf``); the apiserver wants a
*structural* OpenAPI v3.0 schema. `openapi_schema` does that translation, so the models stay
the single source. The generated YAML is committed at `CRD_PATH` for Helm and ``kubectl``;
a unit test fails when it drifts from `tenant_crd`. Regenerate with ``python -m tenants.crd``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from tenants.labels import MANAGED_BY, MANAGED_BY_LABEL
from tenants.resource import GROUP, KIND, PLURAL, SINGULAR, VERSION, TenantSpec, TenantStatus

CRD_NAME = f"{PLURAL}.{GROUP}"
CRD_PATH = Path(__file__).parent / "crds" / f"{CRD_NAME}.yaml"

# JSON Schema keywords with no place in a structural schema (or only noise there).
# ``additionalProperties: false`` is forbidden next to ``properties``; pruning does its job.
_DROPPED = {"title", "$defs"}


def _convert(node: Any, defs: dict[str, Any]) -> Any:
    """Translate one JSON Schema node into structural OpenAPI v3.0."""
    if isinstance(node, list):
        return [_convert(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _convert(merged, defs)
    if "anyOf" in node:
        # Optional[X] arrives as anyOf [X, null]; OpenAPI v3.0 says nullable instead.
        options = [option for option in node["anyOf"] if option != {"type": "null"}]
        if len(options) != 1:
            raise ValueError(f"cannot express union in a structural schema: {node['anyOf']}")
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        merged = {**_convert(options[0], defs), **_convert(rest, defs)}
        merged["nullable"] = True
        return merged
    out: dict[str, Any] = {}
    for key, value in node.items():
        if (
            key in _DROPPED
            or (key == "default" and value is None)
            or (key == "additionalProperties" and value is False)
        ):
            continue
        if key == "properties":
            out[key] = {name: _convert(prop, defs) for name, prop in value.items()}
        elif key in {"items", "additionalProperties"} and isinstance(value, dict):
            out[key] = _convert(value, defs)
        elif key == "const":
            out["enum"] = [value]
        else:
            out[key] = value
    return out


def openapi_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3.0 schema of ``model`` as the wire (camelCase) sees it."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    converted: dict[str, Any] = _convert(schema, schema.get("$defs", {}))
    return converted


def tenant_crd() -> dict[str, Any]:
    """The CustomResourceDefinition of ``Tenant`` (cluster-scoped, status subresource)."""
    status = openapi_schema(TenantStatus)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME, "labels": {MANAGED_BY_LABEL: MANAGED_BY}},
        "spec": {
            "group": GROUP,
            "scope": "Cluster",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": ["tn"],
                "categories": ["sandlada"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                        {
                            "name": "GPUs",
                            "type": "integer",
                            "description": "GPUs granted",
                            "jsonPath": ".spec.quota.gpus",
                        },
                        {
                            "name": "Used",
                            "type": "integer",
                            "description": "GPUs requested by running pods",
                            "jsonPath": ".status.gpusUsed",
                        },
                        {
                            "name": "Age",
                            "type": "date",
                            "jsonPath": ".metadata.creationTimestamp",
                        },
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "An agency's isolated AI sandbox on the cluster.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": openapi_schema(TenantSpec),
                                "status": status,
                            },
                            "x-kubernetes-validations": [
                                {
                                    "rule": "self.metadata.name == self.spec.slug",
                                    "message": "metadata.name must equal spec.slug",
                                }
                            ],
                        }
                    },
                }
            ],
        },
    }


def render_crd() -> str:
    """`tenant_crd` as the YAML committed at `CRD_PATH`."""
    header = "# Generated by `python -m tenants.crd` from tenants/resource.py; do not edit.\n"
    return header + yaml.safe_dump(tenant_crd(), sort_keys=False, width=100, allow_unicode=True)


if __name__ == "__main__":
    CRD_PATH.parent.mkdir(exist_ok=True)
    CRD_PATH.write_text(render_crd())
