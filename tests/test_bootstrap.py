"""The fresh-machine bootstrap: its parsing of the host, that it does nothing where nothing is missing, and the apt
helper it shares with the tests' host tools."""

from __future__ import annotations

import struct
import subprocess
import sys

import pytest

from tests.harness import ROOT
from tools import bootstrap, buildkit_db, debian, stack


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


# --- the engine's BuildKit cache database: a warning when its free list makes every build slow ----------------------


def bbolt_file(path, free: int, pages: int = 600_000, txids: tuple[int, int] = (7, 8), freelist_pages=(2, 3)):
    """A bbolt file's first pages as bbolt writes them: two meta pages (the one with the higher txid is current, each
    naming its free list page) and the free lists, a count past 0xFFFE stored as the list's first entry."""
    page = 4096
    data = bytearray(page * 4)
    for index, (txid, freelist) in enumerate(zip(txids, freelist_pages, strict=True)):
        struct.pack_into("<QHHI", data, index * page, index, 0x04, 0, 0)
        struct.pack_into(
            "<IIIIQQQQQQ", data, index * page + 16, buildkit_db.MAGIC, 2, page, 0, 1, 0, freelist, pages, txid, 0
        )
        count = free if txid == max(txids) else 3  # the older meta page's list: stale, and short
        struct.pack_into("<QHHI", data, freelist * page, freelist, 0x10, min(count, 0xFFFF), 0)
        if count >= 0xFFFF:
            struct.pack_into("<Q", data, freelist * page + 16, count)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("free", "txids", "warned"),
    [
        (11, (7, 8), False),  # a fresh database: a handful of free pages
        (99_999, (7, 8), False),  # just under the limit
        (564_493, (7, 8), True),  # the one measured (docs/operations.md): 97 % free, a list past 0xFFFF entries
        (564_493, (9, 8), True),  # the current meta page is the first one
        (40_000, (7, 8), False),  # a short list, counted in the page header
    ],
)
def test_the_engine_build_cache_database_is_warned_of_only_when_its_free_list_is_long(tmp_path, free, txids, warned):
    bbolt_file(buildkit_db.cache_db(str(tmp_path)), free, txids=txids)
    found = buildkit_db.read(buildkit_db.cache_db(str(tmp_path)))
    assert found is not None and found.free == free and found.pages == 600_000, found
    line = buildkit_db.warning(str(tmp_path))
    assert (line is not None) is warned, line
    if warned:
        assert str(buildkit_db.cache_db(str(tmp_path))) in line and "move that file away" in line, line
        assert f"{free / 600_000:.0%} free" in line and f"({free * 8 / 1e6:.1f} MB)" in line, line


def test_no_warning_comes_of_a_missing_short_or_foreign_build_cache_database(tmp_path):
    assert buildkit_db.warning(str(tmp_path / "no-engine-here")) is None
    foreign = buildkit_db.cache_db(str(tmp_path))
    foreign.parent.mkdir(parents=True)
    for data in (b"", b"\0" * 100, b"not a bbolt file" * 1000):
        foreign.write_bytes(data)
        assert buildkit_db.read(foreign) is None and buildkit_db.warning(str(tmp_path)) is None, data


def test_make_up_shows_the_bootstraps_warning_and_still_folds_its_nothing_to_do_lines(monkeypatch, capsys):
    said = [
        "bootstrap: engine  docker engine answers; nothing to do",
        f"{bootstrap.WARNING}the engine's BuildKit cache database (...) is 97% free pages",
        "bootstrap: compose docker compose 2.40.3 found; nothing to do",
        "bootstrap: base    debian:trixie-slim present; nothing to do",
    ]
    monkeypatch.setattr(stack, "run_step", lambda *args, **kwargs: (0, said, 0.1))
    monkeypatch.setattr(stack, "verbose", lambda: False)
    stack.bootstrap()
    out, err = capsys.readouterr()
    assert err.strip() == said[1], err
    assert out.startswith("up: bootstrap") and "nothing to do" not in out, out
