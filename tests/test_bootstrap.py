"""The fresh-machine bootstrap: its parsing of the host, that it does nothing where nothing is missing, and the apt
helper it shares with the tests' host tools."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.harness import ROOT
from tools import bootstrap, debian


def test_the_suite_comes_from_the_base_image_tag():
    assert bootstrap.suite_of("debian:trixie-slim") == "trixie"
    assert bootstrap.suite_of("debian:bookworm") == "bookworm"
    with pytest.raises(bootstrap.BootstrapError, match="cannot tell the Debian suite"):
        bootstrap.suite_of("debian:latest")


def test_the_host_mirror_is_read_from_deb822_and_one_line_sources(tmp_path):
    apt = tmp_path / "etc/apt"
    (apt / "sources.list.d").mkdir(parents=True)
    (apt / "sources.list.d/debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n\n"
        "Types: deb\nURIs: http://disabled.example/debian\nSuites: bookworm\nEnabled: no\n"
    )
    (apt / "sources.list").write_text("# comment\ndeb [arch=amd64] http://other.example/debian bookworm main\n")
    assert bootstrap.host_mirrors(apt) == ("http://mirror.example/debian", "http://mirror.example/debian-security")


def test_extra_ca_certs_must_name_files(tmp_path):
    cert = tmp_path / "corp.crt"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    assert cert in bootstrap.ca_files(str(cert))
    with pytest.raises(bootstrap.BootstrapError, match="not a file"):
        bootstrap.ca_files(str(tmp_path / "missing.crt"))


def test_the_generated_apt_sources_cover_the_suite_updates_and_security(tmp_path):
    (tmp_path / "etc/apt/sources.list.d").mkdir(parents=True)
    bootstrap.write_apt_sources(tmp_path, "trixie", "http://m/debian", "http://m/debian-security")
    text = (tmp_path / "etc/apt/sources.list.d/debian.sources").read_text()
    assert "Suites: trixie trixie-updates" in text
    assert "Suites: trixie-security" in text


def test_on_a_ready_machine_the_bootstrap_does_nothing():
    # -S: no site-packages, as the host's bare python3 runs it before any virtualenv exists.
    result = subprocess.run(
        [sys.executable, "-S", "-m", "tools.bootstrap"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3, lines
    assert all("nothing to do" in line for line in lines), lines


def test_the_os_release_of_debian_and_ubuntu_is_debian_like_and_others_are_not(tmp_path):
    release = tmp_path / "os-release"
    for text, expected in (
        ("ID=debian\n", True),
        ("ID=ubuntu\nID_LIKE=debian\n", True),
        ('ID=linuxmint\nID_LIKE="ubuntu debian"\n', True),
        ("ID=fedora\n", False),
        ('ID=alpine\nID_LIKE=""\n', False),
    ):
        release.write_text(text)
        assert debian.is_debian_like(release) is expected, text
    assert debian.is_debian_like(tmp_path / "absent") is False


@pytest.mark.skipif(not debian.is_debian_like(), reason="dpkg answers only on Debian/Ubuntu")
def test_an_installed_package_is_not_missing_and_installing_it_again_runs_nothing():
    assert debian.missing(["dpkg", "wsgi-chain-no-such-package"]) == ["wsgi-chain-no-such-package"]
    assert debian.install(["dpkg"]) == []
