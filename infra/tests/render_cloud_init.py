#!/usr/bin/env python3
"""Render infra/cloud-init.yaml the way Terraform's templatefile() does, with sample values.

Usage: render_cloud_init.py <cloud-init.yaml> <vmss.tf> <rendered.yaml> <scripts-dir>

Checks on the way:
- the template uses only plain `${name}` placeholders (no expressions, no `%{` directives),
  and `$${` / `%%{` escapes, exactly like templatefile() would accept them;
- the placeholders are exactly the keys of `local.cloud_init_vars` in vmss.tf (a missing key
  fails `terraform plan`, an unused one is a leftover);
- no value handed to the template is read from a key, password, secret or connection string;
- the rendered file stays well under Azure's 64 KiB custom-data limit (after base64);
- it writes each shell script and systemd unit from write_files into <scripts-dir> for
  `bash -n` and `systemd-analyze verify`.
"""
import base64
import os
import re
import sys

import yaml

SAMPLES = {
    "server_id": "valheim",
    "server_name": "Heimdall Test",
    "world_name": "Dedicated",
    "valheim_image": "lloesche/valheim-server@sha256:" + "0" * 64,
    "queue_endpoint": "https://heimdallappabcd.queue.core.windows.net",
    "storage_account": "heimdallappabcd",
    "events_queue": "events",
    "control_queue": "control",
    "kick_url": "https://heimdall.example.net/reactions/kick",
    "key_vault_uri": "https://heimdall-kv-abcd.vault.azure.net",
    "app_secret_name": "heimdall-app-secret",
    "server_password_secret_name": "valheim-server-password",
    "world_account_id": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"
    "heimdall-valheim-rg/providers/Microsoft.Storage/storageAccounts/heimdallwldabcd",
    "world_account_name": "heimdallwldabcd",
    "world_file_host": "heimdallwldabcd.file.core.windows.net",
    "world_share_name": "worlds",
    "agent_blob_url": "https://heimdallappabcd.blob.core.windows.net/agent/heimdall-agent-0000000000000000",
    "agent_sha256": "0" * 64,
}

TOKEN = re.compile(r"\$\$\{|%%\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\{|%\{")
SECRET_SOURCES = re.compile(
    r"access_key|connection_string|\bpassword\b|client_secret"
    r"|\bsas\b|\bsecret\b",
    re.IGNORECASE,
)


def fail(msg):
    print(f"render_cloud_init: {msg}", file=sys.stderr)
    sys.exit(1)


def template_keys(vmss_tf):
    """Keys (and value expressions) of `cloud_init_vars = { ... }` in vmss.tf."""
    text = open(vmss_tf, encoding="utf-8").read()
    m = re.search(r"cloud_init_vars\s*=\s*\{(.*?)\n\s*\}", text, re.DOTALL)
    if not m:
        fail(f"no `cloud_init_vars = {{ ... }}` map in {vmss_tf}")
    pairs = {}
    for line in m.group(1).splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        km = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.+)$", line)
        if not km:
            fail(f"cannot read the line `{line}` of cloud_init_vars")
        pairs[km.group(1)] = km.group(2)
    if 'templatefile("${path.module}/cloud-init.yaml", local.cloud_init_vars)' not in text:
        fail("vmss.tf must render cloud-init.yaml with templatefile(..., local.cloud_init_vars)")
    return pairs


def render(template, values):
    used = set()

    def sub(m):
        tok = m.group(0)
        if tok == "$${":
            return "${"
        if tok == "%%{":
            return "%{"
        if m.group(1) is not None:
            name = m.group(1)
            if name not in values:
                fail(f"placeholder ${{{name}}} has no value in local.cloud_init_vars")
            used.add(name)
            return values[name]
        line = template.count("\n", 0, m.start()) + 1
        fail(f"line {line}: `{tok}` is a template expression or directive; "
             "use a plain ${name} or escape it ($${ / %%{)")

    return TOKEN.sub(sub, template), used


def main():
    if len(sys.argv) != 5:
        fail(__doc__)
    template_path, vmss_tf, out_path, scripts_dir = sys.argv[1:]
    pairs = template_keys(vmss_tf)

    for key, expr in pairs.items():
        if SECRET_SOURCES.search(expr):
            fail(f"cloud_init_vars.{key} = {expr} looks like a secret; custom data must hold none")

    missing = set(pairs) - set(SAMPLES)
    if missing:
        fail(f"no sample value for {sorted(missing)}: add them to SAMPLES")
    values = {k: SAMPLES[k] for k in pairs}

    template = open(template_path, encoding="utf-8").read()
    rendered, used = render(template, values)
    unused = set(pairs) - used
    if unused:
        fail(f"cloud_init_vars keys not used by the template: {sorted(unused)}")
    if not rendered.startswith("#cloud-config\n"):
        fail("the rendered file must start with #cloud-config")

    size = len(base64.b64encode(rendered.encode("utf-8")))
    if size > 60 * 1024:
        fail(f"custom data is {size} bytes after base64; Azure allows 64 KiB")

    with open(out_path, "w", encoding="utf-8") as f:
        f.write(rendered)

    doc = yaml.safe_load(rendered)
    os.makedirs(scripts_dir, exist_ok=True)
    for old in os.listdir(scripts_dir):
        os.remove(os.path.join(scripts_dir, old))
    scripts = units = 0
    for entry in doc.get("write_files", []):
        content = entry.get("content", "")
        path = entry["path"]
        name = os.path.basename(path)
        if content.startswith("#!/bin/bash") or path.endswith(".sh"):
            scripts += 1
        elif path.startswith("/etc/systemd/system/"):
            units += 1
        else:
            continue
        with open(os.path.join(scripts_dir, name), "w", encoding="utf-8") as f:
            f.write(content)
    print(f"rendered {out_path}: {len(rendered)} bytes ({size} base64), "
          f"{len(used)} placeholders, {scripts} scripts, {units} systemd units")


if __name__ == "__main__":
    main()
