-- wrk script for bench/intake.py: POST one JSON registration per request, each with a
-- unique address (run tag + wrk thread + counter), counting answers that are not 202.
-- usage: wrk -s bench/post_registration.lua URL -- RUN_TAG
local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("id", next_id)
  table.insert(threads, thread)
end

local assets = {
  "cloud-security-2026", "zero-trust-guide", "data-mesh-primer", "ai-ops-report",
  "kubernetes-at-scale", "finops-handbook", "edge-summit-berlin", "devsecops-day",
}
local counter = 0
local bad = 0
local tag = "run"
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  tag = (args[1] or "run") .. "t" .. tostring(id)
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"kind":"white_paper","asset":"%s","email":"lead%d.%s@example.com",' ..
    '"first_name":"Ada","last_name":"Lovelace","company":"Analytical Engines Ltd",' ..
    '"job_title":"Head of Research","country":"GB","consent":true}',
    assets[counter % #assets + 1], counter, tag)
  -- every request from its own client behind the proxy (used by the rate-limited variant)
  headers["X-Forwarded-For"] = string.format("10.%d.%d.%d", math.floor(counter / 65536) % 256,
                                             math.floor(counter / 256) % 256, counter % 256)
  return wrk.format("POST", "/api/v1/registrations", headers, body)
end

function response(status, hdrs, body)
  if status ~= 202 then
    bad = bad + 1
    if bad <= 3 then io.stderr:write("unexpected answer " .. status .. ": " .. body .. "\n") end
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + (thread:get("bad") or 0) end
  io.write(string.format("BENCH requests=%d non202=%d\n", summary.requests, total))
end
