"""API Gateway's HTTP API JWT authorizer, emulated from its documented rules, on PyJWT.

The rules are those of "Control access to HTTP APIs with JWT authorizers in API Gateway"
(https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-jwt-authorizer.html,
"Authorizing API requests with a JWT authorizer"):

  1. The identity source (the Authorization header) holds the token, alone or after "Bearer ".
  2. The token is decoded.
  3. Its algorithm and signature are checked with the public key fetched from the issuer's
     jwks_uri (found through {issuer}/.well-known/openid-configuration); only RSA-based
     algorithms are supported.
  4. Claims: kid (a header claim matching the key in jwks_uri that signed the token); iss (equal
     to the authorizer's issuer); aud or client_id (one of the authorizer's audience entries);
     exp (after the current time); nbf and iat (before the current time); scope or scp (at
     least one of the route's authorization scopes, when the route has any).
  Then API Gateway passes the token's claims to the integration
  (requestContext.authorizer.jwt.claims, every value a string).

API Gateway caches the keys (up to two hours); this emulation reads them for every case.

stdin: {"issuer", "audience": [...], "scopes": [...], "now"?: epoch seconds,
        "cases": [{"name", "authorization"}]}.
Prints {"results": {name: {"allow": true, "jwt": {"claims": {...}, "scopes": [...]}}
                          | {"allow": false, "status": 401 or 403, "rule": "<the rule refused>"}}}.
"""

import json
import sys
import time
import urllib.request

import jwt

RSA_ALGORITHMS = {"RS256", "RS384", "RS512"}


def fetch(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def as_string(value):
    """A claim as API Gateway hands it on: strings as they are, numbers as digits, arrays as
    "[a b]"."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return "[" + " ".join(as_string(item) for item in value) + "]"
    return json.dumps(value, separators=(",", ":"))


class Refused(Exception):
    def __init__(self, rule, status=401):
        super().__init__(rule)
        self.rule = rule
        self.status = status


def authorize(authorization, config, keys, now):
    # 1. The identity source.
    if not authorization:
        raise Refused("identity source")
    token = authorization
    if authorization[:7].lower() == "bearer ":
        token = authorization[7:].strip()
    # 2. Decode.
    try:
        header = jwt.get_unverified_header(token)
    except jwt.exceptions.DecodeError:
        raise Refused("decode")
    # 4. kid: a header claim naming a key of jwks_uri.
    key = next((k for k in keys if "kid" in header and k.get("kid") == header["kid"]), None)
    if key is None:
        raise Refused("kid")
    # 3. Only RSA-based algorithms, then the signature under that key.
    algorithm = header.get("alg")
    if algorithm not in RSA_ALGORITHMS or key.get("kty") != "RSA":
        raise Refused("alg")
    try:
        claims = jwt.decode(
            token,
            jwt.PyJWK(key, algorithm).key,
            algorithms=[algorithm],
            options={
                "verify_signature": True,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
            },
        )
    except jwt.exceptions.InvalidSignatureError:
        raise Refused("signature")
    # 4. The claims.
    if claims.get("iss") != config["issuer"]:
        raise Refused("iss")
    audiences = claims.get("aud", [])
    if isinstance(audiences, str):
        audiences = [audiences]
    if "client_id" in claims:
        audiences = audiences + [claims["client_id"]]
    if not any(audience in config["audience"] for audience in audiences):
        raise Refused("aud")
    if not isinstance(claims.get("exp"), (int, float)) or not claims["exp"] > now:
        raise Refused("exp")
    for name in ("nbf", "iat"):
        if name in claims and not claims[name] <= now:
            raise Refused(name)
    granted = claims.get("scope", claims.get("scp", []))
    if isinstance(granted, str):
        granted = granted.split()
    if config["scopes"] and not any(scope in granted for scope in config["scopes"]):
        # RFC 6750's insufficient_scope (API Gateway's own status for it is not emulated).
        raise Refused("scope", status=403)
    return {
        "claims": {name: as_string(value) for name, value in claims.items()},
        "scopes": granted,
    }


def main():
    config = json.load(sys.stdin)
    issuer = config["issuer"]
    discovery = fetch(issuer.rstrip("/") + "/.well-known/openid-configuration")
    keys = fetch(discovery["jwks_uri"])["keys"]
    now = config.get("now", time.time())
    results = {}
    for case in config["cases"]:
        try:
            results[case["name"]] = {
                "allow": True,
                "jwt": authorize(case.get("authorization"), config, keys, now),
            }
        except Refused as refused:
            results[case["name"]] = {"allow": False, "status": refused.status, "rule": refused.rule}
    print(json.dumps({"discovery": discovery, "results": results}))


main()
