"""The published API description (openapi.json) and validators for its
component schemas, so a test can check that what it sent and received fits
the document. Must not: change the document; it is the contract under test.
"""
import json

import jsonschema

from .paths import OPENAPI_PATH

OPENAPI = json.loads(OPENAPI_PATH.read_text())


def schema(name: str) -> jsonschema.Draft202012Validator:
    """A validator for one component schema, resolving refs within the document."""
    root = {"$ref": f"#/components/schemas/{name}", "components": OPENAPI["components"]}
    return jsonschema.Draft202012Validator(root)
