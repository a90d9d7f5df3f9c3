"""`make clean` and `make clean-data`: what each removes is listed here, and printed as it goes.

- clean: the project's containers (either topology), its images (every tag of APP_IMAGE, NGINX_IMAGE and
  SINGLE_IMAGE's repositories, and the tests' images, TEST_IMAGES), the engine's dangling build cache, the test
  virtualenv (VENV) and the build leftovers (LEFTOVERS). Data is kept: volumes, SECRETS_DIR, backups.
- `--replaced` alone (`make test` ends with it; clean does it too): the images a rebuild of a tag left untagged
  ("dangling"), of this project's pieces only (by their version labels) and unused by any container. Every rebuilt
  tag leaves one; `make test` rebuilds many (about 20 images, 100 MB, a run).
- clean-data: all of that, then the project's volumes (the database: app-data, postgres-data) and SECRETS_DIR (the
  secret key, the TLS certificate). It asks first; CONFIRM=yes answers for scripts.

`DRY_RUN=1` prints what would be removed and removes nothing. Settings from the environment (the Makefile's):
COMPOSE_PROJECT_NAME, APP_IMAGE, NGINX_IMAGE, SINGLE_IMAGE, TEST_IMAGES, VENV, LEFTOVERS, SECRETS_DIR, CONFIRM.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tools import settings
from tools.compose import PROJECT_LABEL, ROOT
from tools.stack import LABELS, project_name


@dataclass
class Step:
    """One removal: what it is, in words, and how (a command, or paths)."""

    what: str
    command: tuple[str, ...] = ()
    paths: tuple[Path, ...] = ()
    # Data: only clean-data removes it, after asking.
    data: bool = False

    def describe(self) -> str:
        how = " ".join(self.command) if self.command else " ".join(str(path) for path in self.paths)
        return f"{self.what}: {how}"


def env(name: str, default: str = "") -> str:
    return os.environ.get(name) or default


def local(raw: str) -> Path:
    return Path(raw) if Path(raw).is_absolute() else ROOT / raw


def docker_lines(*args: str) -> list[str]:
    out = subprocess.run(["docker", *args], capture_output=True, text=True, check=False).stdout
    return [line for line in out.splitlines() if line.strip()]


def image_refs() -> list[str]:
    """Every tag of the project's image repositories and of the tests' images, each once (removing an image by each
    of its tags, never by an ID shared by several tags, is what keeps `docker rmi` from "No such image")."""
    repositories = [settings.get(name).rsplit(":", 1)[0] for name in settings.IMAGES]
    patterns = [*repositories, *env("TEST_IMAGES", "wsgi-chain-test/*").split()]
    refs: dict[str, None] = {}
    for pattern in patterns:
        for ref in docker_lines("images", "--format", "{{.Repository}}:{{.Tag}}", pattern):
            if not ref.endswith(":<none>"):
                refs[ref] = None
    return list(refs)


def replaced_images() -> list[Step]:
    """The pieces' images no tag names any more, one prune per piece's label (a prune's filters all must match);
    a prune leaves any image a container still uses."""
    return [
        Step(f"untagged {piece} images", ("docker", "image", "prune", "--force", "--filter", f"label={label}"))
        for label, piece in LABELS.items()
    ]


def plan(data: bool) -> list[Step]:
    project = project_name()
    steps = [
        Step(
            f"the containers of compose project {project} (either topology; volumes kept)",
            ("docker", "compose", "-p", project, "down", "--remove-orphans"),
        )
    ]
    if refs := image_refs():
        steps.append(Step(f"{len(refs)} image tags of the project and the tests", ("docker", "rmi", *refs)))
    steps += replaced_images()
    if env("CLEAN_BUILD_CACHE", "yes") == "yes":
        steps.append(Step("the engine's dangling build cache", ("docker", "builder", "prune", "--force")))
    files = [local(env("VENV", ".venv"))]
    files += [local(raw) for raw in env("LEFTOVERS", ".build .pytest_cache .ruff_cache results").split()]
    if existing := tuple(path for path in files if path.exists()):
        steps.append(Step("the test virtualenv and build leftovers", paths=existing))
    if data:
        if volumes := docker_lines("volume", "ls", "-q", "--filter", f"label={PROJECT_LABEL}={project}"):
            steps.append(Step(f"the data volumes of {project}", ("docker", "volume", "rm", *volumes), data=True))
        secrets = local(env("SECRETS_DIR", ".secrets"))
        if secrets.exists():
            steps.append(Step("the secret key and TLS certificate", paths=(secrets,), data=True))
    return steps


def confirmed(steps: list[Step]) -> bool:
    """clean-data asks on a terminal; anywhere else CONFIRM=yes is the answer."""
    if env("CONFIRM") == "yes":
        return True
    doomed = [step.describe() for step in steps if step.data]
    if not sys.stdin.isatty():
        print(
            f"clean-data: this deletes {'; '.join(doomed) or 'no data (none found)'}; "
            "nothing was removed: run it on a terminal to answer, or with CONFIRM=yes",
            file=sys.stderr,
        )
        return False
    print("clean-data: this deletes, for good:\n  " + "\n  ".join(doomed or ["no data (none found)"]))
    return input("Type yes to delete them: ").strip() == "yes"


def run(step: Step) -> bool:
    if step.paths:
        for path in step.paths:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        print(f"clean: removed {step.describe()}")
        return True
    result = subprocess.run(step.command, capture_output=True, text=True, check=False)
    if result.returncode == 0:
        print(f"clean: removed {step.what}")
        return True
    # Say why once (e.g. an image a running container of another project still uses), not once per image.
    reasons = sorted({line.split(": ", 1)[-1] for line in result.stderr.splitlines() if line.strip()})
    print(f"clean: could not remove all of {step.what}: {'; '.join(reasons)[:600]}", file=sys.stderr)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.clean")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--data", action="store_true", help="also the data volumes and SECRETS_DIR (asks first)")
    which.add_argument("--replaced", action="store_true", help="only the pieces' images no tag names any more")
    args = parser.parse_args(argv)
    steps = replaced_images() if args.replaced else plan(args.data)
    if env("DRY_RUN") not in ("", "0"):
        for step in steps:
            print(f"clean: would remove {step.describe()}")
        return 0
    if args.data and not confirmed(steps):
        return 1
    results = [run(step) for step in steps]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
