"""A scheduled report: stream data of a CK type as HoloViews plots and a table of its entities,
written as one self-contained HTML file (BokehJS inline: the plots draw without internet) and,
optionally, a PDF printed from it by headless Chromium; mailed through SMTP if asked.
"""

from __future__ import annotations

import html
import shutil
import smtplib
import subprocess
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from workbench.bots.builtin.selection import find_all
from workbench.errors import BackendUnavailable, ValidationError

__all__ = ["CHROMIUM", "Report", "build_report", "mail_report", "print_pdf"]

CHROMIUM = "/usr/bin/chromium"


@dataclass
class Report:
    html: Path
    pdf: Path | None
    entities: int
    points: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "html": str(self.html),
            "pdf": str(self.pdf) if self.pdf else None,
            "entities": self.entities,
            "points": self.points,
        }


def _plot_html(plot: Any) -> tuple[str, str]:
    """``(script, div)`` of a HoloViews object rendered by Bokeh."""
    import holoviews as hv
    from bokeh.embed import components

    # the renderer alone: hv.extension would also send BokehJS to the notebook's output
    model = hv.renderer("bokeh").get_plot(plot).state
    script, div = components(model)
    return str(script), str(div)


def build_report(
    tenant: Any,
    out_dir: Path,
    *,
    ck_type_id: str,
    from_: datetime | str,
    to: datetime | str,
    attributes: list[str] | None = None,
    title: str = "Report",
    limit: int = 500,
    where: Any = None,
    pdf: bool = True,
) -> Report:
    """Write ``report.html`` (and ``report.pdf``) to ``out_dir`` for the entities of
    ``ck_type_id`` matching ``where`` and their stream data in ``[from_, to)``, downsampled
    to at most ``limit`` buckets per entity."""
    from bokeh.resources import INLINE

    from workbench.notebook.display import stream_plot

    out_dir.mkdir(parents=True, exist_ok=True)
    entities = find_all(tenant, ck_type_id, where)
    rt_ids = [e.rt_id for e in entities]
    result = tenant.streams(ck_type_id).downsample(from_, to, limit, rt_ids=rt_ids or None)
    points = result.table.num_rows
    if points:
        script, div = _plot_html(stream_plot(result, attributes, title=title))
    else:
        script, div = "", "<p>No stream data in this period.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(e.rt_id)}</td><td>{html.escape(str(e.attributes.get('name', '')))}"
        f"</td><td>{html.escape(e.ck_type_id)}</td></tr>"
        for e in entities
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
{INLINE.render()}
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>Tenant {html.escape(tenant.id)}, {html.escape(ck_type_id)}, {html.escape(str(from_))} to
{html.escape(str(to))}: {len(entities)} entities, {points} buckets
({html.escape(str(result.interval or ""))}).</p>
{div}
<h2>Entities</h2><table><tr><th>rtId</th><th>name</th><th>type</th></tr>{rows}</table>
{script}
</body></html>
"""
    target = out_dir / "report.html"
    target.write_text(page, encoding="utf-8")
    printed = print_pdf(target, out_dir / "report.pdf") if pdf else None
    return Report(target, printed, len(entities), points)


def print_pdf(source: Path, target: Path, *, timeout: float = 120.0) -> Path:
    """Print ``source`` (an HTML file) to ``target`` with headless Chromium, after its scripts
    ran; every network request fails (a proxy that does not exist), so what prints is what
    renders offline."""
    chromium = shutil.which(CHROMIUM) or shutil.which("chromium")
    if chromium is None:
        raise BackendUnavailable(
            f"printing the report as PDF needs Chromium at {CHROMIUM} (apt-get install "
            "chromium), or run the bot with pdf=False"
        )
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--proxy-server=http://127.0.0.1:9",
        "--virtual-time-budget=15000",
        "--no-pdf-header-footer",
        f"--print-to-pdf={target}",
        source.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    if done.returncode != 0 or not target.is_file():
        raise BackendUnavailable(
            f"Chromium could not print {source} (exit {done.returncode}): "
            f"{done.stderr.decode(errors='replace')[-500:]}"
        )
    return target


def mail_report(report: Report, smtp_url: str, sender: str, to: list[str], subject: str) -> None:
    """Mail the report (HTML as the body's attachment, the PDF too) through ``smtp_url``
    (``smtp://host:port``, ``smtp+starttls://user:password@host:587``)."""
    if not to:
        raise ValidationError("mail_to is empty; name at least one recipient")
    parts = urlsplit(smtp_url if "://" in smtp_url else f"smtp://{smtp_url}")
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, ", ".join(to), subject
    message.set_content(f"{subject}: the report is attached.")
    message.add_attachment(
        report.html.read_bytes(), maintype="text", subtype="html", filename="report.html"
    )
    if report.pdf is not None:
        message.add_attachment(
            report.pdf.read_bytes(), maintype="application", subtype="pdf", filename="report.pdf"
        )
    with smtplib.SMTP(parts.hostname or "127.0.0.1", parts.port or 25, timeout=30) as smtp:
        if parts.scheme == "smtp+starttls":
            smtp.starttls()
        if parts.username:
            smtp.login(unquote(parts.username), unquote(parts.password or ""))
        smtp.send_message(message)
