import time
from bot import heartbeat
from tests.e2e.harness import World, join_client

async def test_speed(world: World) -> None:
    therapist = await world.join_therapist()
    alice = await join_client(world, therapist, "Alice Smith")
    t0 = time.perf_counter()
    for _ in range(50):
        await heartbeat.run_pass(world.rt)
    t1 = time.perf_counter()
    for _ in range(50):
        await world.drain()
    t2 = time.perf_counter()
    print("pass", (t1 - t0)/50, "drain", (t2 - t1)/50)
