"""The billing benchmark's own checks (bench.harness.subscriptions), on PostgreSQL where it
runs: a set it seeded and billgraph billed passes them, one left unbilled fails them naming
what is missing, and its seed keeps the ledger invariant."""

from datetime import UTC, datetime

from sqlalchemy import text

from bench.harness.subscriptions import check_set, create_plan, seed_set
from billgraph.billing.run import bill
from billgraph.checkout.providers import Providers
from billgraph.core.unit import unit_of_work
from billgraph.db.engine import Database
from billgraph.organizations import service as organizations
from billgraph.settings import Settings
from tests.conftest import assert_ledger_invariant, postgresql_only

# An era of its own, before every other test's (tests/billing/test_run.py goes back from
# 1995, tests/live from 1965, the Stripe tests' 1970 is never billed), so a run at this time
# bills these alone.
DUE = datetime(1950, 1, 1, tzinfo=UTC)


@postgresql_only
async def test_the_checks_hold_after_billing_and_name_what_is_missing(
    database: Database, settings: Settings
) -> None:
    async with unit_of_work(database) as unit:
        org = (await organizations.create(unit, "Bench checks", "USD")).organization.id
    plan = await create_plan(database, org)
    billed = await seed_set(database, org, plan, "checked", 4, DUE)
    unbilled = await seed_set(database, org, plan, "unbilled", 2, DUE.replace(day=3))
    providers = Providers(database, settings)
    try:
        summary = await bill(database, providers, billed.billing_time)
        assert (summary.billed, summary.paid_by_credit, summary.charged) == (4, 2, 2)
        passed, failed = await check_set(database, billed), await check_set(database, unbilled)
        await assert_ledger_invariant(database)
    finally:
        await providers.close()
        # Nothing of this organization stays due for the other tests' billing runs.
        async with database.engine.begin() as connection:
            await connection.execute(
                text("UPDATE subscriptions SET next_action_at = NULL WHERE organization_id = :o"),
                {"o": org},
            )
    assert passed.ok, passed.problems
    assert (passed.invoices, passed.debits, passed.charges) == (4, 4, 2)
    assert not failed.ok
    assert any("invoices is 0, not 1" in problem for problem in failed.problems)
