#!/usr/bin/env bash
# Lint the CloudFormation: cfn-lint on template.yaml and infra/*.yaml, then `sam validate --lint`
# (the SAM transform itself, then cfn-lint on its output), then local/check-deploy-role.py (the
# deploy role in infra/deploy-role.yaml against what deploying template.yaml needs), then the
# checkov security scan of the same files. A phase of local/test.sh; runs alone too.
#
# The tools come from PyPI, pinned, into virtualenvs in the tools dir (MDB_TOOLS_DIR, default
# ~/.cache/mdb/tools): installed once (about two minutes), then reused, and the system Python's
# packages are left alone. checkov has a virtualenv of its own: it pins boto3 to a release
# aws-sam-cli's own boto3 pin excludes, so pip cannot put both in one.
#
# checkov fails on every finding that is not skipped; each skip is in the template, on the
# resource, with its reason (Metadata: checkov: skip: [{id, comment}]). It runs offline
# (BC_SKIP_MAPPING, --skip-download): no guideline download, no platform account.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS_DIR=${MDB_TOOLS_DIR:-$HOME/.cache/mdb/tools}
CFN_VENV=$TOOLS_DIR/cfn-venv
CFN_PINS="aws-sam-cli==1.170.0 cfn-lint==1.58.0"
CHECKOV_VENV=$TOOLS_DIR/checkov-venv
CHECKOV_PINS="checkov==3.3.30"

# The stamp holds the pins a virtualenv was built with: a changed pin rebuilds it.
# installed VENV PINS EXECUTABLE
installed() { [ -x "$1/bin/$3" ] && [ "$(cat "$1/.mdb-pins" 2>/dev/null)" = "$2" ]; }

# install VENV PINS EXECUTABLE
install() {
  local venv=$1 pins=$2 exe=$3
  mkdir -p "$TOOLS_DIR"
  (
    flock 9
    if ! installed "$venv" "$pins" "$exe"; then
      echo "installing $pins into $venv (pip, once)"
      rm -rf "$venv"
      python3 -m venv "$venv"
      # shellcheck disable=SC2086  # pins is a list of requirements
      "$venv/bin/pip" install -q --disable-pip-version-check $pins
      echo "$pins" >"$venv/.mdb-pins"
    fi
  ) 9>"$TOOLS_DIR/.$(basename "$venv")-install.lock"
  installed "$venv" "$pins" "$exe" || { echo "lint-templates.sh: $pins did not install into $venv" >&2; exit 1; }
}

installed "$CFN_VENV" "$CFN_PINS" sam || install "$CFN_VENV" "$CFN_PINS" sam
installed "$CHECKOV_VENV" "$CHECKOV_PINS" checkov || install "$CHECKOV_VENV" "$CHECKOV_PINS" checkov

cd "$ROOT"
# sam needs a region even to validate; no request leaves the machine (telemetry off).
export AWS_REGION=${AWS_REGION:-us-east-1} SAM_CLI_TELEMETRY=0
"$CFN_VENV/bin/cfn-lint" template.yaml infra/*.yaml
echo "cfn-lint: template.yaml $(echo infra/*.yaml) clean"
"$CFN_VENV/bin/sam" validate --lint --template-file template.yaml
# The deploy role grants what CloudFormation's handlers and `sam deploy` need for template.yaml.
"$CFN_VENV/bin/python" local/check-deploy-role.py

# checkov: every CloudFormation check, hard fail on any finding, skips only from the templates.
checkov_files=()
for f in template.yaml infra/*.yaml; do checkov_files+=(--file "$f"); done
BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false \
  "$CHECKOV_VENV/bin/checkov" --quiet --compact --skip-download --framework cloudformation \
  --output cli "${checkov_files[@]}"
echo "checkov: template.yaml $(echo infra/*.yaml) clean (skips are in the templates, with reasons)"
