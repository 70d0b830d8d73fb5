"""Where every system's published JSON Schemas live, how a pydantic model becomes one, and
how a document is checked against it.

Each system keeps its own contract module (`shared.crawler.contracts`, `shared.trades.contracts`,
`shared.stats.contracts`) holding its models; their files all go to `schemas/`, named by the
last segment of their URI, so that one constant (`DATASCHEMA_BASE`) says where they are served.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from pydantic import BaseModel

from shared.errors import BadMessage

DATASCHEMA_BASE = "https://price-crawler.example/schemas/"
SCHEMAS_DIR = Path(__file__).resolve().parents[1] / "schemas"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_file(uri: str) -> Path:
    """The file in `schemas/` of a dataschema URI."""
    return SCHEMAS_DIR / uri.rsplit("/", 1)[-1]


def model_schema(uri: str, model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema published at `uri`, as `model` generates it."""
    return {"$schema": JSON_SCHEMA_DIALECT, "$id": uri, **model.model_json_schema()}


def schema_text(uri: str, model: type[BaseModel]) -> str:
    """The text of the schema file of `uri`."""
    return json.dumps(model_schema(uri, model), indent=2, ensure_ascii=False) + "\n"


@cache
def _validator(uri: str, model: type[BaseModel]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(model_schema(uri, model))


def validate_document(uri: str, model: type[BaseModel], document: Any) -> None:
    """`BadMessage` naming the first field where `document` breaks the schema at `uri`."""
    error = jsonschema.exceptions.best_match(_validator(uri, model).iter_errors(document))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(record)"
        message = error.message if len(error.message) <= 300 else error.message[:299] + "…"
        raise BadMessage(f"{uri.rsplit('/', 1)[-1]}: {where}: {message}")


def rewrite_schema_files(models: Mapping[str, type[BaseModel]], *, check: bool = False) -> list[str]:
    """Rewrite each out-of-date schema file from its model (`check`: only report); the names
    of the files that were (or, checking, would be) rewritten."""
    SCHEMAS_DIR.mkdir(exist_ok=True)
    stale = []
    for uri, model in models.items():
        path = schema_file(uri)
        text = schema_text(uri, model)
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path.name)
        if not check:
            path.write_text(text)
    return stale
