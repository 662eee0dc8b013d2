"""Render docs/api.md from the OpenAPI document the API serves (GET /api/openapi.json).

    .venv/bin/python docs/generate_api_md.py           # rewrite docs/api.md
    .venv/bin/python docs/generate_api_md.py --check   # exit 1 when docs/api.md is stale

The reference is generated, never edited by hand: ``chalicelib.api.openapi`` builds the
document from the request/response models, and this script only formats it.
tests/unit/test_docs.py fails when docs/api.md differs from what this script renders.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

API_MD = ROOT / "docs" / "api.md"
REF_PREFIX = "#/components/schemas/"
METHOD_ORDER = {"get": 0, "post": 1, "put": 2, "patch": 3, "delete": 4}
TAG_TITLES = {
    "system": "System",
    "auth": "Authentication",
    "datasets": "Datasets",
    "conversations": "Conversations",
    "generation": "Generation and jobs",
    "templates": "Prompt templates",
    "export": "Export",
    "audit": "Audit",
    "notifications": "Notifications",
}
# What each status means across the API (the ``code`` values come from
# chalicelib/domain/errors.py; a route lists the statuses it can answer).
STATUS_MEANINGS = {
    "400": "`validation_error` / `bad_request`: malformed JSON, unknown field, bad value",
    "401": "`unauthorized`: no or invalid token (when `AUTH_MODE=cognito`)",
    "404": "`not_found`: unknown id, or an id that belongs to another tenant",
    "409": "`conflict`, `stale_version` (optimistic lock) or `over_budget` (send `confirm: true`)",
    "413": "`payload_too_large`: body over `MAX_BODY_BYTES` (chunk imports: 5x)",
    "422": "`unprocessable`: valid request that cannot be carried out",
    "429": "`rate_limited`: per-tenant route limit or active-job limit; see `Retry-After`",
}


def _name(ref: str) -> str:
    return ref[len(REF_PREFIX) :] if ref.startswith(REF_PREFIX) else ref


def _anchor(name: str) -> str:
    return f"schema-{name.lower()}"


class Renderer:
    def __init__(self, document: dict[str, Any]) -> None:
        self.doc = document
        self.schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})
        self.used: set[str] = set()
        # Response objects shared by several routes are described once, under Schemas.
        counts: dict[str, int] = {}
        for ops in document.get("paths", {}).values():
            for op in ops.values():
                for spec in op.get("responses", {}).values():
                    ref = spec.get("content", {}).get("application/json", {}).get("schema", {})
                    if "$ref" in ref:
                        counts[_name(ref["$ref"])] = counts.get(_name(ref["$ref"]), 0) + 1
        self.shared = {n for n, c in counts.items() if c > 1 and n != "ErrorResponse"}

    # ------------------------------------------------------------------ types
    def _is_enum(self, name: str) -> bool:
        return "enum" in self.schemas.get(name, {})

    def type_of(self, schema: dict[str, Any]) -> str:
        """A short, readable type: `string`, `array of Turn`, `one of a, b`, `X or null`."""
        if "$ref" in schema:
            name = _name(schema["$ref"])
            if self._is_enum(name):
                return self.type_of(self.schemas[name])
            self._use(name)
            return f"[{name}](#{_anchor(name)})"
        if "anyOf" in schema:
            options = [o for o in schema["anyOf"] if o.get("type") != "null"]
            nullable = len(options) < len(schema["anyOf"])
            text = " or ".join(self.type_of(o) for o in options) or "null"
            return f"{text} or null" if nullable else text
        if "allOf" in schema and len(schema["allOf"]) == 1:
            return self.type_of(schema["allOf"][0])
        if "enum" in schema:
            return "one of " + ", ".join(f"`{v}`" for v in schema["enum"])
        kind = schema.get("type")
        if kind == "array":
            return f"array of {self.type_of(schema.get('items', {}))}"
        if kind == "object":
            extra = schema.get("additionalProperties")
            keys = schema.get("propertyNames", {}).get("enum")
            if isinstance(extra, dict) and extra:
                key = " \\| ".join(f"`{k}`" for k in keys) if keys else "string"
                return f"map of {key} to {self.type_of(extra)}"
            return "object"
        if kind == "string" and schema.get("format") == "date-time":
            return "string (date-time)"
        if isinstance(kind, list):
            return " or ".join(str(k) for k in kind)
        return str(kind or "any")

    def _use(self, name: str) -> None:
        if name in self.used or name not in self.schemas:
            return
        self.used.add(name)
        for prop in self.schemas[name].get("properties", {}).values():
            self.type_of(prop)  # marks nested schemas as used

    @staticmethod
    def constraints(schema: dict[str, Any]) -> str:
        parts: list[str] = []
        flat = [schema, *[o for o in schema.get("anyOf", []) if o.get("type") != "null"]]
        for s in flat:
            for key, label in (
                ("minLength", "min length"),
                ("maxLength", "max length"),
                ("minItems", "min items"),
                ("maxItems", "max items"),
                ("minimum", ">="),
                ("maximum", "<="),
                ("exclusiveMinimum", ">"),
                ("exclusiveMaximum", "<"),
            ):
                if key in s:
                    parts.append(f"{label} {s[key]}")
            if "pattern" in s:
                parts.append("pattern `" + str(s["pattern"]).replace("|", "\\|") + "`")
        if "default" in schema and schema["default"] is not None:
            default = schema["default"]
            shown = str(default).lower() if isinstance(default, bool) else default
            parts.append(f"default `{shown}`")
        description = schema.get("description")
        if description:
            parts.append(str(description))
        return "; ".join(parts)

    def fields_table(self, schema: dict[str, Any], with_required: bool) -> list[str]:
        if "$ref" in schema:
            schema = self.schemas.get(_name(schema["$ref"]), {})
        props: dict[str, Any] = schema.get("properties", {})
        if not props:
            return [f"Body: {self.type_of(schema)} (free-form)."]
        required = set(schema.get("required", []))
        if with_required:
            lines = ["| field | type | required | notes |", "|---|---|---|---|"]
        else:
            lines = ["| field | type | notes |", "|---|---|---|"]
        for name, prop in props.items():
            cells = [f"`{name}`", self.type_of(prop)]
            if with_required:
                cells.append("yes" if name in required else "no")
            cells.append(self.constraints(prop))
            lines.append("| " + " | ".join(c.replace("\n", " ") for c in cells) + " |")
        return lines

    # ------------------------------------------------------------------ routes
    def parameters(self, op: dict[str, Any]) -> list[str]:
        params = op.get("parameters") or []
        if not params:
            return []
        lines = [
            "Parameters:",
            "",
            "| name | in | type | required | notes |",
            "|---|---|---|---|---|",
        ]
        for p in params:
            schema = p.get("schema", {})
            kind = self.type_of(schema)
            note = self.constraints(schema)
            if schema.get("type") == "array" and p.get("in") == "query":
                note = "repeatable (`?x=a&x=b`: OR within a dimension)" + (
                    f"; {note}" if note else ""
                )
            required = "yes" if p.get("required") else "no"
            lines.append(f"| `{p['name']}` | {p['in']} | {kind} | {required} | {note} |")
        return [*lines, ""]

    def request(self, op: dict[str, Any]) -> list[str]:
        body = op.get("requestBody")
        if not body:
            return []
        content: dict[str, Any] = body.get("content", {})
        lines: list[str] = []
        if list(content) == ["application/json"] and "$ref" in content["application/json"].get(
            "schema", {}
        ):
            name = _name(content["application/json"]["schema"]["$ref"])
            optional = "" if body.get("required", True) else "optional; "
            lines += [
                f"Request body ({optional}`application/json`, {name}; unknown fields are a 400):",
                "",
            ]
            lines += self.fields_table(content["application/json"]["schema"], with_required=True)
        else:
            lines += ["Request body:", ""]
            for media, spec in content.items():
                lines.append(f"- `{media}`: {self.type_of(spec.get('schema', {}))}")
        return [*lines, ""]

    def responses(self, op: dict[str, Any]) -> list[str]:
        lines: list[str] = []
        errors: list[str] = []
        for status, spec in sorted(op.get("responses", {}).items()):
            if status.startswith(("4", "5")):
                errors.append(status)
                continue
            schema = spec.get("content", {}).get("application/json", {}).get("schema")
            if schema is None:
                lines += [f"Response `{status}`: no body.", ""]
                continue
            name = _name(schema.get("$ref", "")) or "object"
            if name in self.shared:
                lines += [
                    f"Response `{status}`: {self.type_of(schema)} (fields under Schemas).",
                    "",
                ]
                continue
            lines += [f"Response `{status}` ({name}):", ""]
            lines += self.fields_table(schema, with_required=False)
            lines.append("")
        if errors:
            lines += ["Errors: " + ", ".join(f"`{e}`" for e in errors), ""]
        return lines

    # ------------------------------------------------------------------ document
    def render(self) -> str:
        info = self.doc.get("info", {})
        out: list[str] = [
            "# API reference",
            "",
            "<!-- Generated by docs/generate_api_md.py from chalicelib.api.openapi."
            " Do not edit by hand: run `.venv/bin/python docs/generate_api_md.py`. -->",
            "",
            f"{info.get('title', 'API')} {info.get('version', '')}. {info.get('description', '')}",
            "",
            "- Every route is under `/api`, takes and returns JSON, and acts for the caller's "
            "tenant only (taken from the token; see [security.md](security.md)).",
            "- The machine-readable document: `GET /api/openapi.json` (OpenAPI "
            f"{self.doc.get('openapi', '')}).",
            "- Authentication: `Authorization: Bearer <ID token>`, a Cognito ID token (for "
            "example from `POST /api/auth/login`); routes marked *No sign-in needed* are open. "
            "With `AUTH_MODE=none` (single-user local mode) every caller is the default tenant.",
            '- Errors: `{"error": {"code", "message", "details"}}`. Lists: '
            '`{"items": [...], "total": N, "next_cursor": ...}`.',
            "",
            "| status | meaning |",
            "|---|---|",
            *[f"| {k} | {v} |" for k, v in STATUS_MEANINGS.items()],
            "",
        ]
        routes: list[tuple[str, str, str, dict[str, Any]]] = []
        for path, ops in self.doc.get("paths", {}).items():
            for method, op in ops.items():
                tag = (op.get("tags") or ["other"])[0]
                routes.append((tag, path, method, op))
        tags = [t for t in TAG_TITLES if any(r[0] == t for r in routes)]
        tags += sorted({r[0] for r in routes} - set(tags))
        out += ["## Routes", ""]
        for tag in tags:
            title = TAG_TITLES.get(tag, tag.title())
            anchor = title.lower().replace(" ", "-")
            out.append(f"- [{title}](#{anchor})")
            for _, path, method, op in (r for r in routes if r[0] == tag):
                out.append(f"  - `{method.upper()} {path}`: {op.get('summary', '')}")
        out.append("")
        for tag in tags:
            out += [f"## {TAG_TITLES.get(tag, tag.title())}", ""]
            for _, path, method, op in (r for r in routes if r[0] == tag):
                out += [f"### `{method.upper()} {path}`", "", op.get("summary", ""), ""]
                if op.get("security") == []:
                    out += ["*No sign-in needed.*", ""]
                out += self.parameters(op)
                out += self.request(op)
                out += self.responses(op)
        out += [
            "## Schemas",
            "",
            "Objects referenced above (response objects may carry more fields later; "
            "clients should ignore fields they do not know).",
            "",
        ]
        # Nested references are marked by ``_use``; loop in case a table adds one.
        done: set[str] = set()
        while pending := sorted(self.used - done):
            for name in pending:
                done.add(name)
                schema = self.schemas[name]
                out += [f'<a id="{_anchor(name)}"></a>', f"### {name}", ""]
                if schema.get("description"):
                    out += [" ".join(str(schema["description"]).split()), ""]
                out += self.fields_table(schema, with_required=True)
                out.append("")
        return "\n".join(out).rstrip() + "\n"


def render() -> str:
    from chalicelib.api.openapi import openapi_document

    return Renderer(openapi_document()).render()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in args:
        if not API_MD.exists() or API_MD.read_text() != text:
            print("docs/api.md is out of date: run python docs/generate_api_md.py", file=sys.stderr)
            return 1
        return 0
    API_MD.write_text(text)
    print(f"wrote {API_MD}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
