-- wrk script for the non-streaming benchmark: one fixed chat.completions POST, sent unchanged on every
-- request (wrk pre-builds it, so the Lua side costs nothing per request), and a machine-readable summary.
--   BENCH_TOKEN  bearer token sent as Authorization (the client token for openai-proxy; ignored elsewhere)
local token = os.getenv("BENCH_TOKEN") or "bench"

wrk.method = "POST"
wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a terse assistant."},'
    .. '{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":16,"temperature":0}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token

-- Printed after wrk's own report, on one line: everything in microseconds except counts.
-- errors.status counts responses with status >= 400 (wrk's "Non-2xx or 3xx responses").
function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'WRK_JSON {"duration_us":%d,"requests":%d,"bytes":%d,"err_connect":%d,"err_read":%d,'
            .. '"err_write":%d,"err_status":%d,"err_timeout":%d,"lat_mean_us":%.1f,"lat_max_us":%d,'
            .. '"p50_us":%d,"p75_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d}\n',
        summary.duration, summary.requests, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
        latency.mean, latency.max, latency:percentile(50), latency:percentile(75), latency:percentile(90),
        latency:percentile(99), latency:percentile(99.9)))
end
