"""Validates custom resources against their CustomResourceDefinition's schema, refusing fields the
schema does not define, as ``kubernetes-validate --strict`` does for built-in kinds.

A CRD's ``openAPIV3Schema`` is close to JSON Schema, with three differences handled here:

- An object that lists ``properties`` takes others silently in JSON Schema; Kubernetes prunes
  them (drops them without a word, so a misspelt field is lost, not refused). Here such an object
  gets ``additionalProperties: false``: an unknown field fails, naming itself.
- ``x-kubernetes-preserve-unknown-fields: true`` marks a node that keeps whatever it is given
  (KServe's ``status``); it is left open, as Kubernetes leaves it, and ``unchecked`` lists every
  field of a manifest that falls under such a node, so that nothing relies on it unseen.
- ``nullable: true`` admits null; ``x-kubernetes-int-or-string`` arrives with its own ``anyOf``;
  the other ``x-kubernetes-*`` markers (list and map types) state merge behaviour, not validity.
  Any other ``x-kubernetes-*`` marker fails loudly: a feature this check does not understand.

``metadata`` is only ``type: object`` in a CRD (the API server checks ObjectMeta itself), so it is
checked here against Kubernetes' own ObjectMeta schema, strict, from kubernetes-validate's files.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource

# The markers that state how lists and maps merge, not what is valid.
MERGE_MARKERS = {
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-int-or-string",
}
PRESERVE = "x-kubernetes-preserve-unknown-fields"
KUBERNETES_SCHEMAS = "kubernetes-json-schema/v1.37.0-local-strict"

Schema = dict[str, Any]


def load_crds(directory: Path) -> dict[tuple[str, str], Schema]:
    """(apiVersion, kind) -> its served openAPIV3Schema, for every CRD in ``directory``."""
    found = {}
    for path in sorted(directory.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            for version in spec["versions"]:
                if version.get("served", False):
                    api_version = f"{spec['group']}/{version['name']}"
                    found[api_version, spec["names"]["kind"]] = version["schema"]["openAPIV3Schema"]
    return found


def strict(node: Any) -> Any:
    """The schema with unknown fields refused wherever Kubernetes would not keep them."""
    if isinstance(node, list):
        return [strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    unknown = {key for key in node if key.startswith("x-kubernetes-")} - MERGE_MARKERS - {PRESERVE}
    if unknown:
        raise ValueError(f"the schema uses {sorted(unknown)}, which this check does not handle")
    result = {key: strict(value) for key, value in node.items()}
    if result.get("nullable"):
        kinds = result.get("type")
        result["type"] = [kinds, "null"] if isinstance(kinds, str) else kinds
    if "properties" in result and "additionalProperties" not in result and not node.get(PRESERVE):
        result["additionalProperties"] = False
    return result


def _object_meta() -> tuple[Schema, Registry]:
    files = resources.files("kubernetes_validate").joinpath(KUBERNETES_SCHEMAS)
    schema = json.loads(files.joinpath("objectmeta-meta-v1.json").read_text())
    definitions = json.loads(files.joinpath("_definitions.json").read_text())
    registry: Registry = Resource.from_contents(schema) @ Registry()
    return schema, Resource.from_contents(definitions) @ registry


def problems(manifest: dict[str, Any], crds: dict[tuple[str, str], Schema]) -> list[str]:
    """Every way ``manifest`` fails its CRD's schema; empty when it is valid."""
    key = (manifest.get("apiVersion", ""), manifest.get("kind", ""))
    if key not in crds:
        served = ", ".join(f"{kind} {api}" for api, kind in sorted(crds))
        return [f"{key[1]} {key[0]} is no kind the CRDs serve ({served})"]
    found = [
        f"{'.'.join(str(part) for part in error.absolute_path) or '(top)'}: {error.message}"
        for error in jsonschema.Draft7Validator(strict(crds[key])).iter_errors(manifest)
    ]
    meta_schema, registry = _object_meta()
    validator = jsonschema.Draft202012Validator(meta_schema, registry=registry)
    found += [
        f"metadata.{'.'.join(str(part) for part in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(manifest.get("metadata", {}))
    ]
    return sorted(found)


def unchecked(manifest: Any, schema: Schema, path: str = "") -> Iterator[str]:
    """Paths of ``manifest`` that fall under a node keeping unknown fields unvalidated."""
    if isinstance(manifest, dict) and isinstance(schema, dict):
        properties = schema.get("properties", {})
        for name, value in manifest.items():
            where = f"{path}.{name}" if path else name
            if name in properties:
                yield from unchecked(value, properties[name], where)
            elif schema.get(PRESERVE):
                yield where
            elif isinstance(schema.get("additionalProperties"), dict):
                yield from unchecked(value, schema["additionalProperties"], where)
    elif isinstance(manifest, list) and isinstance(schema, dict) and "items" in schema:
        for index, item in enumerate(manifest):
            yield from unchecked(item, schema["items"], f"{path}[{index}]")
