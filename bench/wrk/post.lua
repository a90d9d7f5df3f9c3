-- wrk writer: every request a POST of the same small JSON post; the token comes on wrk's command line
-- (-H "Authorization: Token ..."), so this file holds no secret. No request() function: wrk formats the request once
-- and sends it at full speed, as for the GETs. Reports like report.lua, which sits in the same folder.
wrk.method = "POST"
wrk.body = '{"text": "wrk says hello"}'
wrk.headers["Content-Type"] = "application/json"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")
