"""Checks against commercetools' OpenAPI file (specs/commercetools.openapi.yaml, 3 MB, OAS 3.0).

Loaded once per test session (about 5 s). Operations are found by method and a concrete path
matched against the path templates (`/shop/orders/abc` -> `/{projectKey}/orders/{ID}`; templates
with more literal text win, so `/shop/channels/key=erp` is `.../channels/key={key}`, not `{ID}`).

Validation uses the OAS 3.0 validator with $refs resolved through a registry holding the whole
file, plus the `discriminator` keyword, which plain JSON Schema ignores: an update action or an
error is checked against the schema its `action` / `code` names (OrderAddDeliveryAction...), so a
misspelt field in a known action is caught, and an unknown action is an error.

Known defects of the file, worked around here and nowhere else:
- RAML pattern properties came out as required property names: LocalizedString "requires" a
  key literally named `/^[a-z]{2}(-[A-Z]{2})?$/`, ErrorObject one named `//`. Such names are
  dropped from `required`; a `/^...$/` one becomes what it meant (every key must match it).
- Every error type declares `additionalProperties: {type: string}`, which would refuse the
  integer `currentVersion` of the ConcurrentModification error the same file defines: dropped
  from the error schemas.
- The auth API (`POST /oauth/token`) is not in the file; only its `tokenUrl` and the scope names
  are. Token requests are checked against those and RFC 6749 section 4.4.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml
from jsonschema import ValidationError
from jsonschema.validators import extend
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPEC_FILE = "commercetools.openapi.yaml"
URI = "urn:commercetools-api"
VAR_PARAM = re.compile(r"^var\.[a-zA-Z0-9]+$")


def specs_dir() -> Path:
    env = os.environ.get("COMMERCE_SYNC_SPECS_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "specs"


@lru_cache(maxsize=1)
def spec() -> dict[str, Any]:
    with open(specs_dir() / SPEC_FILE, encoding="utf-8") as fh:
        doc = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    schemas = doc["components"]["schemas"]
    errors = {ref.rsplit("/", 1)[-1] for ref in schemas["ErrorObject"]["discriminator"]["mapping"].values()} | {"ErrorObject"}
    for name in errors:
        for part in [schemas[name], *schemas[name].get("allOf", [])]:
            part.pop("additionalProperties", None)
    for node in _objects(schemas):
        patterns = [r for r in node.get("required") or [] if isinstance(r, str) and r.startswith("/") and r.endswith("/")]
        if patterns:
            node["required"] = [r for r in node["required"] if r not in patterns]
            if not node["required"]:
                del node["required"]
            for p in patterns:
                if p.startswith("/^") and p.endswith("$/"):
                    node.setdefault("patternProperties", {})[p[1:-1]] = node.get("additionalProperties") or {}
                    node["additionalProperties"] = False
    return doc


def _objects(node: Any):
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _objects(v)
    elif isinstance(node, list):
        for v in node:
            yield from _objects(v)


@lru_cache(maxsize=1)
def registry() -> Registry:
    return Registry().with_resource(URI, Resource.from_contents(spec(), default_specification=DRAFT4))


_ACTIVE: set[tuple[int, str]] = set()


def _discriminator(validator, disc, instance, schema):
    if not isinstance(instance, dict):
        return
    prop, mapping = disc.get("propertyName"), disc.get("mapping") or {}
    value = instance.get(prop)
    if value is None or not mapping:
        return
    ref = mapping.get(value)
    if ref is None:
        yield ValidationError(f"{prop} {value!r} is not one the spec knows here ({len(mapping)} kinds)")
        return
    key = (id(instance), ref)
    if key in _ACTIVE:  # the mapped schema's allOf names this base again: already inside it
        return
    _ACTIVE.add(key)
    try:
        yield from validator.descend(instance, {"$ref": URI + ref})
    finally:
        _ACTIVE.discard(key)


Validator = extend(OAS30Validator, {"discriminator": _discriminator})


def schema(name: str) -> dict[str, Any]:
    return {"$ref": f"{URI}#/components/schemas/{name}"}


def validate(instance: Any, against: dict[str, Any]) -> list[str]:
    """Every problem of INSTANCE against a schema (a $ref into the file, or inline)."""
    validator = Validator(against, registry=registry())
    return [f"{'/'.join(map(str, e.absolute_path)) or '.'}: {e.message}" for e in validator.iter_errors(instance)]


@lru_cache(maxsize=None)
def _template_regex(template: str) -> re.Pattern:
    parts = re.split(r"(\{[^}/]+\})", template)
    return re.compile("^" + "".join("[^/]+" if p.startswith("{") and p.endswith("}") else re.escape(p) for p in parts) + "$")


def path_template(method: str, path: str) -> str:
    method = method.lower()
    paths = spec()["paths"]
    if path in paths and method in paths[path]:
        return path
    candidates = [t for t, item in paths.items() if method in item and _template_regex(t).match(path)]
    if not candidates:
        raise AssertionError(f"{method.upper()} {path} is not in the commercetools spec")
    return max(candidates, key=lambda t: (len(re.sub(r"\{[^}]+\}", "", t)), t))  # the most literal text wins


def operation(method: str, path: str) -> dict[str, Any]:
    return spec()["paths"][path_template(method, path)][method.lower()]


def _ref_name(node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    return {"$ref": URI + ref} if isinstance(ref, str) and ref.startswith("#/") else node


def _response(responses: dict[str, Any], status: int) -> dict[str, Any] | None:
    entry = responses.get(str(status))
    if entry is None:
        return None
    if "$ref" in entry:
        node: Any = spec()
        for part in entry["$ref"].lstrip("#/").split("/"):
            node = node[part]
        entry = node
    return entry


def validate_request(method: str, url: str, body: Any = None) -> list[str]:
    """Problems with a request: unknown operation, undeclared query parameters or wrongly typed
    ones, a JSON body that does not fit the operation's request schema."""
    parts = urlsplit(url)
    try:
        op = operation(method, parts.path)
    except AssertionError as exc:
        return [str(exc)]
    declared = {p["name"]: p for p in op.get("parameters", []) if p.get("in") == "query"}
    problems = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        param = declared.get(name) or (declared.get("/^var[.][a-zA-Z0-9]+$/") if VAR_PARAM.match(name) else None)
        if param is None:
            problems.append(f"query parameter {name!r} is not declared for {method} {path_template(method, parts.path)}")
            continue
        kind = (param.get("schema") or {}).get("type")
        item_kind = ((param.get("schema") or {}).get("items") or {})
        if kind == "number" and not re.fullmatch(r"-?\d+(\.\d+)?", value):
            problems.append(f"query parameter {name}={value!r} is not a number")
        if kind == "boolean" and value not in ("true", "false"):
            problems.append(f"query parameter {name}={value!r} is not true or false")
        if kind == "array" and "$ref" in item_kind:
            problems += [f"query parameter {name}: {p}" for p in validate(value, _ref_name(item_kind))]
    content = (op.get("requestBody") or {}).get("content") or {}
    if body is not None:
        if "application/json" not in content:
            problems.append(f"{method} {parts.path} takes no JSON body")
        else:
            problems += validate(body, _ref_name(content["application/json"]["schema"]))
    elif "application/json" in content and method.upper() == "POST":
        problems.append(f"{method} {parts.path} needs a JSON body")
    return problems


def validate_response(method: str, path: str, status: int, body: Any) -> list[str]:
    """Problems with an answer: a status the operation does not declare, a body that does not fit
    its schema (an error status with no schema in the file is checked as ErrorResponse)."""
    try:
        op = operation(method, path)
    except AssertionError as exc:
        return [str(exc)]
    entry = _response(op.get("responses") or {}, status)
    if entry is None:
        return [f"{method} {path_template(method, path)} declares no {status} answer (it has {', '.join(op.get('responses') or {})})"]
    content = (entry.get("content") or {}).get("application/json")
    if content is None:
        return validate(body, schema("ErrorResponse")) if status >= 400 else []
    return validate(body, _ref_name(content["schema"]))


def token_url() -> str:
    return spec()["components"]["securitySchemes"]["oauth_2_0"]["flows"]["clientCredentials"]["tokenUrl"]


def scope_names() -> set[str]:
    """`view_orders`, `manage_products`... (the file writes them `<name>:{projectKey}`)."""
    scopes = spec()["components"]["securitySchemes"]["oauth_2_0"]["flows"]["clientCredentials"]["scopes"]
    return {s.split(":", 1)[0] for s in scopes}
