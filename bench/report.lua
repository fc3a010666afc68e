-- wrk script: prints one machine-readable RESULT line when the run is done.
-- Used by bench/run.sh:  wrk -s bench/report.lua ...
-- All latencies are in microseconds (wrk's native unit).
--
-- RESULT requests=N duration_s=S rps=R bytes=B lat_avg_us=.. lat_stdev_us=.. lat_p50_us=..
--        lat_p90_us=.. lat_p99_us=.. lat_p999_us=.. lat_max_us=.. err_connect=.. err_read=..
--        err_write=.. err_status=.. err_timeout=..
--
-- err_status counts responses whose status is not 2xx/3xx; err_connect/read/write/timeout are
-- the socket errors wrk prints as "Socket errors: ...".

done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  local rps = 0
  if secs > 0 then rps = summary.requests / secs end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%.0f duration_s=%.3f rps=%.1f bytes=%.0f lat_avg_us=%.1f lat_stdev_us=%.1f " ..
    "lat_p50_us=%d lat_p90_us=%d lat_p99_us=%d lat_p999_us=%d lat_max_us=%d " ..
    "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
    summary.requests, secs, rps, summary.bytes, latency.mean, latency.stdev,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
