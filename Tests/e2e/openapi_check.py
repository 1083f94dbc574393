#!/usr/bin/env python3
"""Validates request bodies a satellite sent against Harbor Satellite's published API.

usage: openapi_check.py DEFINITION BODY.json [DEFINITION BODY.json ...]
DEFINITION is a name under $defs of harbor-satellite-requests.schema.json (next to this file).
Exit 0 when every body validates; otherwise each error is printed with its JSON path.
"""
import json
import os
import sys

import jsonschema

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "harbor-satellite-requests.schema.json")) as f:
    schema = json.load(f)

args = sys.argv[1:]
if not args or len(args) % 2:
    sys.exit(__doc__)
failed = 0
for definition, path in zip(args[0::2], args[1::2]):
    if definition not in schema["$defs"]:
        sys.exit(f"unknown definition {definition}")
    with open(path) as f:
        body = json.load(f)
    sub = {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"}
    validator = jsonschema.Draft202012Validator(sub)
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
    for error in errors:
        failed += 1
        where = "/".join(str(p) for p in error.path) or "(root)"
        print(f"{path}: {definition}: {where}: {error.message}")
    if not errors:
        print(f"{path}: valid {definition}")
sys.exit(1 if failed else 0)
