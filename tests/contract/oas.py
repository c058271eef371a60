"""One OpenAPI file as the contract tests use it: operations found by method and a concrete path,
schemas with their $refs inlined, requests and answers validated.

Written for any vendor file in specs/ (the SFCC Orders file first): `OpenApiSpec(file,
base_path)` where `base_path` is the part of the server URL before the spec's paths
(`/checkout/orders/v1` for SCAPI Orders). A $ref met again inside itself (a recursive schema,
such as a product item's bundled items) becomes an empty schema: that depth is not checked.
"""

from __future__ import annotations

import json
import os
import re
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml
from openapi_schema_validator import OAS30Validator, oas30_format_checker


def specs_dir() -> Path:
    env = os.environ.get("COMMERCE_SYNC_SPECS_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "specs"


@lru_cache(maxsize=None)
def template_regex(template: str) -> re.Pattern:
    parts = re.split(r"(\{[^}/]+\})", template)
    return re.compile("^" + "".join("[^/]+" if p.startswith("{") and p.endswith("}") else re.escape(p) for p in parts) + "$")


class OpenApiSpec:
    def __init__(self, file_name: str, base_path: str = ""):
        self.file_name = file_name
        self.base_path = base_path.rstrip("/")

    @cached_property
    def doc(self) -> dict[str, Any]:
        path = specs_dir() / self.file_name
        with open(path, encoding="utf-8") as fh:
            if path.suffix == ".json":
                return json.load(fh)
            return yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))

    def _target(self, ref: str) -> Any:
        node: Any = self.doc
        for part in ref.lstrip("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def deref(self, node: Any, seen: tuple[str, ...] = ()) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/"):
                return {} if ref in seen else self.deref(self._target(ref), seen + (ref,))
            return {k: self.deref(v, seen) for k, v in node.items() if k not in ("example", "examples")}
        if isinstance(node, list):
            return [self.deref(v, seen) for v in node]
        return node

    def relative(self, path: str) -> str:
        """A request's path as the spec names it (the server's base path taken off)."""
        if self.base_path and path.startswith(self.base_path + "/"):
            return path[len(self.base_path):]
        return path

    def path_template(self, method: str, path: str) -> str:
        method, path = method.lower(), self.relative(path)
        paths = self.doc["paths"]
        if path in paths and method in paths[path]:
            return path
        candidates = [t for t, item in paths.items() if method in item and template_regex(t).match(path)]
        if not candidates:
            raise AssertionError(f"{method.upper()} {path} is not in {self.file_name}")
        return min(candidates, key=lambda t: (t.count("{"), t))  # literal segments win

    def operation(self, method: str, path: str) -> dict[str, Any]:
        return self.doc["paths"][self.path_template(method, path)][method.lower()]

    def parameters(self, method: str, path: str) -> list[dict[str, Any]]:
        return [self.deref(p) for p in self.operation(method, path).get("parameters", [])]

    def response_schema(self, method: str, path: str, status: int = 200, media_type: str = "application/json") -> dict[str, Any]:
        responses = self.operation(method, path)["responses"]
        if str(status) not in responses:
            raise AssertionError(f"{method.upper()} {path} declares no {status} response (it has {', '.join(responses)})")
        content = responses[str(status)].get("content") or {}
        if media_type not in content:
            raise AssertionError(f"{method.upper()} {path} {status} has no {media_type} body")
        return self.deref(content[media_type]["schema"])

    def declares_status(self, method: str, path: str, status: int) -> bool:
        return str(status) in self.operation(method, path)["responses"]

    def request_schema(self, method: str, path: str, media_type: str = "application/json") -> dict[str, Any] | None:
        body = self.operation(method, path).get("requestBody")
        if not body or media_type not in body.get("content", {}):
            return None
        return self.deref(body["content"][media_type]["schema"])

    @staticmethod
    def validate(instance: Any, schema: dict[str, Any]) -> list[str]:
        """Every problem of INSTANCE against SCHEMA, as 'json/path: message' strings."""
        validator = OAS30Validator(schema, format_checker=oas30_format_checker)
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)]

    def validate_request(self, method: str, url: str, json_body: Any = None) -> list[str]:
        """Problems with a request: unknown path, undeclared or missing query parameters, bad
        parameter values, a body the operation does not take or that breaks its schema."""
        parts = urlsplit(url)
        try:
            params = self.parameters(method, parts.path)
        except AssertionError as exc:
            return [str(exc)]
        sent = dict(parse_qsl(parts.query, keep_blank_values=True))
        query = {p["name"]: p for p in params if p.get("in") == "query"}
        problems = [f"query parameter {name!r} is not declared for {method.upper()} {parts.path}" for name in sent if name not in query]
        problems += [f"required query parameter {name!r} is missing" for name, p in query.items() if p.get("required") and name not in sent]
        for name, value in sent.items():
            if name in query:
                problems += [f"query {name}: {p}" for p in self.validate(_query_value(value, query[name]), query[name].get("schema") or {})]
        if json_body is not None:
            schema = self.request_schema(method, parts.path)
            if schema is None:
                problems.append(f"{method.upper()} {parts.path} takes no JSON body")
            else:
                problems += self.validate(json_body, schema)
        return problems


def _query_value(raw: str, param: dict[str, Any]) -> Any:
    """A query string value as its schema types it (form style, explode false: a,b,c is a list)."""
    schema = param.get("schema") or {}
    if schema.get("type") == "array":
        return raw.split(",") if raw else []
    if schema.get("type") == "integer":
        try:
            return int(raw)
        except ValueError:
            return raw
    return raw
