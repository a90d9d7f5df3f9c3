"""The app image's uWSGI embeds the base image's Python linked in statically: Debian's optimised build, the one
/usr/bin/python3 runs (docker/app/build_uwsgi.py; docs/benchmark.md: The Python uWSGI embeds), with every standard
module an app may import, and UTF-8 for file names and text (the image sets LANG=C.UTF-8)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import ROOT
from tools import settings

UWSGI = "/opt/venv/bin/uwsgi"

# What an app may use from the standard library's compiled modules (each a check printed as true or false), and the
# virtualenv's packages. _sha2 is the module whose objects Debian's static library leaves out.
CHECKS = {
    "hashlib's SHA-256 (OpenSSL)": "hashlib.sha256(b'abc').hexdigest().startswith('ba7816bf')",
    "Python's own SHA-2 (_sha2)": "_sha2.sha512(b'abc').hexdigest().startswith('ddaf35a1')",
    "ssl": "ssl.OPENSSL_VERSION.startswith('OpenSSL')",
    "sqlite3": "sqlite3.connect(':memory:').execute('select 1').fetchone() == (1,)",
    "zlib": "zlib.decompress(zlib.compress(b'x' * 100)) == b'x' * 100",
    "xml (pyexpat)": "xml.etree.ElementTree.fromstring('<a b=\"1\"/>').get('b') == '1'",
    "decimal (_decimal)": "str(decimal.Decimal('0.1') + decimal.Decimal('0.2')) == '0.3'",
    "ctypes": "ctypes.sizeof(ctypes.c_int) == 4",
    "lzma and bz2": "lzma.decompress(lzma.compress(b'x')) == bz2.decompress(bz2.compress(b'x')) == b'x'",
    "UTF-8 file names and text": "sys.getfilesystemencoding() == 'utf-8' == locale.getencoding().lower()",
    "the virtualenv's packages": "sys.prefix == '/opt/venv' and bool(importlib.util.find_spec('prometheus_client'))",
}
SCRIPT = """
import bz2, ctypes, decimal, hashlib, importlib.util, json, locale, lzma, sqlite3, ssl, sys, xml.etree.ElementTree, zlib
import _sha2
checks = {checks}
# uWSGI ends the process without flushing the output.
print("RESULT " + json.dumps({{name: bool(eval(expr)) for name, expr in checks.items()}}), flush=True)
"""


def in_image(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", "run", "--rm", "-i", "--entrypoint", argv[0], settings.get("APP_IMAGE"), *argv[1:]],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_uwsgi_links_no_libpython_so():
    linked = in_image("ldd", UWSGI)
    assert linked.returncode == 0, linked.stderr
    assert "libpython" not in linked.stdout, f"uWSGI loads the shared (unoptimised) libpython:\n{linked.stdout}"


@pytest.fixture(scope="module")
def embedded_checks() -> dict[str, bool]:
    """Each check's result, from a script run by uWSGI's embedded interpreter (--pyrun), on the app's virtualenv."""
    script = SCRIPT.format(checks=repr(CHECKS))
    result = in_image("sh", "-c", f"cat > /tmp/checks.py && {UWSGI} --virtualenv /opt/venv --pyrun /tmp/checks.py",
                      stdin=script)  # fmt: skip
    # uWSGI sends what its workers print to its log, stderr.
    lines = [line for line in result.stderr.splitlines() if line.startswith("RESULT ")]
    assert lines, f"the embedded interpreter printed no result (rc {result.returncode}):\n{result.stderr[-3000:]}"
    return json.loads(lines[-1].removeprefix("RESULT "))


@pytest.mark.parametrize("check", CHECKS)
def test_the_embedded_python_has_what_an_app_may_import(check, embedded_checks):
    assert embedded_checks[check] is True, f"{check}: {CHECKS[check]} is false under uWSGI's embedded Python"


def system_packages():
    spec = importlib.util.spec_from_file_location("system_packages", ROOT / "docker" / "app" / "system_packages.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # where its dataclass looks itself up
    spec.loader.exec_module(module)
    return module


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
    module = system_packages()
    links = module.Links()
    module.parse_ldd(output, [Path(file) for file in files], links)
    assert links.found == found
    assert links.missing == {name: Path(file) for name, file in missing.items()}
