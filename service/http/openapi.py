"""The OpenAPI schema as clients should read it: the configured limits written into the request bodies.

Limits that are settings (``REID_MAX_TOP_K``, ``REID_MAX_IMAGES_PER_REQUEST``) cannot be static
``Form(le=...)`` bounds of a route; they are enforced by the use cases and written into the schema here,
once per app, so that a generated client or a reader of ``/docs`` sees the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from service.settings import Settings


def request_limits(settings: Settings) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    """(path, method) -> form field -> JSON schema keywords that state the configured limit."""
    images = {"images": {"minItems": 1, "maxItems": settings.max_images_per_request}}
    return {
        ("/match", "post"): {"top_k": {"maximum": settings.max_top_k}},
        ("/sightings", "post"): images,
        ("/embed", "post"): images,
    }


def document_limits(schema: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Write ``request_limits`` into the request-body schemas of ``schema`` (in place); returns it."""
    components = schema.get("components", {}).get("schemas", {})
    for (path, method), fields in request_limits(settings).items():
        body = schema.get("paths", {}).get(path, {}).get(method, {}).get("requestBody", {})
        for media in body.get("content", {}).values():
            target = media.get("schema", {})
            if "$ref" in target:
                target = components.get(target["$ref"].rsplit("/", 1)[-1], {})
            for field, keywords in fields.items():
                if field in target.get("properties", {}):
                    target["properties"][field].update(keywords)
    return schema


def with_limits(build: Callable[[], dict[str, Any]], settings: Settings) -> Callable[[], dict[str, Any]]:
    """An ``app.openapi`` replacement: FastAPI's schema (built once) with the limits written in."""
    done: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if "schema" not in done:
            done["schema"] = document_limits(build(), settings)
        return done["schema"]

    return openapi
