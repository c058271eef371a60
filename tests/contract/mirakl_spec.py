"""Checks against Mirakl's seller OpenAPI file (specs/mirakl-mmp-seller.openapi.json).

The file is OAS 3.1 (2.6 MB, JSON). Operations are found by method and a concrete path matched
against the path templates (`/api/orders/OR-1/accept` -> `/api/orders/{order_id}/accept`,
literal segments winning over parameters). Schemas are returned with their $refs inlined (a
$ref met again inside itself stays a $ref, made absolute, and the validator resolves it through
a `referencing` registry holding the whole file), so tests can walk into them
(`["properties"]["orders"]["items"]`). Validation is the OAS 3.1 validator with format checks
(date-time, int32, ...).

The spec describes paging only in prose (its shared pagination section is not inlined): the
parameters `max`, `offset`, `paginate`, `sort`, `order`, `limit`, `page_token` are accepted on
every operation. It declares no error bodies at all: ERROR_SCHEMA is Mirakl's documented
`{"status", "message"}` error format, our assumption.
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from openapi_schema_validator import OAS31Validator, oas31_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_FILE = "mirakl-mmp-seller.openapi.json"
SPEC_URI = "urn:mirakl-mmp-seller"
PAGING_PARAMS = {"max", "offset", "paginate", "sort", "order", "limit", "page_token"}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"status": {"type": "integer"}, "message": {"type": "string"}},
    "required": ["status", "message"],
}


def specs_dir() -> Path:
    env = os.environ.get("COMMERCE_SYNC_SPECS_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "specs"


@lru_cache(maxsize=1)
def spec() -> dict[str, Any]:
    with open(specs_dir() / SPEC_FILE, encoding="utf-8") as fh:
        return json.load(fh)


@lru_cache(maxsize=1)
def registry() -> Registry:
    return Registry().with_resource(SPEC_URI, Resource.from_contents(spec(), default_specification=DRAFT202012))


def _target(ref: str) -> Any:
    node: Any = spec()
    for part in ref.lstrip("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _deref(node: Any, seen: tuple[str, ...] = ()) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            if ref in seen:  # a recursive schema: leave the reference for the registry
                return {"$ref": SPEC_URI + ref}
            return _deref(_target(ref), seen + (ref,))
        return {k: _deref(v, seen) for k, v in node.items() if k not in ("example", "examples")}
    if isinstance(node, list):
        return [_deref(v, seen) for v in node]
    return node


@lru_cache(maxsize=None)
def _template_regex(template: str) -> re.Pattern:
    parts = re.split(r"(\{[^}/]+\})", template)
    return re.compile("^" + "".join("[^/]+" if p.startswith("{") and p.endswith("}") else re.escape(p) for p in parts) + "$")


def path_template(method: str, path: str) -> str:
    """The spec's path template for METHOD and a concrete (or template) path."""
    method = method.lower()
    paths = spec()["paths"]
    if path in paths and method in paths[path]:
        return path
    candidates = [t for t, item in paths.items() if method in item and _template_regex(t).match(path)]
    if not candidates:
        raise AssertionError(f"{method.upper()} {path} is not in the Mirakl seller spec")
    return min(candidates, key=lambda t: (t.count("{"), t))  # literal segments win


def operation(method: str, path: str) -> dict[str, Any]:
    return spec()["paths"][path_template(method, path)][method.lower()]


def declared_query_params(method: str, path: str) -> set[str]:
    return {p["name"] for p in operation(method, path).get("parameters", []) if p.get("in") == "query"}


def response_schema(method: str, path: str, status: int = 200, media_type: str = "application/json") -> dict[str, Any]:
    responses = operation(method, path)["responses"]
    if str(status) not in responses:
        raise AssertionError(f"{method.upper()} {path} declares no {status} response (it has {', '.join(responses)})")
    content = responses[str(status)].get("content") or {}
    if media_type not in content:
        raise AssertionError(f"{method.upper()} {path} {status} has no {media_type} body")
    return _deref(content[media_type]["schema"])


def request_schema(method: str, path: str, media_type: str = "application/json") -> dict[str, Any] | None:
    body = operation(method, path).get("requestBody")
    if not body or media_type not in body.get("content", {}):
        return None
    return _deref(body["content"][media_type]["schema"])


def validate(instance: Any, schema: dict[str, Any]) -> list[str]:
    """Every problem of INSTANCE against SCHEMA, as 'json/path: message' strings."""
    validator = OAS31Validator(schema, registry=registry(), format_checker=oas31_format_checker)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)]


def validate_error(instance: Any) -> list[str]:
    return validate(instance, ERROR_SCHEMA)


def validate_mirakl_request(method: str, url: str, json_body: Any = None) -> list[str]:
    """Problems with a request: unknown path, undeclared query parameters, body shape."""
    parts = urlsplit(url)
    try:
        declared = declared_query_params(method, parts.path) | PAGING_PARAMS
    except AssertionError as exc:
        return [str(exc)]
    problems = [f"query parameter {name!r} is not declared for {method.upper()} {parts.path}"
                for name, _ in parse_qsl(parts.query, keep_blank_values=True) if name not in declared]
    if json_body is not None:
        schema = request_schema(method, parts.path)
        if schema is None:
            problems.append(f"{method.upper()} {parts.path} takes no JSON body")
        else:
            problems += validate(json_body, schema)
    return problems
