-- wrk reporter: after the run, one line "WRK_JSON {...}" with the totals, the errors by kind and the latency
-- percentiles in microseconds, for the harness to parse. No per-response callback, so wrk runs at full speed.
-- WRK_PAUSE_MS (default 0: none): a pause before each request (wrk's delay()), for a run that proves the harness
-- rather than measures (the smoke run: tools/bench/settings.py); unset, no delay() is defined at all.
local pause = tonumber(os.getenv("WRK_PAUSE_MS") or "") or 0
if pause > 0 then
  delay = function()
    return pause
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "max": %d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
