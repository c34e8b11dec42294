from collections.abc import AsyncIterator

import pytest

from billgraph.checkout.providers import Providers
from billgraph.db.engine import Database
from billgraph.settings import Settings
from tests.billing.helpers import Org, new_org


@pytest.fixture(scope="session")
async def providers(database: Database, settings: Settings) -> AsyncIterator[Providers]:
    providers = Providers(database, settings)
    yield providers
    await providers.close()


@pytest.fixture
async def org(database: Database, providers: Providers) -> Org:
    return await new_org(database, providers)


@pytest.fixture
async def other_org(database: Database, providers: Providers) -> Org:
    return await new_org(database, providers)
