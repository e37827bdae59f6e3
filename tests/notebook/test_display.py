"""Rich display: CK types as tables, entity pages as DataFrames, stream reads as HoloViews plots."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from workbench.ck.model import CkType
from workbench.errors import ValidationError
from workbench.notebook.display import CkTypeView, stream_plot
from workbench.streams.service import StreamResult

START, END = "2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z"


def test_ck_type_renders_own_and_inherited_attributes_and_associations(plant: Any, ip: Any) -> None:
    pump = plant.model.type("Plant/Pump")
    data, _ = ip.display_formatter.format(pump)
    html, text = data["text/html"], data["text/plain"]
    assert html.startswith("<div class='workbench-ck-type'>")
    for fragment in ("Plant/Pump → Plant/Machine → System/Entity", "FlowRate", "m3/h", "FeedsInto"):
        assert fragment in html
        assert fragment in text
    rows = {row[0]: row for row in CkTypeView(pump, plant.model).attribute_rows()}
    assert rows["FlowRate"][1:] == ("Plant/FlowRate", "Double", "yes", "", "m3/h", "(own)")
    assert rows["Status"][-1] == "Plant/Machine"  # inherited
    assert next(iter(rows)) == "Name"  # inherited attributes first


def test_ck_type_associations_with_and_without_the_model(plant: Any) -> None:
    machine = plant.model.type("Plant/Machine")
    ends = {(r[0], r[1]): r for r in CkTypeView(machine, plant.model).association_rows()}
    assert ends["inbound", "FedBy"] == (
        "inbound",
        "FedBy",
        "Plant/Feeds",
        "Plant/Pump",
        "N",
        "Plant/Pump",
    )
    pump = plant.model.type("Plant/Pump")
    bare = CkTypeView(pump).association_rows()
    assert ("outbound", "", "Plant/Feeds", "Plant/Machine", "", "(own)") in bare


def test_abstract_flag_and_description_in_title(plant: Any) -> None:
    assert "[abstract]" in str(CkTypeView(plant.model.type("Plant/Machine")))


def test_entity_page_renders_as_a_dataframe(plant: Any, ip: Any) -> None:
    plant.entities.create("Plant/Pump", {"name": "P-1", "flowRate": 1.0})
    page = plant.entities.find("Plant/Pump", include_total=True)
    data, _ = ip.display_formatter.format(page)
    assert "<table" in data["text/html"]
    assert "P-1" in data["text/html"]
    assert "1 entity of 1" in data["text/plain"]


def _pump_stream(plant: Any) -> tuple[Any, list[str]]:
    pumps = [plant.entities.create("Plant/Pump", {"name": f"P-{i}"}).rt_id for i in range(2)]
    times = pd.date_range(START, periods=30, freq="1min")
    frame = pd.DataFrame(
        {
            "rtId": [rt_id for rt_id in pumps for _ in times],
            "timestamp": list(times) * 2,
            "flowRate": [float(i) for i in range(60)],
        }
    )
    streams = plant.streams("Plant/Pump")
    streams.write(frame)
    return streams, pumps


def test_stream_read_plots_one_curve_per_entity(plant: Any) -> None:
    import holoviews as hv

    streams, pumps = _pump_stream(plant)
    plot = stream_plot(streams.read(START, END))
    assert isinstance(plot, hv.NdOverlay)
    assert sorted(plot.keys()) == sorted(pumps)
    curve = plot[pumps[0]]
    assert isinstance(curve, hv.Curve)
    assert [d.name for d in curve.kdims] == ["timeStamp"]
    assert [d.name for d in curve.vdims] == ["flowRate"]
    assert len(curve) == 30


def test_aggregate_plots_a_panel_per_column(plant: Any) -> None:
    import holoviews as hv

    streams, _ = _pump_stream(plant)
    result = streams.aggregate(START, END, "10m", ["avg", "max"])
    layout = stream_plot(result)
    assert isinstance(layout, hv.Layout)
    assert [p.label for p in layout] == ["flowRateAvg", "flowRateMax"]
    only = stream_plot(result, ["flowRateMax"], title="peak")
    assert only.label == "peak"
    assert [d.name for d in only.last.kdims] == ["bucket"]
    with pytest.raises(ValidationError, match="numeric columns of this result are flowRateAvg"):
        stream_plot(result, ["nope"])


def test_empty_stream_read_cannot_be_plotted(plant: Any) -> None:
    empty = plant.streams("Plant/Pump").read(START, END)
    with pytest.raises(ValidationError, match="nothing to plot"):
        stream_plot(empty)


def test_stream_results_display_as_plots(
    plant: Any, ip: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import holoviews as hv

    shown: list[Any] = []
    monkeypatch.setattr("workbench.notebook.display.display", shown.append)
    streams, _ = _pump_stream(plant)
    result = streams.read(START, END)
    printer = ip.display_formatter.ipython_display_formatter.lookup(result)
    # loading BokehJS (hv.extension) takes seconds; the notebook tests cover it
    monkeypatch.setattr(printer, "_extension_loaded", True)
    printer(result)
    assert isinstance(shown[-1], hv.NdOverlay)
    printer(plant.streams("Plant/Pump").read("2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z"))
    assert isinstance(shown[-1], pd.DataFrame)  # nothing to plot: the (empty) table


def test_formatters_are_registered_for_the_platform_types(ip: Any) -> None:
    formatters = ip.display_formatter.formatters
    assert CkType in formatters["text/html"].type_printers
    assert StreamResult in ip.display_formatter.ipython_display_formatter.type_printers
