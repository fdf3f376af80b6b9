"""`rapport demo`: the sandbox, the bot and a time-lapse clock in one process, telling the story of
a practice's weeks — a therapist and five simulated clients — and checking that the story holds.

`run.py` drives it; `story.py` and `people.py` are the clients, `therapist.py` what the therapist
receives, `clock.py` and `time.py` the paced time-lapse, `checks.py`, `report.py`, `summary.py`,
`output.py` and `transcript.py` what is verified and shown.
"""

from devtools.demo.run import run_demo

__all__ = ["run_demo"]
