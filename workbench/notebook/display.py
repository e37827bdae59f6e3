"""Rich display in notebooks: CK types as tables, entity pages as DataFrames, streams as plots.

:func:`register_formatters` teaches an IPython shell to show a :class:`~workbench.ck.model.CkType`
as an HTML table of its attributes (own and inherited) and associations (:class:`CkTypeView`), an
:class:`~workbench.runtime.entity.EntityPage` as a DataFrame, and a
:class:`~workbench.streams.service.StreamResult` as a HoloViews plot (:func:`stream_plot`).
HoloViews is imported only when a stream result is displayed.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from workbench.ck.model import CkModel, CkType, TypeAttribute, ValueType
from workbench.errors import ValidationError, WorkbenchError
from workbench.runtime.entity import EntityPage
from workbench.streams.service import StreamResult
from workbench.tenancy.catalog import ImportReport

if TYPE_CHECKING:
    import pandas as pd
    from IPython.core.interactiveshell import InteractiveShell

__all__ = [
    "CkTypeView",
    "ImportReportView",
    "entity_page_html",
    "load_plotting",
    "register_formatters",
    "stream_plot",
    "unregister_formatters",
]

ModelProvider = Callable[[], CkModel | None]

_ATTRIBUTE_COLUMNS = ("name", "attribute", "type", "optional", "default", "unit", "declared on")
_ASSOCIATION_COLUMNS = ("direction", "name", "role", "other type", "multiplicity", "declared on")


def _html_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], css: str) -> str:
    head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td style='text-align:left'>{html.escape(str(v))}</td>" for v in row)
        + "</tr>"
        for row in rows
    )
    return f"<table class='{css}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _text_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [list(columns), *[[str(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def _value_type(attribute: TypeAttribute) -> str:
    ck_attribute = attribute.attribute
    if attribute.value_type is ValueType.ENUM and ck_attribute.enum_id:
        return f"Enum {ck_attribute.enum_id}"
    if ck_attribute.record_id and attribute.value_type in (
        ValueType.RECORD,
        ValueType.RECORD_ARRAY,
    ):
        return f"{attribute.value_type.value} {ck_attribute.record_id}"
    return str(attribute.value_type.value)


@dataclass
class CkTypeView:
    """A CK type shown as tables: its attributes (own and inherited) and its associations.

    With the ``model`` the type was resolved in, associations carry their navigation names and
    multiplicities and include the inbound ones; without it, the outbound role ids only.
    """

    ck_type: CkType
    model: CkModel | None = None

    def attribute_rows(self) -> list[tuple[str, ...]]:
        """One row per attribute, inherited ones first (from the root of the chain down)."""
        depth = {type_id: i for i, type_id in enumerate(reversed(self.ck_type.base_chain))}
        depth[self.ck_type.id] = len(depth)
        ordered = sorted(
            self.ck_type.attributes.values(), key=lambda a: depth.get(a.declared_on, -1)
        )
        return [
            (
                a.name,
                a.attribute_id,
                _value_type(a),
                "yes" if a.is_optional else "",
                ", ".join(map(str, a.defaults)),
                a.attribute.metadata.get("unit", ""),
                "(own)" if a.declared_on == self.ck_type.id else a.declared_on,
            )
            for a in ordered
        ]

    def association_rows(self) -> list[tuple[str, ...]]:
        model = self.model
        if model is not None and self.ck_type.id in model.types:
            ends = [*model.outbound_ends(self.ck_type.id), *model.inbound_ends(self.ck_type.id)]
            # an association is declared on its source type, whichever end we look from
            return [
                (
                    end.direction,
                    end.name,
                    end.role.id,
                    end.other_type_id,
                    str(end.multiplicity.value),
                    "(own)" if end.source_type_id == self.ck_type.id else end.source_type_id,
                )
                for end in ends
            ]
        return [
            (
                "outbound",
                "",
                a.role_id,
                a.target_type_id,
                "",
                "(own)" if a.declared_on == self.ck_type.id else a.declared_on,
            )
            for a in self.ck_type.associations
        ]

    def _title(self) -> str:
        flags = [
            f
            for f, on in (("abstract", self.ck_type.is_abstract), ("final", self.ck_type.is_final))
            if on
        ]
        chain = " → ".join([self.ck_type.id, *self.ck_type.base_chain])
        return chain + (f"  [{', '.join(flags)}]" if flags else "")

    def _repr_html_(self) -> str:
        description = self.ck_type.description
        parts = [
            f"<div class='workbench-ck-type'><strong>{html.escape(self._title())}</strong>",
            f"<p>{html.escape(description)}</p>" if description else "",
            "<p><em>Attributes</em></p>",
            _html_table(_ATTRIBUTE_COLUMNS, self.attribute_rows(), "workbench-attributes"),
            "<p><em>Associations</em></p>",
            _html_table(_ASSOCIATION_COLUMNS, self.association_rows(), "workbench-associations"),
            "</div>",
        ]
        return "".join(parts)

    def __str__(self) -> str:
        parts = [self._title()]
        if self.ck_type.description:
            parts.append(self.ck_type.description)
        parts += ["", "Attributes", _text_table(_ATTRIBUTE_COLUMNS, self.attribute_rows())]
        parts += ["", "Associations", _text_table(_ASSOCIATION_COLUMNS, self.association_rows())]
        return "\n".join(parts)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


@dataclass
class ImportReportView:
    """What a ``%%ck`` import changed (or, with ``dry_run``, would change): the model id and
    the types added, changed and removed, and the entities migrated."""

    report: ImportReport
    dry_run: bool = False

    def lines(self) -> list[tuple[str, str]]:
        r = self.report
        if r.unchanged:
            return [("unchanged", f"{r.model_id} is already imported with this content")]
        change = (
            r.model_id if r.previous_model_id is None else f"{r.previous_model_id} → {r.model_id}"
        )
        rows = [("valid, would import" if self.dry_run else "imported", change)]
        for label, types in (
            ("added", r.added_types),
            ("changed", r.changed_types),
            ("removed", r.removed_types),
        ):
            rows.append((f"{label} types", ", ".join(types) or "—"))
        if r.previous_model_id is not None and not self.dry_run:
            rows.append(("migrated entities", str(r.migrated_entities)))
        return rows

    def __str__(self) -> str:
        width = max(len(k) for k, _ in self.lines())
        return "\n".join(f"{k.ljust(width)}  {v}" for k, v in self.lines())

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
            for k, v in self.lines()
        )
        return f"<table class='workbench-import'>{rows}</table>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


def error_lines(error: WorkbenchError) -> list[str]:
    """``Kind: message`` and one indented line per detail (how a refused cell reads)."""
    lines = [f"{type(error).__name__}: {error.message}"]
    lines += [f"  - {detail}" for detail in error.details]
    return lines


def _page_footer(page: EntityPage) -> str:
    total = f" of {page.total_count}" if page.total_count is not None else ""
    more = "; more on the next page (after=page.end_cursor)" if page.has_next_page else ""
    noun = "entity" if len(page) == 1 and page.total_count in (None, 1) else "entities"
    return f"{len(page)} {noun}{total}{more}"


def entity_page_html(page: EntityPage) -> str:
    """The page as a DataFrame's HTML with a line on paging."""
    frame: Any = page.to_pandas()  # pandas-stubs do not declare _repr_html_
    return f"{frame._repr_html_()}<p><small>{html.escape(_page_footer(page))}</small></p>"


def _entity_page_text(page: EntityPage, printer: Any, cycle: bool) -> None:
    printer.text(f"{page.to_pandas()!r}\n{_page_footer(page)}")


# ---- stream data --------------------------------------------------------------------------


def _stream_frame(result: StreamResult) -> tuple[pd.DataFrame, str, list[str]]:
    frame = result.to_pandas()
    time_column = "bucket" if "bucket" in frame.columns else "timeStamp"
    values = [
        str(c)
        for c in frame.columns
        if c not in ("rtId", time_column) and frame[c].dtype.kind in "biuf"
    ]
    return frame, time_column, values


def stream_plot(
    result: StreamResult, attributes: Sequence[str] | None = None, *, title: str | None = None
) -> Any:
    """A HoloViews plot of a stream read, aggregate or downsample: one curve per rtId for each
    numeric column (``attributes`` picks columns), one panel per column, sharing the time axis.

    Raises :class:`~workbench.errors.ValidationError` when there is nothing to plot.
    """
    import holoviews as hv

    frame, time_column, values = _stream_frame(result)
    chosen = list(attributes) if attributes is not None else values
    unknown = [a for a in chosen if a not in values]
    if unknown:
        raise ValidationError(
            f"cannot plot {', '.join(unknown)}: the numeric columns of this result are "
            f"{', '.join(values) or 'none'}"
        )
    if frame.empty or not chosen:
        raise ValidationError(
            "nothing to plot: the result has no rows or no numeric columns; widen the time range "
            "or pick attributes that carry stream values"
        )
    panels = []
    for column in chosen:
        curves = {
            str(rt_id): hv.Curve(
                part[[time_column, column]].dropna(), time_column, column, label=str(rt_id)
            )
            for rt_id, part in frame.groupby("rtId", sort=True)
        }
        panels.append(hv.NdOverlay(curves, kdims="rtId").relabel(title or column))
    plot = panels[0] if len(panels) == 1 else hv.Layout(panels).cols(1)
    return plot


def load_plotting() -> None:
    """Load HoloViews' Bokeh backend into the notebook page with BokehJS and Panel's JavaScript
    *inline* (from the installed packages; Panel's stylesheets of every plot as well), never
    from a CDN: plots draw on a plant network without internet. The loader is a cell output,
    so it is saved with the notebook and runs again when the page is reloaded (the kernel
    keeps running)."""
    import holoviews as hv
    import panel as pn
    from panel.viewable import Viewable

    pn.config.inline = True  # type: ignore[misc]  # a param, writable at run time
    # HoloViews renders a plot's Panel model without inlining its stylesheets (themes, the
    # loading spinner: CDN URLs); Panel's own notebook path does it, so do it the same way
    if _inline_stylesheets not in Viewable._preprocessing_hooks:
        Viewable._preprocessing_hooks.append(_inline_stylesheets)
    hv.extension("bokeh", logo=False, inline=True)


def _inline_stylesheets(viewable: Any, root: Any) -> None:
    """A Panel preprocessing hook: the root's CDN stylesheets replaced by their inline text."""
    from bokeh.models.ui import UIElement
    from panel import config
    from panel.io.notebook import patch_inline_stylesheets

    if config.inline:
        for model in root.select({"type": UIElement}):
            patch_inline_stylesheets(model)


class _StreamDisplay:
    """Shows a stream result as a plot in a notebook (the table when there is nothing to plot)."""

    def __init__(self) -> None:
        self._extension_loaded = False

    def __call__(self, result: StreamResult) -> None:
        frame, _, values = _stream_frame(result)
        if frame.empty or not values:
            display(frame)
            return
        if not self._extension_loaded:
            load_plotting()
            self._extension_loaded = True
        display(stream_plot(result))


def display(obj: Any) -> None:
    """IPython's ``display`` (untyped there)."""
    from IPython import display as ipython_display

    cast(Callable[[Any], None], ipython_display.display)(obj)


def register_formatters(shell: InteractiveShell, model: ModelProvider | None = None) -> None:
    """Register the rich displays on ``shell``; ``model`` gives the model CK types belong to."""

    def current_model() -> CkModel | None:
        if model is None:
            return None
        try:
            return model()
        except WorkbenchError:  # a remote tenant out of reach still shows the type's own data
            return None

    assert shell.display_formatter is not None, "an initialized shell has display formatters"
    formatters = shell.display_formatter.formatters
    formatters["text/html"].for_type(CkType, lambda t: CkTypeView(t, current_model())._repr_html_())
    formatters["text/plain"].for_type(
        CkType, lambda t, p, cycle: p.text(str(CkTypeView(t, current_model())))
    )
    formatters["text/html"].for_type(EntityPage, entity_page_html)
    formatters["text/plain"].for_type(EntityPage, _entity_page_text)
    shell.display_formatter.ipython_display_formatter.for_type(StreamResult, _StreamDisplay())


def unregister_formatters(shell: InteractiveShell) -> None:
    """Undo :func:`register_formatters` (used when the extension is unloaded)."""
    assert shell.display_formatter is not None, "an initialized shell has display formatters"
    formatters = shell.display_formatter.formatters
    for mime, kind in (
        ("text/html", CkType),
        ("text/plain", CkType),
        ("text/html", EntityPage),
        ("text/plain", EntityPage),
    ):
        formatters[mime].type_printers.pop(kind, None)
    shell.display_formatter.ipython_display_formatter.type_printers.pop(StreamResult, None)
