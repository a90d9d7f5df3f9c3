"""The app image's build, on the host: the requirement files its build stage gets (docker/app/requirement_files.py),
how it reads the libraries the virtualenv's compiled modules link against (docker/app/system_packages.py), and
`make dev`'s watcher comparing the working copy's requirement files with the ones the image was built with
(docker/app/dev_watch.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import image_module

UWSGI = "/opt/venv/bin/uwsgi"


MODULE = "/opt/venv/lib/python3.13/site-packages/psycopg2/_psycopg.so"
UWSGI_LDD = f"""{UWSGI}:
\tlinux-vdso.so.1 (0x00007ffd)
\tlibpcre2-8.so.0 => /lib/x86_64-linux-gnu/libpcre2-8.so.0 (0x00007f1)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f2)
"""
# ldd's output (a "file:" line before each one's when it is given several) -> libraries found, and the ones missing
# with the file that needs each (docker/app/system_packages.py: parse_ldd).
LDD_OUTPUTS = {
    "one file, no header": (
        [MODULE],
        "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibpq.so.5 => /lib/x86_64-linux-gnu/libpq.so.5 (0x00007f0)\n",
        {"/lib/x86_64-linux-gnu/libpq.so.5"},
        {},
    ),
    "one missing, the other found": (
        [UWSGI, MODULE],
        UWSGI_LDD + f"{MODULE}:\n\tlibpq.so.5 => not found\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x7f3)\n",
        {"/lib/x86_64-linux-gnu/libpcre2-8.so.0", "/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/libc.so.6"},
        {"libpq.so.5": MODULE},
    ),
    "a static file among them": (
        ["/opt/venv/bin/static", UWSGI],
        "/opt/venv/bin/static:\n\tnot a dynamic executable\n" + UWSGI_LDD,
        {"/lib/x86_64-linux-gnu/libpcre2-8.so.0", "/lib64/ld-linux-x86-64.so.2"},
        {},
    ),
}


@pytest.mark.parametrize("case", LDD_OUTPUTS)
def test_the_build_reads_each_shared_library_ldd_finds_and_each_it_misses_with_the_file_needing_it(case):
    files, output, found, missing = LDD_OUTPUTS[case]
    module = image_module("system_packages")
    links = module.Links()
    module.parse_ldd(output, [Path(file) for file in files], links)
    assert links.found == found
    assert links.missing == {name: [Path(file)] for name, file in missing.items()}
    assert links.unloadable() == {name: Path(file) for name, file in missing.items()}


# psycopg-binary 3.3.4's wheel, as auditwheel bundles its libraries: the module finds them through its RPATH
# ($ORIGIN/../psycopg_binary.libs), which the loader applies to the libraries it loads for it too; the bundled
# libgssapi_krb5 has no search path of its own, so ldd of it alone finds none of its neighbours.
SITE = "/opt/venv/lib/python3.13/site-packages"
PQ_MODULE = f"{SITE}/psycopg_binary/pq.cpython-313-x86_64-linux-gnu.so"
BUNDLED = f"{SITE}/psycopg_binary.libs"
GSSAPI = f"{BUNDLED}/libgssapi_krb5-497db0c6.so.2.2"
PQ_LDD = f"""{PQ_MODULE}:
\tlibpq-2be5f14a.so.5.18 => {SITE}/psycopg_binary/../psycopg_binary.libs/libpq-2be5f14a.so.5.18 (0x7f1)
\tlibgssapi_krb5-497db0c6.so.2.2 => {SITE}/psycopg_binary/../psycopg_binary.libs/libgssapi_krb5-497db0c6.so.2.2 (0x7f2)
\tlibcom_err-2abe824b.so.2.1 => {SITE}/psycopg_binary/../psycopg_binary.libs/libcom_err-2abe824b.so.2.1 (0x7f3)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x7f4)
"""
GSSAPI_LDD = f"""{GSSAPI}:
\tlibcom_err-2abe824b.so.2.1 => not found
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x7f4)
"""
# ldd's output for a virtualenv's files -> the libraries the build refuses, with the file named for each.
UNLOADABLE = {
    "a bundled library's neighbours, found through the module that loads it": (PQ_LDD + GSSAPI_LDD, {}),
    "the same bundled library, with nothing in the virtualenv loading it": (
        GSSAPI_LDD,
        {"libcom_err-2abe824b.so.2.1": GSSAPI},
    ),
    "a library missing in the module's own chain": (
        PQ_LDD.replace(f"{SITE}/psycopg_binary/../psycopg_binary.libs/libcom_err-2abe824b.so.2.1 (0x7f3)", "not found")
        + GSSAPI_LDD,
        {"libcom_err-2abe824b.so.2.1": PQ_MODULE},
    ),
}


@pytest.mark.parametrize("case", UNLOADABLE)
def test_the_build_refuses_a_library_the_loader_would_not_find_and_not_one_a_bundled_library_finds_through_its_module(
    case,
):
    """psycopg[binary] 3.3.4 (pgAdmin 4 9.18 from PyPI requires it) failed the app image's build: its bundled
    libraries were read one by one, as if each were loaded alone, and ten of them named as needing libraries no
    package holds (seen failing before: the first case gave libcom_err for libgssapi_krb5)."""
    output, unloadable = UNLOADABLE[case]
    module = image_module("system_packages")
    links = module.Links()
    files = sorted({line[:-1] for line in output.splitlines() if line.endswith(":")})
    module.parse_ldd(output, [Path(file) for file in files], links)
    assert links.unloadable() == {name: Path(file) for name, file in unloadable.items()}


# An app's requirement files (name -> text) -> the files its build stage gets (docker/app/requirement_files.py).
NAMED_FILES = {
    "requirements.txt alone": ({"requirements.txt": "Django==5.2\n", "other.txt": "six\n"}, ["requirements.txt"]),
    "nested, as cookiecutter-django's": (
        {
            "requirements.txt": "-r requirements/production.txt  # the production ones\n",
            "requirements/production.txt": "-r base.txt\ngunicorn\n",
            "requirements/base.txt": "--constraint=pins.txt\nDjango\n",
            "requirements/pins.txt": "Django==5.2\n",
        },
        ["requirements.txt", "requirements/production.txt", "requirements/base.txt", "requirements/pins.txt"],
    ),
    "every spelling pip reads": (
        {
            "requirements.txt": "-ra.txt\n--requirement b.txt\n-c \\\n c.txt\n-r https://example.com/r.txt\n-r a.txt\n",
            "a.txt": "",
            "b.txt": "",
            "c.txt": "# -r nothing.txt\n",
        },
        ["requirements.txt", "a.txt", "b.txt", "c.txt"],
    ),
}
NAMED_REFUSED = {
    "a file outside the app": (
        {"requirements.txt": "-r ../shared.txt\n"},
        "requirements.txt:1 names ../shared.txt, which is outside APP_SRC: keep the requirement files in it",
    ),
    "a file that is not there": (
        {"requirements.txt": "Django\n-r base.txt\n"},
        "requirements.txt:2 names base.txt, which is not a file in APP_SRC",
    ),
    "the app itself, editable": (
        {"requirements.txt": "-e .\n"},
        "requirements.txt:1 installs '-e .', a path in the app",
    ),
    "a package in the app": (
        {"requirements.txt": "-r more.txt\n", "more.txt": "six\n./libs/mine\n"},
        "more.txt:2 installs './libs/mine', a path in the app",
    ),
    "a file: URL": ({"requirements.txt": "mine @ file:///srv/mine\n"}, "requirements.txt:1 installs 'mine @ file"),
}


def write_files(root: Path, files: dict[str, str]) -> Path:
    app = root / "app"
    for name, text in files.items():
        (app / name).parent.mkdir(parents=True, exist_ok=True)
        (app / name).write_text(text)
    return app


@pytest.mark.parametrize("case", NAMED_FILES)
def test_the_build_stage_gets_requirements_txt_and_every_requirement_file_it_names(case, tmp_path):
    files, named = NAMED_FILES[case]
    assert image_module("requirement_files").named_files(write_files(tmp_path, files), "requirements.txt") == named


@pytest.mark.parametrize("case", NAMED_REFUSED)
def test_a_requirement_the_build_stage_cannot_have_is_refused_naming_the_line(case, tmp_path):
    files, message = NAMED_REFUSED[case]
    module = image_module("requirement_files")
    with pytest.raises(module.Refused) as refused:
        module.named_files(write_files(tmp_path, files), "requirements.txt")
    assert str(refused.value).startswith(message), refused.value


# The working copy's requirement files against the image's record of them (name -> text; None: not there) -> what
# the watcher says (None: nothing, it reloads).
BUILT = {"requirements.txt": "-r requirements/base.txt\n", "requirements/base.txt": "Django==5.2\n"}
WORKING_COPIES = {
    "as built": ({}, None),
    "the file it names changed": ({"requirements/base.txt": "Django==5.2\nsix\n"}, "requirements/base.txt changed"),
    "requirements.txt changed": ({"requirements.txt": "Django==5.2\n"}, "requirements.txt changed"),
    "the file it names gone": (
        {"requirements/base.txt": None},
        "requirements/base.txt is missing from the working copy",
    ),
}


@pytest.mark.parametrize("case", WORKING_COPIES)
def test_make_devs_watcher_compares_every_requirement_file_the_image_was_built_with(case, tmp_path, monkeypatch):
    changes, said = WORKING_COPIES[case]
    watcher = image_module("dev_watch")
    built, working = tmp_path / "built", tmp_path / "working"
    for root, files in ((built, BUILT), (working, {**BUILT, **changes})):
        for name, text in files.items():
            if text is not None:
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).write_text(text)
    monkeypatch.setattr(watcher, "BUILT_REQUIREMENTS", built)
    monkeypatch.setattr(watcher, "APP_DIR", working)
    problem = watcher.requirements_problem()
    assert (problem or "").startswith(said) if said else problem is None, problem
