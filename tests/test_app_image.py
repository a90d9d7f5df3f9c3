"""The app image's uWSGI embeds the base image's Python linked in statically: Debian's optimised build, the one
/usr/bin/python3 runs (docker/app/build_uwsgi.py; docs/benchmark.md: The Python uWSGI embeds), with every standard
module an app may import, and UTF-8 for file names and text (the image sets LANG=C.UTF-8)."""

from __future__ import annotations

import json
import subprocess

import pytest

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
