-- wrk script: POST coupon claims of one template, a random user per request.
--
--   TEMPLATE_ID=1 wrk -t2 -c64 -d10s -s wrk/claim.lua http://127.0.0.1:8080/coupons/claim
--
-- TEMPLATE_ID  template to claim (required); give it per_user_limit 0 and
--              more stock than the run can claim, so that every answer
--              should be 201
-- WRK_PATH     claim path (default: the path of the URL given to wrk)
--
-- done() prints the responses by status, summed over the threads, as one line:
--   claims: created=<201s> out_of_stock=<409s> other=<anything else>

local threads = {}

-- setup runs in the main thread once per wrk thread: number the threads so
-- each one seeds its own random sequence, and keep them for done().
function setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

-- init runs inside each thread.
function init(args)
  path = os.getenv("WRK_PATH") or wrk.path
  template_id = tonumber(os.getenv("TEMPLATE_ID") or "")
  if not template_id then
    error("set TEMPLATE_ID to the id of the coupon template to claim")
  end
  math.randomseed(os.time() * 1000 + thread_id)
  headers = { ["Content-Type"] = "application/json" }
  created, out_of_stock, other = 0, 0, 0
end

-- request builds every request: a user id drawn from a wide range, so
-- repeated users are rare (and harmless with per_user_limit 0).
function request()
  local body = string.format('{"user_id":%d,"template_id":%d}',
    math.random(1, 2000000000), template_id)
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
  if status == 201 then
    created = created + 1
  elseif status == 409 then
    out_of_stock = out_of_stock + 1
  else
    other = other + 1
  end
end

-- done runs in the main thread after the test; read each thread's counters.
function done(summary, latency, requests)
  local c, s, o = 0, 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("created")
    s = s + t:get("out_of_stock")
    o = o + t:get("other")
  end
  io.write(string.format("claims: created=%d out_of_stock=%d other=%d\n", c, s, o))
end
