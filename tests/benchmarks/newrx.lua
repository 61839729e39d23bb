-- wrk script: POST distinct NewRx messages (a unique MessageID per request).
-- usage: wrk -s newrx.lua URL -- TEMPLATE_FILE TOKEN RUN_TAG [PATIENTS]
-- PATIENTS > 1 spreads the messages over that many patients (synthetic last names), as a
-- pharmacy's intake is; without it every message is for the template's one patient.
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  local f = assert(io.open(args[1], "rb"))
  template = f:read("*a")
  f:close()
  headers = {["Content-Type"] = "application/xml"}
  if args[2] and args[2] ~= "" then headers["Authorization"] = "Bearer " .. args[2] end
  prefix = (args[3] or "run") .. "-" .. tostring(tid or 0) .. "-"
  patients = tonumber(args[4] or "1") or 1
  counter = 0
end

-- letters only, as names are: 0 -> A, 25 -> Z, 26 -> AB ...
local function letters(n)
  local out = ""
  repeat
    out = out .. string.char(65 + n % 26)
    n = math.floor(n / 26)
  until n == 0
  return out
end

function request()
  counter = counter + 1
  local body = template:gsub("DEMO%-MESSAGE%-ID", prefix .. counter)
  if patients > 1 then
    body = body:gsub("TESTPATIENT<", "TESTPATIENT" .. letters(((tid or 0) * 7919 + counter) % patients) .. "<")
  end
  return wrk.format("POST", "/ncpdp/script", headers, body)
end
