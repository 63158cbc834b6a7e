#!/usr/bin/env bash
# infra/ci/check-template.sh — lints and scans the SAM template (I3), offline:
#   cfn-lint (the CloudFormation and SAM specification, after the SAM transform) and
#   checkov (IaC security checks; --skip-download keeps it from fetching policies).
#
#   infra/ci/check-template.sh [TEMPLATE]      # default infra/template.yaml
#
# Each tool lives in its own virtualenv under ${CONTINUITY_HOME:-$HOME/.cache/email-continuity}/tools
# (checkov pins an older boto3 than cfn-lint wants). Every suppressed check is justified inline
# in the template: cfn-lint under a resource's Metadata, checkov as a `checkov:skip=ID:reason`
# comment inside the resource. Nothing is skipped here on the command line.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=infra/ci/venv.sh
source infra/ci/venv.sh

CFN_LINT_VERSION="1.58.0"
CHECKOV_VERSION="3.3.30"
TEMPLATE="${1:-infra/template.yaml}"

cfn="$(ensure_venv cfn-lint "cfn-lint==$CFN_LINT_VERSION")"
chk="$(ensure_venv checkov "checkov==$CHECKOV_VERSION")"

echo "== cfn-lint $TEMPLATE"
"$cfn/bin/cfn-lint" --format parseable -- "$TEMPLATE"
echo "cfn-lint: clean"

echo "== checkov $TEMPLATE"
# No telemetry, no policy downloads, no version check: CI is offline.
export BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false
"$chk/bin/checkov" --quiet --compact --skip-download \
  --framework cloudformation --file "$TEMPLATE"
