"""The Identity service's own pages under attack. The token attacks against the Asset
Repository (one test per attack, exact statuses) are in tests/security/test_token_attacks.py."""

from __future__ import annotations

from tests.identity.conftest import REDIRECT_URI, Browser, form_value


def test_unregistered_redirect_shows_error_page(browser: Browser) -> None:
    response = browser.http.get(
        "/authorize",
        params={
            "response_type": "code",
            "client_id": "notebook",
            "redirect_uri": REDIRECT_URI + "x",
            "scope": "openid",
            "code_challenge": "a" * 43,
            "code_challenge_method": "S256",
        },
    )
    assert response.status_code == 400
    assert "refused" in response.text
    page = browser.http.get("/login")
    assert form_value(page.text, "csrf_token")
    assert "default-src 'none'" in page.headers["content-security-policy"]
