"""Form parameter types the upload routes share: an uploaded file documented as binary.

FastAPI describes an ``UploadFile`` with ``contentMediaType`` alone (OpenAPI 3.1); client generators
that look for ``format: binary`` (openapi-python-client among them) then type the field as a string
and every upload they send is refused. Declaring both keeps 3.1 validators and generators happy.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import UploadFile
from pydantic import WithJsonSchema

BINARY_FILE_SCHEMA = {"type": "string", "format": "binary", "contentMediaType": "application/octet-stream"}

UploadedFile = Annotated[UploadFile, WithJsonSchema(BINARY_FILE_SCHEMA)]
