"""Running a suite: the plan checked before any generation (`plan`), the runner (`runner`: generate, score,
write), the on-disk progress that makes a killed run resumable (`progress`), the lock on a run folder (`lock`)
and the latency probe (`probe`).

The top of the library: may import every layer below it; only harness.cli imports it.
"""
