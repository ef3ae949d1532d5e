"""`make chaos`: fault scenarios against real meshgate processes, judged on their history.

A recording publisher notes every acknowledged (source, id); durable consumers note every
delivery; a fault (kill -9, a partition through a TCP proxy, the chain killed, a revoke, a
full disk) runs while events flow; pure checks (`checker.py`) count LOST, DUP, deliveries
after a revoke and catch-up time; `report.py` writes `bench/CHAOS.md`.

    python -m bench.chaos [--only NAME] [--runs N] [--quick]
"""
