"""A scripted browser approving a device code on the Identity pages (as a user would)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.identity.conftest import Browser, form_value

__all__ = ["approve_device"]


def approve_device(verification_url: str, *, tenant: str, username: str, password: str) -> None:
    """Open ``verification_url`` (``.../device?user_code=...``), log in, press Allow."""
    parts = urlsplit(verification_url)
    browser = Browser(f"{parts.scheme}://{parts.netloc}")
    try:
        first = browser.http.get(
            parts.path, params={k: v[0] for k, v in parse_qs(parts.query).items()}
        )
        after = browser.login(first, username, password, tenant=tenant)
        page = browser.http.get(after.headers["location"])
        assert page.status_code == 200, page.text
        done = browser.http.post(
            "/device",
            data={
                "csrf_token": form_value(page.text, "csrf_token"),
                "user_code": form_value(page.text, "user_code"),
                "decision": "allow",
            },
        )
        assert done.status_code == 200, done.text
        assert "connected" in done.text
    finally:
        browser.close()
