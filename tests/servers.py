"""Helpers for tests that start real servers and a real browser: free loopback ports, what listens where,
waiting for a server to answer, and headless Debian chromium driven by selenium."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from include.core.processes import free_port

ARTIFACTS = Path(os.environ.get("SETLIST_TEST_ARTIFACTS", Path(__file__).parent.parent / ".build" / "test-artifacts"))
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def listen_addresses(port: int) -> list[str]:
    """The local addresses of the sockets listening on ``port``, from the kernel's tables."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                ipv4 = bytes.fromhex(address[-8:])[::-1]  # IPv4, or the IPv4 inside an IPv4-mapped IPv6
                mapped = len(address) == 8 or address[:24] == "0000000000000000FFFF0000"
                found.append(".".join(str(b) for b in ipv4) if mapped else address)
    return found


def wait_for_http(url: str, proc: subprocess.Popen[Any], timeout_s: float = 120.0) -> None:
    """Wait until ``url`` answers (any HTTP status); fail early if the server process exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode} before {url} answered")
        try:
            urllib.request.urlopen(url, timeout=5).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout_s:.0f} s")


@contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator[Any]:
    """Headless Debian chromium through its chromedriver (no browser or driver downloads: offline)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # selenium manager must not look for drivers on the network
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="setlist-chromium-")
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", f"--window-size={width},{height}",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(driver: Any, name: str) -> Path:
    """Save the page as ``<artifacts>/<name>.png`` (kept after the run for people to look at)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


@contextmanager
def postgres() -> Iterator[str]:
    """Debian's PostgreSQL server (``make postgres``) in a throwaway data directory on a loopback port, with a
    generated password (SCRAM) and an ``airflow`` database; yields its SQLAlchemy URL, stops and removes it all.
    PostgreSQL refuses to run as root, so as root its commands run as the ``postgres`` system user."""
    import secrets

    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    assert bins, "PostgreSQL server binaries missing: run `make postgres`"
    bin_dir = bins[-1].parent
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="setlist-postgres-"))
    password, port = secrets.token_urlsafe(24), free_port()
    (root / "pw").write_text(password)
    if as_owner:
        shutil.chown(root, "postgres")
        shutil.chown(root / "pw", "postgres")
    (root / "pw").chmod(0o600)

    def run(*argv: str) -> None:
        done = subprocess.run([*as_owner, *argv], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    data, pwfile = str(root / "data"), str(root / "pw")
    run(str(bin_dir / "initdb"), "-D", data, "-U", "setlist", "--auth=scram-sha-256", f"--pwfile={pwfile}")
    settings = ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]  # loopback only; a throwaway cluster
    server = subprocess.Popen(
        [*as_owner, str(bin_dir / "postgres"), "-D", data, "-p", str(port), "-k", str(root), *settings],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        env = {**os.environ, "PGPASSWORD": password}
        deadline = time.monotonic() + 60
        address = ["-h", "127.0.0.1", "-p", str(port)]
        while subprocess.run([str(bin_dir / "pg_isready"), *address], env=env, capture_output=True).returncode:
            assert server.poll() is None and time.monotonic() < deadline, "PostgreSQL did not start"
            time.sleep(0.2)
        created = subprocess.run(
            [str(bin_dir / "createdb"), *address, "-U", "setlist", "airflow"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert created.returncode == 0, created.stderr
        yield f"postgresql+psycopg2://setlist:{password}@127.0.0.1:{port}/airflow"
    finally:
        server.terminate()  # SIGTERM: PostgreSQL's smart shutdown; its sessions are gone by now
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(root, ignore_errors=True)
