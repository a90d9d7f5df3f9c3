"""The fresh-machine bootstrap: its parsing of the host, and that it does nothing where nothing is missing."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.harness import ROOT

spec = importlib.util.spec_from_file_location("bootstrap", ROOT / "docker/bootstrap.py")
bootstrap = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bootstrap)


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
    result = subprocess.run([sys.executable, str(ROOT / "docker/bootstrap.py")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3, lines
    assert all("nothing to do" in line for line in lines), lines
