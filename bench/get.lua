-- wrk script: GET with an optional fixed Authorization header (env AUTH).
local auth = os.getenv("AUTH")
if auth and #auth > 0 then wrk.headers["Authorization"] = auth end

done = function(summary, latency, requests)
  io.write(string.format("RESULT rps=%.1f p50_ms=%.3f p99_ms=%.3f errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
