"""`rapport backtest --from-db`: the detector scored on the practice's own history.

Every client who joined is replayed as the backtest replays a file; observed endings (a stop, a
block, an unreachable account) and therapists' acknowledgements of alerts are the labels
(`insights.practice`). Reading the histories decrypts comments in memory, for the confrontation
rule only, as the digest does; each client read is audited, and nothing is logged.

The stored acknowledgements of flags and withdrawal alerts (`app.alerts.verdicts`) are read here
and passed to `run`, with any handed in besides.
"""

from __future__ import annotations

from collections.abc import Sequence

from app import alerts
from app.history import client_history
from app.runtime import Runtime
from flows.statuses import ClientStatus
from insights.practice import Acknowledgement, Labelling, PracticeBacktest, run
from insights.thresholds import Thresholds
from storage import audit, people

_NEVER_JOINED = (ClientStatus.INVITED, ClientStatus.DECLINED)


async def practice_backtest(
    rt: Runtime,
    thresholds: Thresholds | None = None,
    acks: Sequence[Acknowledgement] = (),
    *,
    labelling: Labelling = Labelling(),
    actor: str = "cli",
) -> PracticeBacktest:
    now = rt.clock.now()
    async with rt.sessions() as s, s.begin():
        practice = await people.get_practice(s, now)
        histories = []
        for client in await people.list_clients(s):
            if client.status in _NEVER_JOINED and client.joined_at is None:
                continue
            history = await client_history(s, rt.cipher, client, practice)
            histories.append((history, client.unreachable_at))
            await audit.audit(s, actor=actor, action="backtest", now=now, client_id=client.id)
        stored = await alerts.verdicts(s)
    return run(histories, [*stored, *acks], now, thresholds, labelling=labelling)
