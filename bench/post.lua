-- wrk script: POST a fixed form body (env BODY), optionally with fixed Cookie (env COOKIE) and Authorization (env AUTHORIZATION) headers.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = os.getenv("BODY")
local cookie = os.getenv("COOKIE")
if cookie and #cookie > 0 then wrk.headers["Cookie"] = cookie end
local authorization = os.getenv("AUTHORIZATION")
if authorization and #authorization > 0 then wrk.headers["Authorization"] = authorization end

done = function(summary, latency, requests)
  io.write(string.format("RESULT rps=%.1f p50_ms=%.2f p99_ms=%.2f errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
