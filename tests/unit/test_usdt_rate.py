"""The USDT/USD rate cache (shared/crawler/pipelines/usdt_rate.py): one fetch per expiry, however many jobs ask."""

from __future__ import annotations

import threading
from decimal import Decimal

from shared.config import Settings
from shared.crawler.pipelines import usdt_rate
from shared.upstream import UpstreamClients
from tests.helpers.upstream_doubles import ReplayTransport, Reply


def test_the_jobs_of_a_tick_that_find_the_rate_stale_share_one_fetch():
    answered = threading.Event()

    def tether(_request):
        answered.wait(5)  # hold the first fetch until every job is waiting on it
        return Reply.json({"tether": {"usd": 1.0003}})

    settings = Settings(coingecko_base_url="https://cg.test", usdt_usd_max_age_seconds=120)
    transport = ReplayTransport({"/api/v3/simple/price": tether})
    upstream = UpstreamClients(settings, transport=transport)
    rate = usdt_rate.UsdtUsdRate(settings, upstream)
    rates: list[Decimal] = []
    jobs = [threading.Thread(target=lambda: rates.append(rate.current())) for _ in range(6)]
    for job in jobs:
        job.start()
    answered.set()
    for job in jobs:
        job.join(5)
    assert rates == [Decimal("1.0003")] * 6
    assert len(transport.requests) == 1
