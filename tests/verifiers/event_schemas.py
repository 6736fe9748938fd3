"""Validates domain events against schemas/events/<detail-type>.json with the `jsonschema`
package (draft 2020-12, formats checked), and refuses a field its schema does not list (the
schemas allow unknown fields for consumers; the service must document every field it sends).

stdin: [{"detail_type": "...", "detail": {...}}, ...]
stdout: {"checked": n, "errors": ["<detail-type>: <message>", ...]}
"""

import json
import pathlib
import sys

import jsonschema

SCHEMAS = pathlib.Path(__file__).resolve().parents[2] / "schemas" / "events"


def main():
    events = json.load(sys.stdin)
    errors = []
    validators = {}
    for event in events:
        detail_type = event["detail_type"]
        path = SCHEMAS / f"{detail_type}.json"
        if not path.exists():
            errors.append(f"{detail_type}: no schema {path.name}")
            continue
        if detail_type not in validators:
            schema = json.loads(path.read_text())
            jsonschema.Draft202012Validator.check_schema(schema)
            validators[detail_type] = (
                schema,
                jsonschema.Draft202012Validator(
                    schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
                ),
            )
        schema, validator = validators[detail_type]
        detail = event["detail"]
        for error in validator.iter_errors(detail):
            errors.append(f"{detail_type}: {error.message}")
        for field in sorted(set(detail) - set(schema["properties"])):
            errors.append(f"{detail_type}: field {field!r} is not in the schema")
    json.dump({"checked": len(events), "errors": errors}, sys.stdout)


main()
