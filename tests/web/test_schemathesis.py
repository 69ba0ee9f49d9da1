"""schemathesis against the REST API's OpenAPI document: no generated input makes it fail.

Each operation gets 20 generated requests of each kind, valid and invalid (5 under ``make
check``, where the module runs on one worker: the schema is loaded once), with an admin's token,
against one app holding an account and a dataset on the in-process LeadExec simulator. A request
may delete or rename them, or revoke the token: they are put back before each request.
Hypothesis runs derandomized, so the requests are the same on every run.

(schemathesis's own pytest integration, ``from_fixture``, does not work with pytest 9: each
operation here is a parametrized test that draws its cases from the operation's strategy.)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import BaseSchema, Case
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from leadferry.errors import NotFoundError
from leadferry.settings import Settings
from leadferry.store import DatasetSpec, Store, generate_key
from leadferry.web import API_PREFIX, create_app
from leadferry.web.api import router
from tests.conftest import API_KEY, NOW, Vendors, examples, leadexec_app

# Under `make check` (xdist's loadgroup) the module runs on one worker: each would load the
# schema and build its strategies (seconds of CPU).
pytestmark = pytest.mark.xdist_group("schemathesis")


def operations() -> list[tuple[str, str]]:
    """Every (method, path) of the API, read from its OpenAPI document."""
    app = FastAPI()
    app.include_router(router, prefix=API_PREFIX)
    paths = app.openapi()["paths"]
    return sorted((method.upper(), path) for path in paths for method in paths[path])


class World:
    """The account, dataset and API token generated requests may find (or destroy)."""

    def __init__(self, store: Store, leadexec_url: str, schema: BaseSchema, token: str) -> None:
        self.store = store
        self.leadexec_url = leadexec_url
        self.schema = schema
        self.token = token

    def restore(self) -> dict[str, str]:
        """Put back what earlier requests removed; return the headers of a live admin token."""
        try:
            self.store.get_account("acme")
        except NotFoundError:
            self.store.create_account(
                "acme", "leadexec", {"base_url": f"{self.leadexec_url}/"}, {"api_key": API_KEY}
            )
        try:
            self.store.get_dataset("leads")
        except NotFoundError:
            self.store.create_dataset(
                DatasetSpec(name="leads", account="acme", report="leads", params={"lid": 271})
            )
        if not self.token or self.store.user_for_token(self.token) is None:
            _record, self.token = self.store.create_token("ada", "schemathesis")
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("schemathesis") / "home"
    config = Settings(home=home, secret_key=generate_key(), http_retries=0)
    vendors = Vendors()
    leadexec_url = vendors.add("leadexec.test", leadexec_app()[1])
    with Store.open(config) as store, closing(vendors.client()) as vendor_client:
        store.add_user("ada", "correct-horse-42", "admin")
        _record, token = store.create_token("ada", "schemathesis")
        app = create_app(config, store, clock=lambda: NOW, vendor_client=vendor_client)
        schema = schemathesis.openapi.from_asgi(
            f"{API_PREFIX}/openapi.json", app, headers={"Authorization": f"Bearer {token}"}
        )
        try:
            yield World(store, leadexec_url, schema, token)
        finally:
            app.state.scheduler.shutdown()


# Path parameters that name things, and the things they may name here.
FIXTURE_NAMES = {
    "accounts": {"name": "acme"},
    "datasets": {"name": "leads"},
    "connectors": {"connector": "leadexec", "report": "leads"},
    "runs": {"run_id": 1},
}
# What a dataset (or a preview) of the fixture account needs to get past the first check.
DATASET_BODY = {"account": "acme", "report": "leads", "params": {"lid": 271}}
dataset_names = st.from_regex(r"[a-z][a-z0-9]{0,20}", fullmatch=True)


def aimed(case: Case, at_fixtures: bool, dataset_name: str) -> Case:
    """Half of the cases name the account, dataset, connector and report that exist (and a
    valid name, zone and parameters), so that requests get past the first 404 or 422 and do
    the routes' real work."""
    if not at_fixtures:
        return case
    noun = case.path.removeprefix(API_PREFIX).split("/")[1]
    for key, value in FIXTURE_NAMES.get(noun, {}).items():
        if case.path_parameters and key in case.path_parameters:
            case.path_parameters[key] = value
    if isinstance(case.body, dict) and case.body.keys() & DATASET_BODY.keys():
        case.body.update(DATASET_BODY)
        if "timezone" in case.body:
            case.body["timezone"] = "America/Los_Angeles"
        if isinstance(case.body.get("schedule"), dict):
            case.body["schedule"]["timezone"] = "UTC"
        if "name" in case.body:
            case.body["name"] = dataset_name
    return case


@pytest.mark.parametrize(("method", "path"), operations())
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_generated_request_makes_the_api_fail(world, method, path, mode):
    operation = world.schema[path][method]

    @given(case=st.builds(aimed, operation.as_strategy(mode), st.booleans(), dataset_names))
    @settings(
        max_examples=examples(20, at_least=5),
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def no_server_error(case):
        response = case.call(headers=world.restore())
        case.validate_response(response, checks=[not_a_server_error])

    no_server_error()
