#!/usr/bin/env python3
"""Validates a vfio-migrate JSON document against its schema: validate.py SCHEMA [FILE].

Reads the document from FILE or standard input; every schema in this folder is available to
$ref. Exit 0 valid, 1 invalid (each error printed), 2 usage. Needs the jsonschema package
(Debian: python3-jsonschema, installed by tools/setup.sh).
"""
import json
import os
import sys

import jsonschema


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    here = os.path.dirname(os.path.abspath(__file__))
    store = {}
    for name in os.listdir(here):
        if name.endswith(".schema.json"):
            with open(os.path.join(here, name)) as f:
                schema = json.load(f)
            store[schema["$id"]] = schema
    name = sys.argv[1] if sys.argv[1].endswith(".schema.json") else sys.argv[1] + ".schema.json"
    schema = store[os.path.basename(name)]
    document = json.load(open(sys.argv[2]) if len(sys.argv) == 3 else sys.stdin)
    jsonschema.Draft202012Validator.check_schema(schema)
    resolver = jsonschema.RefResolver(base_uri=schema["$id"], referrer=schema, store=store)
    validator = jsonschema.Draft202012Validator(schema, resolver=resolver)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    for error in errors:
        path = "/".join(str(p) for p in error.absolute_path) or "(document)"
        print(f"{path}: {error.message}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
