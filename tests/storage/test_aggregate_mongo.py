"""Entity aggregations on a MongoDB wire-protocol server (FerretDB in CI), both plans.

Set ``WORKBENCH_TEST_MONGODB_URL`` (``.ci/ferretdb.sh`` starts a FerretDB). On FerretDB v1 the
stepwise plan runs (no ``$lookup`` there); on a real MongoDB both the one-pipeline plan and the
stepwise plan are run through the same contract.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from workbench.query.aggregation import AggregationResult, EntityAggregation
from workbench.storage.mongo import MongoEntityStore
from workbench.storage.mongo_aggregate import aggregate_mongo
from workbench.testing.entity_aggregate_contract import EntityAggregateContract
from workbench.testing.servers import require_server_url

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server_url() -> str:
    return require_server_url(
        "WORKBENCH_TEST_MONGODB_URL", "MongoDB wire-protocol server (MongoDB or FerretDB)"
    )


@pytest.fixture
def mongo_store(server_url: str) -> Iterator[MongoEntityStore]:
    parts = urlsplit(server_url)
    url = urlunsplit(parts._replace(path=f"/wbtest_{uuid.uuid4().hex}"))
    store = MongoEntityStore.open(url)
    yield store
    store.drop()


class TestMongoAggregations(EntityAggregateContract):
    """The plan the server supports (one pipeline on MongoDB, steps on FerretDB v1)."""

    @pytest.fixture
    def store(self, mongo_store: MongoEntityStore) -> MongoEntityStore:
        return mongo_store


class _Stepwise(MongoEntityStore):
    """The same store forced onto the stepwise plan (what FerretDB v1 gets)."""

    def aggregate(self, aggregation: EntityAggregation) -> AggregationResult:
        return aggregate_mongo(self, aggregation, stepwise=True)

    def supports_association_measures(self) -> bool:
        return False


class TestMongoStepwiseAggregations(EntityAggregateContract):
    @pytest.fixture
    def store(self, mongo_store: MongoEntityStore) -> Any:
        if not mongo_store.supports_aggregation_pipeline():
            return mongo_store  # FerretDB: already the stepwise plan
        mongo_store.__class__ = _Stepwise
        return mongo_store


def test_plan_is_declared(mongo_store: MongoEntityStore) -> None:
    ferretdb = "ferretdbVersion" in mongo_store._client.admin.command("buildInfo")
    assert mongo_store.supports_aggregation_pipeline() is (not ferretdb)
    assert mongo_store.supports_association_measures() is (not ferretdb)


def test_parent_field_is_back_filled_when_an_older_database_opens(
    mongo_store: MongoEntityStore, server_url: str
) -> None:
    from workbench.storage.base import WriteBatch
    from workbench.storage.mongo_codec import _META, _PARENT
    from workbench.storage.mongo_indexes import _PARENT_MARKER
    from workbench.storage.parents import PARENT_ROLE
    from workbench.testing.entity_store_contract import BUILDING, link, make_entity

    hall = make_entity({"Name": "Hall"}, ck_type_id=BUILDING)
    meters = [make_entity({"State": 1}) for _ in range(3)]
    links = [link(m, hall, PARENT_ROLE) for m in meters[:2]]
    mongo_store.apply(WriteBatch(inserts=[hall, *meters], add_associations=links))
    entities = mongo_store._entities
    assert {d["_id"]: d.get(_PARENT) for d in entities.find({}, {_PARENT: 1})} == {
        hall.rt_id: None,
        meters[0].rt_id: hall.rt_id,
        meters[1].rt_id: hall.rt_id,
        meters[2].rt_id: None,
    }
    # an older database: no field, no marker (or a back-fill interrupted before its end)
    entities.update_many({}, {"$unset": {_PARENT: ""}})
    mongo_store._db[_META].delete_one({"_id": _PARENT_MARKER})
    parts = urlsplit(server_url)
    reopened = MongoEntityStore.open(urlunsplit(parts._replace(path=f"/{mongo_store._db.name}")))
    try:
        assert reopened._parent_field_ready()
        assert entities.count_documents({_PARENT: hall.rt_id}) == 2
    finally:
        reopened.close()
