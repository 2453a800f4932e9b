#!/usr/bin/env bash
# Offline checks of the SpinKube manifests (test_manifests.py): the SpinApp against the SpinApp
# CRD, the Secret and the CronJob against Kubernetes' schemas, the variables against spin.toml.
# Installs kubernetes-validate from PyPI into a venv under $HEIMDALL_CACHE when missing.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${HEIMDALL_CACHE:-$HOME/.cache/heimdall}/venv-spinkube"
KUBERNETES_VALIDATE_VERSION=1.37.0

stamp="$VENV/.kubernetes-validate-$KUBERNETES_VALIDATE_VERSION"
if [ ! -x "$VENV/bin/python" ] || [ ! -f "$stamp" ]; then
  echo "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  touch "$stamp"
fi
cd "$HERE"
PYTHONDONTWRITEBYTECODE=1 "$VENV/bin/python" -m unittest -v test_manifests
