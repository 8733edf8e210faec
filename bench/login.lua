-- POSTs logins with a code never used before, as wx.login gives them:
-- "code=r<run>t<thread>n<counter>". Loaded after status.lua, whose
-- counting it keeps.
dofile(os.getenv("BENCH_DIR") .. "/status.lua")

local next_id = 0
local base_setup = setup
function setup(thread)
  next_id = next_id + 1
  thread:set("id", next_id)
  base_setup(thread)
end

local run = os.getenv("BENCH_RUN") or "0"
local counter = 0
local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }

function request()
  counter = counter + 1
  return wrk.format("POST", "/wx/login", headers, "code=r" .. run .. "t" .. id .. "n" .. counter)
end
