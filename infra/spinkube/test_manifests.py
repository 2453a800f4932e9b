"""Offline checks of the SpinKube manifests: the SpinApp against the SpinApp CRD, the Secret and the
CronJob against Kubernetes' own schemas (kubernetes-validate), and the variables against the
[variables] of spin.toml, read at test time so that a variable added later is caught.

Run by check.sh (which installs kubernetes-validate), or: python -m unittest -v test_manifests
"""

import copy
import tomllib
import unittest
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
# The official SpinApp CRD, in the shared contracts next to the repository.
CRD = ROOT.parent / "shared" / "contracts" / "spinkube" / "core.spinkube.dev_spinapps.yaml"
# The Kubernetes minor version whose built-in schemas the Secret and the CronJob must satisfy.
KUBERNETES_VERSION = "1.33"


def load(name):
    with open(HERE / name, encoding="utf-8") as f:
        return yaml.safe_load(f)


def spin_variables():
    """name -> declaration, from spin.toml's [variables]."""
    with open(ROOT / "spin.toml", "rb") as f:
        return tomllib.load(f)["variables"]


def strict(schema):
    """The CRD's schema as the API server applies it with strict field validation (kubectl's
    default): an object that lists its properties accepts no others."""
    schema = copy.deepcopy(schema)

    def close(node):
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    return schema


def spinapp_schema():
    with open(CRD, encoding="utf-8") as f:
        crd = yaml.safe_load(f)
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return strict(version["schema"]["openAPIV3Schema"])


def spinapp_errors(spinapp):
    validator = jsonschema.Draft202012Validator(spinapp_schema())
    return sorted(e.message for e in validator.iter_errors(spinapp))


def variable_problems(spinapp, secret, declared):
    """Every way the SpinApp's variables and the Secret's keys disagree with spin.toml."""
    problems = []
    bound = {}
    for var in spinapp["spec"].get("variables", []):
        if var["name"] in bound:
            problems.append(f"{var['name']}: bound twice")
        bound[var["name"]] = var
    problems += [f"{n}: in spin.toml, not bound in the SpinApp" for n in declared.keys() - bound.keys()]
    problems += [f"{n}: bound in the SpinApp, not in spin.toml" for n in bound.keys() - declared.keys()]
    secret_keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    for name in sorted(declared.keys() & bound.keys()):
        ref = bound[name].get("valueFrom", {}).get("secretKeyRef")
        if declared[name].get("secret"):
            if ref is None or ref.get("name") != secret["metadata"]["name"]:
                problems.append(f"{name}: secret, so it must come from the Secret")
            elif ref.get("key") not in secret_keys:
                problems.append(f"{name}: the Secret has no key {ref.get('key')!r}")
        elif ref is not None:
            problems.append(f"{name}: not secret, yet taken from a Secret")
    wanted = {n for n, d in declared.items() if d.get("secret")}
    problems += [f"{k}: a key of the Secret but no secret variable" for k in sorted(secret_keys - wanted)]
    return problems


class SpinApp(unittest.TestCase):
    def test_matches_the_spinapp_crd(self):
        self.assertEqual(spinapp_errors(load("spinapp.yaml")), [])

    def test_the_crd_check_refuses_what_the_api_server_refuses(self):
        spinapp = load("spinapp.yaml")
        spinapp["spec"]["replicas"] = "one"
        spinapp["spec"]["variables"][0]["secretRef"] = "x"
        errors = spinapp_errors(spinapp)
        self.assertTrue(any("'one' is not of type 'integer'" in e for e in errors), errors)
        self.assertTrue(any("'secretRef' was unexpected" in e for e in errors), errors)

    def test_binds_every_variable_of_spin_toml_and_no_other(self):
        problems = variable_problems(load("spinapp.yaml"), load("secret.yaml"), spin_variables())
        self.assertEqual(problems, [])

    def test_the_variable_check_finds_missing_extra_and_exposed_secrets(self):
        spinapp, secret = load("spinapp.yaml"), load("secret.yaml")
        declared = dict(spin_variables(), new_setting={"default": "1"})
        variables = spinapp["spec"]["variables"]
        variables.append({"name": "typo_setting", "value": "1"})
        (token,) = [v for v in variables if v["name"] == "discord_bot_token"]
        token.pop("valueFrom")
        token["value"] = "plain text"
        secret["stringData"]["leftover"] = ""
        self.assertEqual(
            sorted(variable_problems(spinapp, secret, declared)),
            [
                "discord_bot_token: secret, so it must come from the Secret",
                "leftover: a key of the Secret but no secret variable",
                "new_setting: in spin.toml, not bound in the SpinApp",
                "typo_setting: bound in the SpinApp, not in spin.toml",
            ],
        )


class Kubernetes(unittest.TestCase):
    def test_secret_and_cronjob_match_the_kubernetes_schemas(self):
        for name in ("secret.yaml", "cronjob.yaml"):
            with self.subTest(name):
                kubernetes_validate.validate(load(name), KUBERNETES_VERSION, strict=True)

    def test_the_kubernetes_check_refuses_unknown_fields(self):
        cronjob = load("cronjob.yaml")
        cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["enviroment"] = []
        with self.assertRaises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(cronjob, KUBERNETES_VERSION, strict=True)

    def test_the_tick_reaches_the_app_with_its_secret(self):
        spinapp, secret, cronjob = load("spinapp.yaml"), load("secret.yaml"), load("cronjob.yaml")
        (container,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        # The operator's Service for a SpinApp has the SpinApp's name and listens on port 80.
        self.assertEqual(env["TICK_URL"]["value"], f"http://{spinapp['metadata']['name']}/reactions/tick")
        ref = env["APP_SECRET"]["valueFrom"]["secretKeyRef"]
        self.assertEqual(ref, {"name": secret["metadata"]["name"], "key": "app_secret"})
        # The shell expands it inside its printf builtin; kubelet's $(VAR) would put it in argv.
        script = " ".join(container["command"] + container["args"])
        self.assertIn('printf \'Authorization: Bearer %s\' "$APP_SECRET" |', script)
        self.assertIn("-H @-", script)
        self.assertNotIn("$(APP_SECRET)", script)


if __name__ == "__main__":
    unittest.main()
