"""The explorer as people use it: ``setlist explorer``'s Streamlit server on loopback over the e2e lake, opened
in headless Debian chromium; sign in, look up a user, save a screenshot (``.build/test-artifacts``)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from include.cli import main as cli
from include.orchestration import airflow_server
from include.serving import lookup
from tests import servers

pytestmark = pytest.mark.e2e

PASSWORD = "e2e-explorer-password"


@pytest.fixture()
def explorer_url(lake: str) -> Iterator[str]:
    port = servers.free_port()
    env = {**os.environ, "SETLIST_LAKE": lake, "SETLIST_EXPLORER_PASSWORD": PASSWORD}
    proc = subprocess.Popen(
        cli.explorer_command(port),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        servers.wait_for_http(url + "_stcore/health", proc)
        assert servers.listen_addresses(port) and all(a.startswith("127.") for a in servers.listen_addresses(port))
        yield url
    finally:
        airflow_server.stop([proc])


def test_sign_in_and_look_up_a_user_in_chromium(lake, explorer_url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    _, [(user, newest)] = lookup.query("SELECT min(user_id), max(run_date) FROM gold.recommendations", lake)
    expected = lookup.get_recommendations(user, 10, lake)
    with servers.chromium() as browser:
        wait = WebDriverWait(browser, 60)
        browser.get(explorer_url)
        password = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "input[type='password']")))
        assert "Newest run" not in browser.find_element(By.TAG_NAME, "body").text  # nothing before the login
        password.send_keys(PASSWORD, Keys.ENTER)
        # Streamlit draws a page element by element, so each line is waited for rather than read once.
        # The top track's title is drawn into the table's canvas; the model that made the list is plain text.
        for text in (f"Top 10 for {user}", f"Newest run {newest}", "Recent listening", expected[0]["model_version"]):
            wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), str(text)))
        path = servers.screenshot(browser, "explorer")
    assert path.stat().st_size > 10_000
