"""`python -m tools.bench`: the benchmark behind `make bench`.

Brings up the stack plus the benchmark's services (bench/compose.bench.yaml) under a compose project of its own,
drives load with wrk from a container on the stack's network (and from the host, through the published ports),
samples the servers' memory, and writes results/bench/bench.{json,md,png}. Always tears the project down.
"""
