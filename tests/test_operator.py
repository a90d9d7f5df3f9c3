"""The README's commands as an operator runs them (issue 20): each says what it does, fails safe, and can be run
twice."""

from __future__ import annotations

import pytest
import requests

from tests.harness import ROOT

# --- /healthz is public: it names no version ------------------------------------------------------------------


@pytest.mark.chain
def test_the_public_healthz_names_no_version(http: requests.Session):
    response = http.get("/healthz")
    assert response.status_code == 200
    version = (ROOT / "app/VERSION").read_text().strip()
    assert "version" not in response.json(), response.text
    assert version not in response.text, response.text
