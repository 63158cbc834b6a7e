#!/usr/bin/env bash
# infra/deploy.sh — builds every function for arm64 Lambda and deploys the stack (I2):
#   sam build (cargo-lambda, `provided.al2023`, arm64) then sam deploy.
#
#   infra/deploy.sh            # first time: sam deploy --guided (asks, then saves samconfig.toml)
#   infra/deploy.sh            # afterwards: sam deploy with the saved answers
#   infra/deploy.sh --guided   # ask again (another region, other parameters)
#
# Needs: AWS credentials for the target account (the usual AWS_PROFILE / environment), the SAM
# CLI and cargo-lambda. Both come from PyPI; if they are missing this script says how to get
# them. It also finds them in the virtualenvs the CI scripts create under
# ${CONTINUITY_HOME:-$HOME/.cache/email-continuity}/tools.
# samconfig.toml (the guided answers) and .aws-sam/ (the build) stay in the repository root and
# are not committed: they belong to one deployment.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TOOLS="${CONTINUITY_HOME:-$HOME/.cache/email-continuity}/tools"
# Tools already on PATH win; the CI virtualenvs are a fallback. cargo-lambda links with zig,
# which it finds as `zig` or as the ziglang module of the first `python3` on PATH: the
# cargo-lambda virtualenv goes in front so that its python3 (with ziglang) is that one.
command -v sam >/dev/null 2>&1 || { [[ -x "$TOOLS/aws-sam-cli/bin/sam" ]] && PATH="$PATH:$TOOLS/aws-sam-cli/bin"; }
command -v cargo-lambda >/dev/null 2>&1 || { [[ -x "$TOOLS/cargo-lambda/bin/cargo-lambda" ]] && PATH="$TOOLS/cargo-lambda/bin:$PATH"; }
export PATH

missing=()
command -v sam >/dev/null 2>&1 || missing+=("the SAM CLI (sam)")
command -v cargo-lambda >/dev/null 2>&1 || missing+=("cargo-lambda")
command -v cargo >/dev/null 2>&1 || missing+=("Rust (cargo)")
if ! command -v zig >/dev/null 2>&1 && ! python3 -c 'import ziglang' >/dev/null 2>&1; then
  missing+=("zig (pip install ziglang, in the same virtualenv as cargo-lambda)")
fi
if [[ ${#missing[@]} -gt 0 ]]; then
  {
    echo "deploy.sh: missing: $(IFS=";"; echo "${missing[*]}" | sed "s/;/; /g")."
    echo "  Install both tools from PyPI into a virtualenv and put it on PATH, for example:"
    echo "    python3 -m venv ~/.venvs/continuity-deploy"
    echo "    ~/.venvs/continuity-deploy/bin/pip install aws-sam-cli cargo-lambda"
    echo "    export PATH=\"\$HOME/.venvs/continuity-deploy/bin:\$PATH\""
    echo "  (infra/ci/build-lambdas.sh installs cargo-lambda under $TOOLS by itself.)"
    echo "  Rust: https://rustup.rs"
  } >&2
  exit 1
fi

guided=()
if [[ "${1:-}" == --guided || ! -f samconfig.toml ]]; then
  guided=(--guided)
  echo "deploy.sh: guided deploy: sam asks for the stack name, the region and the parameters"
  echo "  (ReceivingDomain is required; answer 'y' to IAM role creation) and saves them in samconfig.toml."
fi

echo "== sam build (cargo-lambda, arm64)"
# rust-cargolambda is a beta build method of the SAM CLI: --beta-features opts in without a prompt.
sam build --template-file infra/template.yaml --beta-features
echo "== sam deploy"
sam deploy "${guided[@]}" --capabilities CAPABILITY_IAM
# Configuration as code: organisations' files beside the infrastructure, applied idempotently.
shopt -s nullglob
ORGS=(infra/orgs/*.json)
if [[ ${#ORGS[@]} -gt 0 ]]; then
  STACK="$(python3 -c 'import tomllib; c=tomllib.load(open("samconfig.toml","rb")); print(c["default"]["deploy"]["parameters"]["stack_name"])')"
  if command -v aws >/dev/null 2>&1; then
    TABLE_NAME="$(aws cloudformation describe-stacks --stack-name "$STACK" --query "Stacks[0].Outputs[?OutputKey=='TableName'].OutputValue" --output text)"
    export TABLE_NAME
    echo "== continuity-config apply ${ORGS[*]} (table $TABLE_NAME)"
    cargo build --release --locked -p local-runner --bin continuity-config
    target/release/continuity-config apply "${ORGS[@]}"
  else
    echo "deploy.sh: infra/orgs/*.json exist but the AWS CLI is missing: apply them with continuity-config (README, Deploy, step 7)." >&2
  fi
fi
echo "deploy.sh: deployed. The manual steps that follow (DNS, SES, SMS) are in README.md, section Deploy;"
echo "  the stack's outputs (sam list stack-outputs) hold the DNS records to create."
