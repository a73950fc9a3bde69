#!/usr/bin/env bash
# Lint the CloudFormation: cfn-lint on template.yaml and infra/*.yaml, then `sam validate --lint`
# (the SAM transform itself, then cfn-lint on its output). A phase of local/test.sh; runs alone too.
#
# cfn-lint and the SAM CLI come from PyPI, pinned, into a virtualenv in the tools dir
# (MDB_TOOLS_DIR, default ~/.cache/mdb/tools): installed once (about a minute), then reused, and
# the system Python's packages are left alone (aws-sam-cli pins its own botocore).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS_DIR=${MDB_TOOLS_DIR:-$HOME/.cache/mdb/tools}
VENV=$TOOLS_DIR/cfn-venv
PINS="aws-sam-cli==1.170.0 cfn-lint==1.58.0"

# The stamp holds the pins the virtualenv was built with: a changed pin rebuilds it.
tools_installed() { [ -x "$VENV/bin/sam" ] && [ "$(cat "$VENV/.mdb-pins" 2>/dev/null)" = "$PINS" ]; }

install_tools() {
  mkdir -p "$TOOLS_DIR"
  (
    flock 9
    if ! tools_installed; then
      echo "installing $PINS into $VENV (pip, once)"
      rm -rf "$VENV"
      python3 -m venv "$VENV"
      # shellcheck disable=SC2086  # PINS is a list of requirements
      "$VENV/bin/pip" install -q --disable-pip-version-check $PINS
      echo "$PINS" >"$VENV/.mdb-pins"
    fi
  ) 9>"$TOOLS_DIR/.cfn-tools-install.lock"
  tools_installed || { echo "lint-templates.sh: $PINS did not install into $VENV" >&2; exit 1; }
}

tools_installed || install_tools

cd "$ROOT"
# sam needs a region even to validate; no request leaves the machine (telemetry off).
export AWS_REGION=${AWS_REGION:-us-east-1} SAM_CLI_TELEMETRY=0
"$VENV/bin/cfn-lint" template.yaml infra/*.yaml
echo "cfn-lint: template.yaml $(echo infra/*.yaml) clean"
"$VENV/bin/sam" validate --lint --template-file template.yaml
