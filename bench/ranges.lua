-- wrk script for bench/run.sh ranges: every request asks for a random range of the file,
--   Range: bytes=S-(S+LEN-1), S uniform in [0, SIZE-LEN],
-- and the run ends with the RESULT line of bench/report.lua (loaded from this script's directory).
--   wrk -c1000 -s bench/ranges.lua URL SIZE [LEN=65536] [SEED=1]
-- Each wrk thread draws its own sequence (seeded with SEED and the thread's number), so that runs with the same
-- SEED against two servers ask for the same ranges.

local dir = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")) or os.getenv("BENCH_DIR") or "bench"
dofile(dir .. "/report.lua")

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_no", threads)
end

local size, len = 0, 65536

function init(args)
  size = tonumber(args[1]) or error("ranges.lua: give the file size as the first script argument")
  len = tonumber(args[2]) or 65536
  if size < len then error("ranges.lua: file smaller than one range") end
  math.randomseed((tonumber(args[3]) or 1) * 1000 + (thread_no or 0))
end

function request()
  local s = math.random(0, size - len)
  return wrk.format(nil, nil, { ["Range"] = string.format("bytes=%d-%d", s, s + len - 1) })
end
