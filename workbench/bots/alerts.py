"""Alerts about bot runs: a JSON POST to webhooks and an e-mail over SMTP."""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import httpx

__all__ = ["send_alerts"]

log = logging.getLogger("workbench.bots.alerts")


def _mail(smtp_url: str, sender: str, to: list[str], subject: str, body: str) -> None:
    parts = urlsplit(smtp_url if "://" in smtp_url else f"smtp://{smtp_url}")
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message.set_content(body)
    with smtplib.SMTP(parts.hostname or "127.0.0.1", parts.port or 25, timeout=20) as smtp:
        if parts.scheme == "smtp+starttls":
            smtp.starttls()
        if parts.username:
            smtp.login(parts.username, parts.password or "")
        smtp.send_message(message)


def send_alerts(
    record: dict[str, Any],
    *,
    webhooks: list[str],
    emails: list[str],
    smtp_url: str,
    sender: str,
    link: str | None = None,
) -> list[str]:
    """Tell the webhooks and mail recipients how ``record`` ended; returns what failed
    (alerting never fails the run)."""
    problems = []
    subject = f"[workbench] bot {record['bot']} of tenant {record['tenant']}: {record['status']}"
    body = "\n".join(
        [
            subject,
            f"run: {record['run_id']} (version {record['version']}, trigger {record['trigger']})",
            f"error: {record.get('error') or '-'}",
            f"attempts: {record.get('attempts')}",
            *([f"history: {link}"] if link else []),
        ]
    )
    for url in webhooks:
        try:
            httpx.post(
                url,
                json={"event": "bot.run." + record["status"], "run": record, "link": link},
                timeout=10,
            ).raise_for_status()
        except httpx.HTTPError as exc:
            problems.append(f"webhook {url}: {exc}")
    if emails:
        if not smtp_url:
            problems.append("e-mail alert not sent: set WORKBENCH_BOT_SMTP_URL")
        else:
            try:
                _mail(smtp_url, sender, emails, subject, body)
            except (OSError, smtplib.SMTPException) as exc:
                problems.append(f"e-mail to {', '.join(emails)}: {exc}")
    for problem in problems:
        log.warning("bot alert failed: %s", problem)
    return problems
