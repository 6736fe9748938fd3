"""Verifies tokens as an independent service would: PyJWT, keys found through OIDC discovery.

stdin: {"issuer": URL, "cases": [{"name", "token", "audience"}]}. Fetches
{issuer}/.well-known/openid-configuration, checks its issuer, follows jwks_uri with PyJWKClient
(the key named by the token's kid), and decodes with the document's algorithms, the expected
audience and issuer, requiring exp, iat, nbf, iss, aud and sub. Prints
{"discovery": {...}, "results": {name: {"ok": true, "claims": {...}} | {"ok": false, "error": class}}}.
"""

import json
import sys
import urllib.request

import jwt

request = json.load(sys.stdin)
issuer = request["issuer"]
with urllib.request.urlopen(issuer + "/.well-known/openid-configuration", timeout=10) as response:
    discovery = json.load(response)
if discovery["issuer"] != issuer:
    sys.exit(f"discovery names issuer {discovery['issuer']!r}, not {issuer!r}")
client = jwt.PyJWKClient(discovery["jwks_uri"], cache_keys=False)
results = {}
for case in request["cases"]:
    try:
        key = client.get_signing_key_from_jwt(case["token"])
        claims = jwt.decode(
            case["token"],
            key.key,
            algorithms=discovery["id_token_signing_alg_values_supported"],
            audience=case["audience"],
            issuer=discovery["issuer"],
            options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub"]},
        )
        results[case["name"]] = {"ok": True, "claims": claims}
    except Exception as error:  # the class names the refusal
        results[case["name"]] = {"ok": False, "error": type(error).__name__}
print(json.dumps({"discovery": discovery, "results": results}))
