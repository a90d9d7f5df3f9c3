"""Each default is written once, in defaults.env: the compose files, the Makefile and the tools read it
(tools/settings.py), and the README's configuration table agrees with it."""

from __future__ import annotations

import re

import pytest

from tools import settings
from tools.compose import ROOT, Compose

DEFAULTS = settings.defaults()
COMPOSE_FILES = sorted(ROOT.glob("compose*.yaml")) + sorted((ROOT / "bench").glob("compose*.yaml"))
# `${NAME:-fallback}` where NAME has a default in defaults.env: a second copy of it (a fallback to another setting,
# `${SERVER_NAMES:-${ALLOWED_HOSTS}}`, is no copy).
RESTATED = re.compile(r"\$\{([A-Z_]+):?-(?!\$\{)")
README_ROW = re.compile(r"^\| (`[A-Z_]+`(?:(?:, | / )`[A-Z_]+`)*) \| ([^|]+) \|")


def same_path(value: str) -> str:
    """`./backups` and `backups/` are one path."""
    return value.removeprefix("./").rstrip("/")


def readme_section(title: str) -> str:
    """The README's section of that title, to the next one."""
    return (ROOT / "README.md").read_text().split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def readme_defaults() -> dict[str, str | None]:
    """The configuration table's default for each variable, as written (the first code span; rows may list several
    variables with as many values, separated the same way); None where the row points to another section."""
    found: dict[str, str | None] = {}
    for line in readme_section("Configuration").splitlines():
        match = README_ROW.match(line)
        if not match:
            continue
        names = re.findall(r"`([A-Z_]+)`", match.group(1))
        values = re.findall(r"`([^`]*)`", match.group(2))
        if len(names) == len(values):
            found.update(zip(names, values, strict=True))
        else:
            found.update((name, values[0] if values else None) for name in names)
    return found


@pytest.mark.parametrize("compose_file", COMPOSE_FILES, ids=lambda path: path.name)
def test_no_compose_file_restates_a_default_of_defaults_env(compose_file):
    restated = {name for name in RESTATED.findall(compose_file.read_text()) if name in DEFAULTS}
    assert not restated, f"{compose_file.name} restates the default of {sorted(restated)}: defaults.env has it"


def test_the_makefile_defines_no_setting_of_defaults_env():
    makefile = (ROOT / "Makefile").read_text()
    defined = {name for name in re.findall(r"^([A-Z_]+)\s*[:?]?=", makefile, re.MULTILINE) if name in DEFAULTS}
    assert not defined, f"the Makefile defines {sorted(defined)}: their defaults are defaults.env's"


def test_no_tool_or_test_spells_out_an_image_default():
    images = {DEFAULTS[name] for name in settings.IMAGES}
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("tools", "tests")
        for path in (ROOT / folder).rglob("*.py")
        if any(image in path.read_text() for image in images)
    ]
    assert not offenders, f"{offenders} spell out an image default: read it with tools.settings.get()"


def test_the_readme_configuration_table_gives_the_defaults_of_defaults_env():
    documented = readme_defaults()
    differing = {
        name: (documented[name], value)
        for name, value in DEFAULTS.items()
        # An empty default means "the app's, or another setting's": the table says which.
        if value and documented.get(name) is not None and same_path(documented[name]) != same_path(value)
    }
    assert not differing, f"README default != defaults.env: {differing}"
    missing = sorted(set(DEFAULTS) - set(documented))
    assert not missing, f"the README's configuration table does not document {missing}"


def test_compose_typed_by_hand_reads_the_same_defaults_through_the_env_link():
    env_file = ROOT / ".env"
    assert env_file.is_symlink() and env_file.resolve() == settings.DEFAULTS_FILE, ".env must link to defaults.env"


DURATIONS = {"5s": 5.0, "20s": 20.0, "1m30s": 90.0, "500ms": 0.5, "1.5s": 1.5, "0s": 0.0}
NOT_DURATIONS = ["5", "", "fast", "5 s", "-5s", "5sec", "s"]


@pytest.mark.parametrize("text", [*DURATIONS, *NOT_DURATIONS])
def test_a_duration_setting_reads_as_compose_reads_it_and_a_number_without_its_unit_is_refused(text):
    if text in DURATIONS:
        assert settings.duration_seconds(text) == pytest.approx(DURATIONS[text])
    else:
        with pytest.raises(ValueError, match="is not a duration with its unit"):
            settings.duration_seconds(text)


def test_the_default_health_interval_is_a_duration():
    assert settings.duration_seconds(DEFAULTS["HEALTH_INTERVAL"]) > 0


def readme_settings() -> set[str]:
    """Every variable the README's tables of settings name: the configuration table's and Bring your own WSGI app's."""
    names: set[str] = set()
    for title in ("Configuration", "Bring your own WSGI app"):
        for line in readme_section(title).splitlines():
            if line.startswith("| `"):
                names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]))
    return names


# The values a sentinel cannot stand in for: compose reads these settings itself, or casts them (a count).
AS_GIVEN = {"COMPOSE_PROFILES": "postgres", "COMPOSE_PROJECT_NAME": "wct-settings", "APP_REPLICAS": "4242"}
# Pins the README lists beside the settings, which the tests check against the images (test_chain): no container reads
# them.
PINS = {"NGINX_SERIES", "PYTHON_SERIES"}


def test_every_setting_the_readme_offers_reaches_a_tool_or_the_stacks_containers():
    """A setting in the README's tables is read by a tool (`make` passes its command line on) or lands in what compose
    makes of the stack when given (`make up NAME=value`): PRESTART_CMD reached no container for a long time, and
    SQLITE_TIMEOUT, DB_WAIT_TIMEOUT, DB_CONN_MAX_AGE and API_PAGE_SIZE neither, all of them changing nothing."""
    host = (
        "".join(path.read_text() for path in sorted((ROOT / "tools").rglob("*.py"))) + (ROOT / "Makefile").read_text()
    )
    offered = readme_settings() - PINS
    stack = sorted(name for name in offered if f'"{name}"' not in host and f"$({name})" not in host)
    given = {name: AS_GIVEN.get(name, f"sentinel-{name.lower()}") for name in stack}
    rendered = "".join(
        Compose(files=files, env=given).run("config", capture=True).stdout
        # The split topology's files as `make up` and as `make swarm-up` render them (the single one extends them).
        for files in (("compose.yaml",), ("compose.yaml", "compose.swarm.yaml"))
    )
    unread = [name for name, value in given.items() if value not in rendered]
    assert not unread, f"offered by the README, read by no tool and passed to no container: {unread}"
