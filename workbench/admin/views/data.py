"""Data page: persisted queries run by name, entity explorer (server-side filters, sort, keyset
paging, edit in place, association navigation) and stream viewer (downsampled in the store;
rasterised when long).

The page opens with the explorer only: the query, editor and stream cards are built (and ask
their services) when first opened with their toggle buttons, so a session costs one model
lookup and one page of entities until the user wants more.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Literal

import holoviews as hv
import pandas as pd
import panel as pn

from workbench.admin.views.base import (
    AdminView,
    choose,
    in_background,
    plotting,
    queued,
    text,
    typed,
)
from workbench.ck.model import CkModel
from workbench.ck.naming import graphql_field_name
from workbench.client.tenant_queries import RUN_QUERY
from workbench.runtime.queries import SIMPLE_QUERY_TYPE, STREAM_QUERY_TYPE

__all__ = ["DataView", "LazyCard", "LazyCards"]

#: points per entity drawn as lines; longer ranges are downsampled by the store to this many
#: buckets, and beyond a million points in all the plot is rasterised (datashader)
PLOT_BUCKETS = 2000
RASTERIZE_ABOVE = 1_000_000


class LazyCard:
    """A card whose content is made by ``build`` when the user first opens it (with its toggle
    in :class:`LazyCards`); ``on_open`` runs then, and ``is_open`` tells the page whether the
    content exists (and is to be kept up to date)."""

    def __init__(self, title: str, build: Any, on_open: Any = None, css: str = "") -> None:
        self.title, self._build, self._on_open, self._css = title, build, on_open, css
        self.card: Any = None
        self.group: LazyCards | None = None

    @property
    def is_open(self) -> bool:
        return self.card is not None

    def open(self) -> None:
        """Build and show the card (as a click on its toggle does)."""
        if self.group is not None:
            self.group.show(self)
        else:
            self.made()

    def made(self) -> Any:
        """The card, built (and ``on_open`` run) the first time."""
        if self.card is None:
            self.card = pn.Card(
                *self._build(),
                title=self.title,
                sizing_mode="stretch_width",
                css_classes=[self._css] if self._css else [],
            )
            if self._on_open is not None:
                self._on_open()
        return self.card


class LazyCards:
    """One toggle button per card; the cards that are open go at the end of the page's column
    (:meth:`place`), in the cards' order.

    Unopened cards cost a button each, not a collapsed ``pn.Card`` each (a Card with its
    header and stylesheets cost about three times a button per session).
    """

    def __init__(self, *cards: LazyCard) -> None:
        self.cards = cards
        for card in cards:
            card.group = self
        self.toggle = pn.widgets.CheckButtonGroup(
            options=[c.title for c in cards], value=[], css_classes=["wb-cards"], align="end"
        )
        self.toggle.param.watch(lambda event: in_background(self._shown, list(event.new)), "value")
        #: the page's column, and how many of its objects are the page's own
        self._column: pn.Column | None = None
        self._own = 0

    def place(self, column: pn.Column) -> pn.Column:
        """Open cards go at the end of ``column`` (returned)."""
        self._column, self._own = column, len(column.objects)
        return column

    def show(self, card: LazyCard) -> None:
        if card.title in self.toggle.value:
            self._shown(list(self.toggle.value))  # already shown: made (if not yet)
        else:
            self.toggle.value = [*self.toggle.value, card.title]  # its watcher shows it

    def _shown(self, titles: list[str]) -> None:
        shown = [c.made() for c in self.cards if c.title in titles]
        if self._column is not None:
            self._column.objects = [*self._column.objects[: self._own], *shown]


class DataView(AdminView):
    """Find an entity (filters, sort, pages), edit it, follow associations; plot stream data."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._model: CkModel | None = None
        self._cursors: list[str | None] = [None]
        self._page: list[dict[str, Any]] = []
        self.tenant = pn.widgets.Select(
            label="Tenant", options=list(self.tenants), css_classes=["wb-data-tenant"]
        )
        self.tenant.param.watch(queued(self.load_model), "value")
        self.ck_type = pn.widgets.Select(label="Type", options=[], css_classes=["wb-data-type"])
        self.ck_type.param.watch(queued(self.first_page), "value")
        self.where = pn.widgets.TextInput(
            label="Filter", placeholder="voltage > 230; parent->name EQUALS 'Hall A'"
        )
        self.search = pn.widgets.TextInput(label="Search name")
        self.sort = pn.widgets.TextInput(label="Sort", placeholder="-serialNumber")
        self.find_button = pn.widgets.Button(label="Find", color="primary")
        self.find_button.on_click(queued(self.first_page))
        self.next_button = pn.widgets.Button(label="Next page ▶")
        self.next_button.on_click(queued(self.next_page))
        self.prev_button = pn.widgets.Button(label="◀ Previous page")
        self.prev_button.on_click(queued(self.previous_page))
        self.page_label = pn.pane.HTML("", css_classes=["wb-page-label"])
        self.table = pn.widgets.Tabulator(
            pd.DataFrame(),
            disabled=True,
            show_index=False,
            selectable=1,
            height=300,
            sizing_mode="stretch_width",
        )
        self.table.param.watch(queued(self._select), "selection")
        # the cards' widgets are made when a card is first opened (``_editor_widgets`` ...):
        # a session that only looks at the explorer never pays for them
        self.entity: Any = None
        self.attribute: Any = None
        self.value: Any = None
        self.edit_message: Any = None
        self.navigation: Any = None
        self.follow: Any = None
        self.stream_attributes: Any = None
        self.stream_days: Any = None
        self.stream_end: Any = None
        self.plot_pane: Any = None
        self.query: Any = None
        self.query_first: Any = None
        self.query_from: Any = None
        self.query_to: Any = None
        self.query_message: Any = None
        self.query_table: Any = None
        self.queries_card = LazyCard(
            "Persisted queries", self._query_widgets, self.list_queries, "wb-queries-card"
        )
        self.editor_card = LazyCard(
            "Edit entity", self._editor_widgets, self._show_entity, "wb-editor-card"
        )
        self.streams_card = LazyCard(
            "Stream data", self._stream_widgets, self._streams_for_type, "wb-streams-card"
        )
        self.cards = LazyCards(self.queries_card, self.editor_card, self.streams_card)
        in_background(self.load_model)

    # ------------------------------------------------------------------ persisted queries

    def list_queries(self) -> None:
        """The tenant's persisted queries (simple and stream data queries) by name."""
        tenant = self.tenant.value
        if not tenant:
            return
        found: dict[str, str] = {}
        for ck_type, kind in ((SIMPLE_QUERY_TYPE, "entities"), (STREAM_QUERY_TYPE, "stream")):
            find = partial(self.client.find_entities, tenant, ck_type, first=500, sort=["name"])
            page = self.attempt(find)
            for query in (page or {}).get("items", []):
                name = query["attributes"].get("name") or query["rtId"]
                found[f"{name} ({kind})"] = query["rtId"]
        choose(self.query, dict(sorted(found.items())))
        if not found:
            self._query_note(
                f"Tenant **{tenant}** has no persisted queries: create a {SIMPLE_QUERY_TYPE} or "
                f"{STREAM_QUERY_TYPE} entity (a runtime file, GraphQL, or the SDK).",
                "info",
            )

    def _query_note(self, text_: str, kind: Literal["info", "danger", "success"]) -> None:
        self.query_message.object = text_
        self.query_message.alert_type, self.query_message.visible = kind, True

    def run_query(self) -> None:
        """Run the chosen query with the parameters given; its rows in the results table."""
        tenant, rt_id = self.tenant.value, self.query.value
        if not tenant or not rt_id:
            return
        variables: dict[str, Any] = {"rtId": rt_id}
        first = text(self.query_first)
        if first:
            if not first.isdigit() or int(first) < 1:
                self._query_note(
                    f"**Rows** must be a whole number of at least 1, not {first!r} (or empty: "
                    "the query's own limit).",
                    "danger",
                )
                return
            variables["first"] = int(first)
        for name, widget in (("from", self.query_from), ("to", self.query_to)):
            if text(widget):
                variables[name] = text(widget)
        try:
            data = self.client.graphql(tenant, RUN_QUERY, variables)
        except Exception as exc:  # the service's message, at the query
            self._query_note(f"**{_label(self.query)}**: {exc}", "danger")
            return
        result = data["runtime"]["runQuery"]
        rows = [{k: _cell(v) for k, v in row.items()} for row in result["rows"]]
        self.query_table.value = pd.DataFrame(rows, columns=result["columns"])
        self._query_note(f"**{_label(self.query)}**: {len(rows)} rows.", "success")

    # ------------------------------------------------------------------ entities

    def load_model(self) -> None:
        tenant = self.tenant.value
        if not tenant:
            return
        if self.queries_card.is_open:
            self.list_queries()
        model = self.attempt(lambda: self.client.model(tenant))
        if model is None:
            return
        self._model = model
        concrete = sorted(t for t, ck in model.types.items() if not t.startswith("System"))
        before = self.ck_type.value
        choose(self.ck_type, concrete)  # a new type chosen loads its first page (its watcher)
        if self.ck_type.value == before:
            self.first_page()

    def _query(self) -> dict[str, Any]:
        query: dict[str, Any] = {"first": 25, "includeTotal": True}
        where = [w.strip() for w in text(self.where).split(";") if w.strip()]
        if where:
            query["where"] = where
        if text(self.search):
            query["search"] = text(self.search)
        sort = [s.strip() for s in text(self.sort).split(",") if s.strip()]
        if sort:
            query["sort"] = sort
        return query

    def first_page(self) -> None:
        self._cursors = [None]
        self._load()

    def next_page(self) -> None:
        if self._cursors[-1] is not None or len(self._cursors) == 1:
            self._load(forward=True)

    def previous_page(self) -> None:
        if len(self._cursors) > 2:
            self._cursors = self._cursors[:-2]
            self._load(forward=True)
        else:
            self.first_page()

    def _load(self, *, forward: bool = False) -> None:
        tenant, ck_type = self.tenant.value, self.ck_type.value
        if not tenant or not ck_type:
            return
        query = self._query()
        after = self._cursors[-1] if forward else None
        if after:
            query["after"] = after
        page = self.attempt(lambda: self.client.find_entities(tenant, ck_type, **query))
        if page is None:
            return
        if forward:
            self._cursors.append(page["pageInfo"]["endCursor"])
        else:
            self._cursors = [None, page["pageInfo"]["endCursor"]]
        self._page = page["items"]
        rows = [
            {
                "rtId": e["rtId"],
                "ckTypeId": e["ckTypeId"],
                "rtVersion": e["rtVersion"],
                **{k: _cell(v) for k, v in e["attributes"].items()},
            }
            for e in self._page
        ]
        self.table.value = pd.DataFrame(rows)
        number = len(self._cursors) - 1
        more = " (more)" if page["pageInfo"]["hasNextPage"] else ""
        self.page_label.object = f"Page {number} of {page.get('totalCount')} entities{more}"
        self.next_button.disabled = not page["pageInfo"]["hasNextPage"]
        if self.editor_card.is_open:
            self._offer_entities()
        if self.streams_card.is_open:
            self._streams_for_type()

    def _offer_entities(self) -> None:
        """The entities of the page shown, in the editor's choice."""
        choose(
            self.entity,
            {
                f"{e['attributes'].get('name', e['rtId'])} ({e['rtId']})": e["rtId"]
                for e in self._page
            },
        )

    def _select(self) -> None:
        if self.table.selection:
            index = self.table.selection[0]
            if index < len(self._page):
                self.editor_card.open()
                self.entity.value = self._page[index]["rtId"]

    def _current(self) -> dict[str, Any] | None:
        if self.entity is None:  # the editor was never opened: no entity chosen
            return None
        return next((e for e in self._page if e["rtId"] == self.entity.value), None)

    def _show_entity(self) -> None:
        entity = self._current()
        if entity is None or self._model is None or not self.editor_card.is_open:
            return
        ck_type = self._model.types.get(entity["ckTypeId"])
        names = (
            sorted(graphql_field_name(a.name) for a in ck_type.attributes.values())
            if ck_type
            else []
        )
        choose(self.attribute, names or sorted(entity["attributes"]))
        self._show_value()
        tenant = self.tenant.value
        links = self.attempt(lambda: self.client.links(tenant, entity["rtId"])) or []
        lines = [f"rtId `{entity['rtId']}`, version {entity['rtVersion']}", ""]
        for link in links:
            if link["direction"] == "outbound":
                lines.append(
                    f"- {link['roleId']} → `{link['targetRtId']}` ({link['targetCkTypeId']})"
                )
            else:
                lines.append(
                    f"- {link['roleId']} ← `{link['sourceRtId']}` ({link['sourceCkTypeId']})"
                )
        self.navigation.object = "\n".join(lines)
        choose(
            self.follow,
            {
                f"{link['roleId']} {link['direction']}": (
                    link["targetRtId"] if link["direction"] == "outbound" else link["sourceRtId"],
                    link["targetCkTypeId"]
                    if link["direction"] == "outbound"
                    else link["sourceCkTypeId"],
                )
                for link in links
            },
        )

    def follow_link(self) -> None:
        """Open the entity at the other end of the chosen association."""
        if not self.follow.value:
            return
        rt_id, ck_type_id = self.follow.value
        self.where.value = ""
        self.search.value = ""
        if self.ck_type.value != ck_type_id:
            self.ck_type.value = ck_type_id  # loads the first page
        tenant = self.tenant.value
        page = self.attempt(
            lambda: self.client.find_entities(tenant, ck_type_id, rtIds=[rt_id], first=1)
        )
        if page and page["items"]:
            self._page = page["items"] + [e for e in self._page if e["rtId"] != rt_id]
            self._offer_entities()
            self.entity.value = rt_id

    def _show_value(self) -> None:
        entity = self._current()
        if entity is not None and self.attribute.value:
            current = entity["attributes"].get(self.attribute.value)
            self.value.value = "" if current is None else json.dumps(current)

    def save(self) -> None:
        entity = self._current()
        if entity is None:
            return
        raw = typed(self.value)
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        tenant, name = self.tenant.value, self.attribute.value
        try:
            self.client.update_entity(tenant, entity["rtId"], {name: value}, entity["rtVersion"])
        except Exception as exc:  # the service's validation message, shown at the field
            self.edit_message.object = f"**{name}**: {exc}"
            self.edit_message.alert_type, self.edit_message.visible = "danger", True
            return
        self.edit_message.object = f"Saved **{name}** = `{raw}`."
        self.edit_message.alert_type, self.edit_message.visible = "success", True
        selected = entity["rtId"]
        self._cursors = self._cursors[:-1] if len(self._cursors) > 1 else [None]
        self._load(forward=len(self._cursors) > 1)
        self.entity.value = selected

    # ------------------------------------------------------------------ streams

    def _streams_for_type(self) -> None:
        tenant, ck_type = self.tenant.value, self.ck_type.value
        try:
            columns = self.client.stream_columns(tenant, ck_type)
        except Exception:  # a type without stream data has no columns to offer
            columns = []
        skip = {"rtId", "timeStamp", "timestamp", "bucket", "ckTypeId"}
        self.stream_attributes.options = [c for c in columns if c not in skip]
        if self.stream_attributes.options and not self.stream_attributes.value:
            self.stream_attributes.value = self.stream_attributes.options[:1]

    def plot(self) -> None:
        plotting()
        tenant, ck_type = self.tenant.value, self.ck_type.value
        entity = self._current()
        rt_ids = [entity["rtId"]] if entity else [e["rtId"] for e in self._page[:5]]
        chosen = self.stream_end.value
        end = chosen if isinstance(chosen, datetime) else datetime.now(UTC)
        if end.tzinfo is None:
            end = end.replace(tzinfo=UTC)
        start = end - timedelta(days=int(self.stream_days.value or 7))
        if not self.stream_attributes.value:
            # a click that came before the card's stream columns did (callbacks run on threads)
            self._streams_for_type()
        attributes = list(self.stream_attributes.value)
        if not attributes:
            self.plot_pane.object = hv.Text(
                0, 0, f"{ck_type} has no stream attributes to plot"
            ).opts(responsive=True, height=340)
            return
        rows = self.attempt(
            lambda: self.client.downsample(
                tenant,
                ck_type,
                start=start.isoformat(),
                end=end.isoformat(),
                limit=PLOT_BUCKETS,
                rt_ids=rt_ids,
                attributes=attributes,
            )
        )
        if rows is None:
            return
        if not rows:
            self.plot_pane.object = hv.Text(
                0, 0, f"no stream data between {start:%Y-%m-%d} and {end:%Y-%m-%d}"
            ).opts(responsive=True, height=340)
            return
        frame = pd.DataFrame(rows)
        # downsampled rows carry their bucket's start; raw points their timeStamp
        time_column = next(c for c in ("bucket", "timeStamp", "timestamp") if c in frame)
        frame[time_column] = pd.to_datetime(frame[time_column], utc=True).dt.tz_localize(None)
        curves = {}
        for attribute in attributes:
            for rt_id, group in frame.groupby("rtId"):
                label = f"{attribute} {str(rt_id)[-6:]}"
                curves[label] = hv.Curve(group, time_column, attribute, label=label).redim(
                    **{attribute: "value"}
                )
        overlay = hv.NdOverlay(curves, kdims="series")
        if len(frame) * max(len(attributes), 1) > RASTERIZE_ABOVE:
            from holoviews.operation.datashader import rasterize

            self.plot_pane.object = rasterize(overlay).opts(responsive=True, height=340)
        else:
            self.plot_pane.object = overlay.opts(
                hv.opts.Curve(responsive=True, height=340, tools=["hover"])
            )

    def _query_widgets(self) -> list[Any]:
        self.query = pn.widgets.Select(
            label="Persisted query", options={}, css_classes=["wb-query"]
        )
        self.query_first = pn.widgets.TextInput(
            label="Rows", placeholder="(the query's limit)", css_classes=["wb-query-rows"]
        )
        self.query_from = pn.widgets.TextInput(
            label="From (stream queries)", placeholder="2026-12-01T00:00:00Z"
        )
        self.query_to = pn.widgets.TextInput(label="To", placeholder="(the stored range)")
        run = pn.widgets.Button(label="Run query", color="primary")
        run.on_click(queued(self.run_query))
        self.query_message = pn.pane.Alert("", alert_type="light", visible=False)
        self.query_table = pn.widgets.Tabulator(
            pd.DataFrame(),
            disabled=True,
            show_index=False,
            height=260,
            pagination="local",
            page_size=50,
            sizing_mode="stretch_width",
            css_classes=["wb-query-results"],
        )
        return [
            pn.Row(self.query, self.query_first, self.query_from, self.query_to, run),
            self.query_message,
            self.query_table,
        ]

    def _editor_widgets(self) -> list[Any]:
        self.entity = pn.widgets.Select(label="Entity", options={}, css_classes=["wb-entity"])
        self._offer_entities()
        self.entity.param.watch(queued(self._show_entity), "value")
        self.attribute = pn.widgets.Select(
            label="Attribute", options=[], css_classes=["wb-attribute"]
        )
        self.attribute.param.watch(queued(self._show_value), "value")
        self.value = pn.widgets.TextInput(
            label="New value (JSON or text)", css_classes=["wb-value"]
        )
        save = pn.widgets.Button(label="Save", color="primary")
        save.on_click(queued(self.save))
        self.edit_message = pn.pane.Alert("", alert_type="light", visible=False)
        self.navigation = pn.pane.Markdown("")
        self.follow = pn.widgets.Select(label="Follow association", options={})
        follow = pn.widgets.Button(label="Open")
        follow.on_click(queued(self.follow_link))
        return [
            self.entity,
            self.navigation,
            pn.Row(self.follow, follow),
            pn.Row(self.attribute, self.value, save),
            self.edit_message,
        ]

    def _stream_widgets(self) -> list[Any]:
        self.stream_attributes = pn.widgets.MultiChoice(label="Stream attributes", options=[])
        self.stream_days = pn.widgets.IntSlider(label="Days back", start=1, end=30, value=7)
        self.stream_end = pn.widgets.DatetimeInput(label="Until (UTC)", value=None)
        plot = pn.widgets.Button(label="Plot stream data", color="primary")
        plot.on_click(queued(self.plot))
        # HoloViews' pane (and its Bokeh plotting) only once the stream card is opened
        self.plot_pane = pn.pane.HoloViews(
            css_classes=["wb-stream-plot"],
            sizing_mode="stretch_width",
            height=360,
            name="stream-plot",
        )
        return [
            pn.Row(self.stream_attributes, self.stream_days, self.stream_end, plot),
            self.plot_pane,
        ]

    def __panel__(self) -> pn.viewable.Viewable:
        # one column, no heading (the tab names the page): every layout is models to build
        column = pn.Column(
            self.message,
            pn.Row(self.tenant, self.ck_type, self.cards.toggle),
            pn.Row(self.where, self.search, self.sort, self.find_button),
            self.table,
            pn.Row(self.prev_button, self.next_button, self.page_label),
            sizing_mode="stretch_width",
        )
        return self.cards.place(column)


def _label(select: Any) -> str:
    """The label a select shows for its value."""
    options = select.options
    if isinstance(options, dict):
        return next((k for k, v in options.items() if v == select.value), str(select.value))
    return str(select.value)


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value
