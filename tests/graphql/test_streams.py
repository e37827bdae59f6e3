"""``streamData`` queries and writes, as in GRAPHQL_API.md."""

from __future__ import annotations

from tests.conftest import METER_1, METER_2
from tests.graphql.conftest import Run

WRITE = """mutation($points: [DemoEnergyEnergyMeterStreamPointInput!]!) {
  streamData { demoEnergyEnergyMeter { write(points: $points) } } }"""

DOC_QUERY = """query($ids: [ID!]) {
  streamData {
    tsDemoEnergyEnergyMeter(rtIds: $ids, from: "2026-01-01T00:00:00Z", to: "2026-01-02T00:00:00Z",
                            first: 1000, after: null) {
      pageInfo { hasNextPage endCursor }
      items { rtId timeStamp voltage current }
    }
    tsDemoEnergyEnergyMeterAggregate(rtIds: $ids, from: "2026-01-01T00:00:00Z",
                                     to: "2026-01-02T00:00:00Z",
                                     interval: "15m", functions: [AVG, MIN, MAX]) {
      items { rtId bucket voltageAvg voltageMin voltageMax }
    }
    tsDemoEnergyEnergyMeterDownsample(rtIds: $ids, from: "2026-01-01T00:00:00Z",
                                      to: "2026-01-02T00:00:00Z", limit: 2000) {
      items { rtId bucket voltage }
    }
  }
}"""


def test_write_then_query_as_in_the_api_document(demo_gql: Run) -> None:
    points = [
        {"rtId": METER_1, "timeStamp": f"2026-01-01T00:{m:02d}:00Z", "voltage": 230.0 + m}
        for m in range(30)
    ] + [{"rtId": METER_2, "timeStamp": "2026-01-01T00:00:00Z", "voltage": 1.0, "current": 2.0}]
    written = demo_gql(WRITE, {"points": points})
    assert written == {"streamData": {"demoEnergyEnergyMeter": {"write": 31}}}
    data = demo_gql(DOC_QUERY, {"ids": [METER_1]})["streamData"]
    page = data["tsDemoEnergyEnergyMeter"]
    assert page["pageInfo"]["hasNextPage"] is False
    assert len(page["items"]) == 30
    assert page["items"][0] == {
        "rtId": METER_1,
        "timeStamp": "2026-01-01T00:00:00Z",
        "voltage": 230.0,
        "current": None,
    }
    buckets = data["tsDemoEnergyEnergyMeterAggregate"]["items"]
    assert [b["voltageAvg"] for b in buckets] == [237.0, 252.0]
    assert (buckets[0]["voltageMin"], buckets[0]["voltageMax"]) == (230.0, 244.0)
    samples = data["tsDemoEnergyEnergyMeterDownsample"]["items"]
    assert samples
    assert samples[0]["rtId"] == METER_1


def test_stream_paging_and_validation(demo_gql: Run) -> None:
    points = [
        {"rtId": METER_1, "timeStamp": f"2026-01-01T01:{m:02d}:00Z", "voltage": float(m)}
        for m in range(5)
    ]
    demo_gql(WRITE, {"points": points})
    query = """query($after: String) { streamData { tsDemoEnergyEnergyMeter(first: 2, after: $after)
        { pageInfo { hasNextPage endCursor } items { voltage } } } }"""
    seen: list[float] = []
    after = None
    while True:
        page = demo_gql(query, {"after": after})["streamData"]["tsDemoEnergyEnergyMeter"]
        seen += [i["voltage"] for i in page["items"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [0.0, 1.0, 2.0, 3.0, 4.0]
    bad = demo_gql(
        WRITE,
        {"points": [{"rtId": "65aaaaaaaaaaaaaaaaaaaaaa", "timeStamp": "2026-01-01T00:00:00Z"}]},
        errors=True,
    )["errors"][0]
    assert bad["extensions"]["code"] in ("VALIDATION_FAILED", "NOT_FOUND")
