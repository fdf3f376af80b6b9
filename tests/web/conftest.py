"""The console's tests: a practice in a SQLite file, and the console app over it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from app import admin
from app.clock import ManualClock
from app.config import load_settings
from app.console import new_link_token, set_role
from app.runtime import Runtime
from bench.population import add_checkins
from storage.crypto import Cipher
from tests.conftest import TEST_KEY


@dataclass
class Practice:
    """Two therapists (Dana: clients A.S. and B.T.; Eli: C.U.), a supervisor of Dana and an
    admin; client codes by alias."""

    rt: Runtime
    dana: int
    eli: int
    supervisor: int
    admin: int
    codes: dict[str, str]

    async def link(self, therapist_id: int) -> str:
        return await new_link_token(self.rt, therapist_id)


async def make_practice(rt: Runtime) -> Practice:
    await admin.remember_bot_username(rt, "rapport_test_bot")
    dana = (await admin.add_therapist(rt, "Dana Lee", "Europe/Berlin"))["id"]
    eli = (await admin.add_therapist(rt, "Eli Moss", "Europe/Berlin"))["id"]
    sup = (await admin.add_therapist(rt, "Sam Park", "Europe/Berlin"))["id"]
    boss = (await admin.add_therapist(rt, "Ada Admin", "Europe/Berlin"))["id"]
    await set_role(rt, sup, "supervisor", [dana])
    await set_role(rt, boss, "admin")
    codes = {}
    ids = []
    for therapist, name in ((dana, "Alice Smith"), (dana, "Bob Tate"), (eli, "Cleo Umber")):
        added = await admin.add_client(rt, therapist, name, timezone="Europe/Berlin")
        codes[added["alias"]] = added["code"]
        ids.append(added["id"])
    await add_checkins(rt, ids, rt.clock.now(), weeks=6)
    return Practice(rt, dana, eli, sup, boss, codes)


@pytest.fixture
async def practice(sqlite_url: str, clock: ManualClock) -> AsyncIterator[Practice]:
    conf = load_settings(database_url=sqlite_url, encryption_key=TEST_KEY)
    rt = Runtime.create(conf, clock=clock, cipher=Cipher(TEST_KEY))
    try:
        yield await make_practice(rt)
    finally:
        await rt.close()
