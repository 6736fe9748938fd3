"""scripts/admin: the admin API's requests, signed with SigV4 by botocore (see scripts/admin)."""

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def api_url(args, session):
    url = args.api or os.environ.get("PHONE_AUTH_API_URL")
    if url:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme != "https" and parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
            sys.exit("scripts/admin: the API's URL must be https (signed requests are not sent in clear)")
        return url.rstrip("/")
    if not args.stack:
        sys.exit("scripts/admin: give --api URL, PHONE_AUTH_API_URL or --stack NAME")
    cloudformation = session.create_client("cloudformation", region_name=args.region)
    stack = cloudformation.describe_stacks(StackName=args.stack)["Stacks"][0]
    for output in stack.get("Outputs", []):
        if output["OutputKey"] == "ApiUrl":
            return output["OutputValue"].rstrip("/")
    sys.exit(f"scripts/admin: the stack {args.stack} has no ApiUrl output")


def region_of(url, args, session):
    if args.region:
        return args.region
    found = re.search(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com", url)
    region = found.group(1) if found else session.get_config_variable("region")
    if not region:
        sys.exit("scripts/admin: no region: give --region or set AWS_REGION")
    return region


class Admin:
    def __init__(self, url, region, session):
        credentials = session.get_credentials()
        if credentials is None:
            sys.exit("scripts/admin: no AWS credentials found")
        self.url, self.signer = url, SigV4Auth(credentials, "execute-api", region)

    def call(self, method, path, query=None, body=None):
        # %20, not +, for a space: what API Gateway's signature check encodes.
        encoded = urllib.parse.urlencode(query, quote_via=urllib.parse.quote) if query else ""
        url = self.url + path + ("?" + encoded if encoded else "")
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        request = AWSRequest(method=method, url=url, data=data, headers=headers)
        self.signer.add_auth(request)
        prepared = urllib.request.Request(
            url, data=data, method=method, headers=dict(request.headers.items())
        )
        try:
            with urllib.request.urlopen(prepared, timeout=30) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as refused:
            text = refused.read().decode(errors="replace")
            print(f"scripts/admin: {method} {path} answered {refused.code}: {text}", file=sys.stderr)
            sys.exit(1)
        except urllib.error.URLError as failed:
            sys.exit(f"scripts/admin: {method} {path} failed: {failed.reason}")
        try:
            return json.loads(text) if text else None
        except json.JSONDecodeError:
            sys.exit(f"scripts/admin: {method} {path} answered no JSON: {text[:200]}")


def user_path(user_id, tail=""):
    if not UUID.match(user_id):
        sys.exit(f"scripts/admin: {user_id!r} is no account id (a UUID); try: find {user_id}")
    return f"/admin/users/{user_id}{tail}"


def session_path(user_id, session_id):
    if not UUID.match(session_id):
        sys.exit(f"scripts/admin: {session_id!r} is no session id (a UUID); see: sessions ID")
    return user_path(user_id, f"/sessions/{session_id}")


def run(admin, args):
    command, rest = args.command, args.arguments

    def need(count, usage):
        if len(rest) != count:
            sys.exit(f"scripts/admin: usage: {command} {usage}")

    if command == "find":
        need(1, "PHONE_OR_ID")
        key = "id" if UUID.match(rest[0]) else "phone"
        return admin.call("GET", "/admin/users", {key: rest[0]})
    if command == "show":
        need(1, "ID")
        return admin.call("GET", user_path(rest[0]))
    if command in ("disable", "enable"):
        need(1, "ID")
        body = {"disabled": command == "disable"}
        return admin.call("PUT", user_path(rest[0], "/status"), body=body)
    if command == "sessions":
        need(1, "ID")
        sessions, after = [], None
        while True:
            query = {"limit": "100", **({"after": after} if after else {})}
            page = admin.call("GET", user_path(rest[0], "/sessions"), query)
            sessions += page["sessions"]
            after = page.get("next")
            if not after:
                return {"sessions": sessions}
    if command == "sign-out":
        need(1, "ID")
        return admin.call("DELETE", user_path(rest[0], "/sessions"))
    if command == "end-session":
        need(2, "ID SESSION")
        return admin.call("DELETE", session_path(rest[0], rest[1]))
    if command == "claims":
        if len(rest) == 1:
            return admin.call("GET", user_path(rest[0], "/claims"))
        need(2, "ID [JSON]")
        try:
            claims = json.loads(rest[1])
        except json.JSONDecodeError as error:
            sys.exit(f"scripts/admin: the claims are no JSON: {error}")
        return admin.call("PUT", user_path(rest[0], "/claims"), body={"app_claims": claims})
    if command == "delete":
        need(1, "ID --yes")
        if not args.yes:
            sys.exit("scripts/admin: usage: delete ID --yes (the account cannot be brought back)")
        return admin.call("DELETE", user_path(rest[0]))
    sys.exit(f"scripts/admin: no command {command!r} (see scripts/admin --help)")


def main():
    parser = argparse.ArgumentParser(prog="scripts/admin", add_help=True)
    parser.add_argument("--api")
    parser.add_argument("--stack")
    parser.add_argument("--region")
    parser.add_argument("--yes", action="store_true", help="confirms a delete")
    parser.add_argument("command")
    parser.add_argument("arguments", nargs="*")
    args = parser.parse_args()
    session = botocore.session.Session()
    url = api_url(args, session)
    answer = run(Admin(url, region_of(url, args, session), session), args)
    print(json.dumps(answer, indent=2, ensure_ascii=False) if answer is not None else "done")


if __name__ == "__main__":
    main()
