"""The synthetic demo series."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from workbench.streams import demo_points


def test_demo_points_shape_and_plausibility() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    table = demo_points(["a" * 24, "b" * 24], start, days=1, step="1s")
    assert table.num_rows == 2 * 86_400
    assert table.column_names == [
        "rtId",
        "timestamp",
        "voltage",
        "current",
        "activePower",
        "energyImported",
    ]
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    voltage = table.column("voltage").to_numpy()
    assert 220 < voltage.min() < voltage.max() < 240
    energy = table.column("energyImported").to_numpy()[:86_400]
    assert np.all(np.diff(energy) > 0)
    assert table.column("timestamp")[0].as_py() == start
    assert demo_points([], start).num_rows == 0
