-- wrk script for tests/bench: POSTs one fixed body, read from the file named by MLOS_BODY.
-- MLOS_CONTENT_TYPE sets Content-Type; MLOS_HEADER_LENGTH, when set, the KServe binary
-- extension's Inference-Header-Content-Length.
local f = assert(io.open(os.getenv("MLOS_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = os.getenv("MLOS_CONTENT_TYPE") or "application/json"
local header = os.getenv("MLOS_HEADER_LENGTH")
if header and header ~= "" then
  wrk.headers["Inference-Header-Content-Length"] = header
end
