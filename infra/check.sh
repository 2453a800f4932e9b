#!/usr/bin/env bash
# Offline checks for infra/: cloud-init schema of the rendered cloud-config, checkov on the
# Terraform, and, when terraform is installed, `terraform fmt -check` and the variables'
# validations on good and bad inputs. Idempotent: tools are installed only when missing
# (cloud-init from Debian's packages, checkov from PyPI into a venv under $HEIMDALL_CACHE).
# `terraform validate/plan` of the whole configuration needs the provider registry and is not run.
set -euo pipefail

INFRA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${HEIMDALL_CACHE:-$HOME/.cache/heimdall}"
VENV="$CACHE/venv"
WORK="$CACHE/infra-check"
CHECKOV_VERSION="${CHECKOV_VERSION:-3.2.533}"
mkdir -p "$WORK"

t0=$(date +%s)
step() { printf '\n== %s (t=%ss)\n' "$1" "$(($(date +%s) - t0))"; }

# --- tools -------------------------------------------------------------------------------
ensure_cloud_init() {
  if command -v cloud-init >/dev/null 2>&1 && /usr/bin/python3 -c 'import jsonschema, yaml' 2>/dev/null; then
    return
  fi
  step "installing cloud-init (Debian package)"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  # Refresh the package lists only when they are missing or older than a day.
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -n1)" ]; then
    $sudo apt-get update -qq
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    cloud-init python3-jsonschema python3-yaml >/dev/null
}

ensure_checkov() {
  local stamp="$VENV/.checkov-$CHECKOV_VERSION"
  if [ -x "$VENV/bin/checkov" ] && [ -f "$stamp" ]; then
    return
  fi
  step "installing checkov $CHECKOV_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "checkov==$CHECKOV_VERSION"
  touch "$stamp"
}

ensure_cloud_init
ensure_checkov

# --- 1. render and validate cloud-init ---------------------------------------------------
step "rendering cloud-init.yaml with sample values"
RENDERED="$WORK/cloud-init.rendered.yaml"
# Debian's python3 (installed with cloud-init) has PyYAML.
/usr/bin/python3 "$INFRA_DIR/tests/render_cloud_init.py" \
  "$INFRA_DIR/cloud-init.yaml" "$INFRA_DIR/vmss.tf" "$RENDERED" "$WORK/scripts"

step "cloud-init schema"
cloud-init schema --config-file "$RENDERED"

step "bash -n on the scripts written by cloud-init"
for script in "$WORK"/scripts/*.sh; do
  bash -n "$script"
  echo "ok: $(basename "$script")"
done

if command -v systemd-analyze >/dev/null 2>&1; then
  step "systemd-analyze verify on the units written by cloud-init"
  # This machine has no docker and none of the VM's files: drop exactly those complaints and
  # fail on anything else (unknown keys, bad values, bad sections).
  verify_out="$(cd "$WORK/scripts" && SYSTEMD_LOG_LEVEL=warning \
    systemd-analyze verify --man=no ./*.service ./*.mount 2>&1 || true)"
  unexpected="$(printf '%s\n' "$verify_out" | grep -v -E \
    -e 'Command .* is not executable: No such file or directory' \
    -e 'Unit docker\.service not found' -e '^$' || true)"
  if [ -n "$unexpected" ]; then
    printf '%s\n' "$unexpected" >&2
    exit 1
  fi
  echo "ok: $(cd "$WORK/scripts" && ls ./*.service ./*.mount | xargs -n1 basename | tr '\n' ' ')"
fi

# --- 2. checkov --------------------------------------------------------------------------
step "checkov (skips and reasons: infra/.checkov.yaml)"
(cd "$INFRA_DIR" && "$VENV/bin/checkov" --config-file .checkov.yaml --directory . \
  --framework terraform --quiet --compact --skip-download)

# --- 3. terraform fmt and the inputs' validations -----------------------------------------
# The validations need no provider: a copy of variables.tf alone initialises offline, and a
# plan of it runs every validation block on the values given.
check_validations() {
  local dir="$WORK/variables" sample out
  rm -rf "$dir" && mkdir -p "$dir"
  cp "$INFRA_DIR/variables.tf" "$dir/"
  : > "$dir/agent.bin"
  (cd "$dir" && terraform init -input=false >/dev/null)
  sample=(-var name_suffix=abcd -var "admin_ssh_public_key=ssh-ed25519 AAAA"
    -var kick_url=https://heimdall.example.net/reactions/kick
    -var app_principal_object_id=00000000-0000-0000-0000-000000000000
    -var agent_binary_path=agent.bin
    -var "valheim_image=lloesche/valheim-server@sha256:$(printf '0%.0s' {1..64})")
  # $1 = accept|refuse, then the -var arguments that differ from the sample.
  expect() {
    local want="$1"; shift
    if out="$(cd "$dir" && terraform plan -input=false -refresh=false "${sample[@]}" "$@" 2>&1)"; then
      [ "$want" = accept ] || { echo "terraform accepted $*" >&2; exit 1; }
    else
      [ "$want" = refuse ] && grep -q 'Invalid value for variable' <<<"$out" \
        || { printf 'terraform refused %s:\n%s\n' "$*" "$out" >&2; exit 1; }
    fi
  }
  expect accept
  expect accept -var 'admin_ssh_cidrs=["203.0.113.7/32","2001:db8:1::/48"]'
  expect refuse -var 'admin_ssh_cidrs=["0.0.0.0/0"]'
  expect refuse -var 'admin_ssh_cidrs=["0.0.0.0/1","128.0.0.0/1"]'
  expect refuse -var 'admin_ssh_cidrs=["::/0"]'
  expect refuse -var 'operator_cidrs=["0.0.0.0/1"]'
  expect refuse -var "server_name=$(printf 'Heim\ndall')"
  expect refuse -var valheim_image=lloesche/valheim-server:latest
  expect refuse -var agent_binary_path=/nonexistent/heimdall-agent
  echo "ok: variable validations accept the sample and refuse wide CIDRs, newlines, tags and missing files"
}

if command -v terraform >/dev/null 2>&1; then
  : > "$WORK/terraformrc" # an empty CLI config keeps terraform from warning about a missing one
  export TF_CLI_CONFIG_FILE="$WORK/terraformrc"
  step "terraform fmt -check"
  terraform fmt -check -recursive "$INFRA_DIR"
  step "terraform: variable validations on good and bad inputs"
  check_validations
else
  step "terraform not on PATH: fmt and validation checks skipped"
fi

step "infra checks passed"
