"""Sandbox, schema: the shipped OpenAPI file as JSON Schema validators (one body, a batch), and SIRO's
422 issue shapes (Zod's, with array indexes) made from their errors.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

SCHEMA_RESOURCE = "siro-openapi.yaml"


_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def _openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0 `nullable: true` -> JSON Schema `anyOf [null, ...]`, recursively."""
    if isinstance(node, list):
        return [_openapi_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _openapi_to_jsonschema(v) for k, v in node.items() if k not in {"nullable", "description"}}
    if node.get("nullable"):
        return {"anyOf": [{"type": "null"}, out]}
    return out


def validator_for(schema: str, *, array: bool = False) -> Draft202012Validator:
    """A validator for one of the shipped OpenAPI file's component schemas (or an array of it)."""
    text = resources.files("bulk_sync").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    components = _openapi_to_jsonschema(yaml.safe_load(text)["components"])
    checker = FormatChecker(formats=())
    checker.checks("date-time")(lambda v: not isinstance(v, str) or bool(_DATE_TIME.match(v)))
    ref = {"$ref": f"#/components/schemas/{schema}"}
    top = {"type": "array", "items": ref} if array else ref
    return Draft202012Validator({**top, "components": components}, format_checker=checker)


def load_validators() -> tuple[Draft202012Validator, Draft202012Validator]:
    """Validators for one engagement body and for a batch array, from the shipped OpenAPI file."""
    text = resources.files("bulk_sync").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    components = _openapi_to_jsonschema(yaml.safe_load(text)["components"])
    checker = FormatChecker(formats=())
    checker.checks("date-time")(lambda v: not isinstance(v, str) or bool(_DATE_TIME.match(v)))
    one = {"$ref": "#/components/schemas/EngagementSyncInput", "components": components}
    many = {
        "type": "array",
        "items": {"$ref": "#/components/schemas/EngagementSyncInput"},
        "components": components,
    }
    return (
        Draft202012Validator(one, format_checker=checker),
        Draft202012Validator(many, format_checker=checker),
    )


def zod_issues(errors: list[ValidationError]) -> list[dict[str, Any]]:
    """jsonschema errors -> Zod-style issues ({code, path, message, ...}) as SIRO answers them."""
    issues = []
    for err in errors:
        err = _innermost(err)
        path = list(err.absolute_path)
        if err.validator == "required":
            missing = [k for k in err.validator_value if k not in (err.instance or {})]
            for key in missing:
                issues.append(
                    {
                        "code": "invalid_type",
                        "expected": "string",
                        "received": "undefined",
                        "path": [*path, key],
                        "message": "Required",
                    }
                )
            continue
        if err.validator == "enum":
            options = " | ".join(f"'{v}'" for v in err.validator_value)
            issues.append(
                {
                    "code": "invalid_enum_value",
                    "path": path,
                    "message": f"Invalid enum value. Expected {options}, received '{err.instance}'",
                }
            )
        elif err.validator == "type":
            got = "null" if err.instance is None else type(err.instance).__name__
            issues.append(
                {
                    "code": "invalid_type",
                    "expected": str(err.validator_value),
                    "received": got,
                    "path": path,
                    "message": f"Expected {err.validator_value}, received {got}",
                }
            )
        elif err.validator == "format":
            issues.append(
                {
                    "code": "invalid_string",
                    "validation": "datetime",
                    "path": path,
                    "message": "Invalid datetime",
                }
            )
        else:
            issues.append({"code": "custom", "path": path, "message": err.message})
    return issues


def _innermost(err: ValidationError) -> ValidationError:
    """For `anyOf [null, X]`, the error of the X branch (what Zod would report)."""
    while err.validator == "anyOf" and err.context:
        branches = [e for e in err.context if e.schema != {"type": "null"}]
        if not branches:
            break
        err = min(branches, key=lambda e: len(e.relative_schema_path))
    return err
