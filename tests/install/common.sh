# Sourced by run_install_test.sh and run_package_test.sh: a scratch folder that goes at exit
# (with the server started there), failing with a message, and the demo server's checks.
work=$(mktemp -d "${TMPDIR:-/tmp}/mlos-$1-XXXXXX")
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

# A loopback port nothing listens on now.
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# serve_demo PORT COMMAND...: starts the server (from /, so that nothing is found by the working
# folder), waits until it is ready, and checks that it answers the demo MLP over KServe v2.
serve_demo() {
  local port=$1 answer
  shift
  (cd / && exec "$@") >"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$port/v2/health/ready" >/dev/null 2>&1 && break
    kill -0 "$server" 2>/dev/null || { cat "$work/server.log"; fail "the server exited"; }
    sleep 0.1
  done
  answer=$(curl -sf "http://127.0.0.1:$port/v2/models/demo/infer" -H 'Content-Type: application/json' \
    -d '{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}]}') \
    || { cat "$work/server.log"; fail "the server did not answer"; }
  grep -q '"name":"output"' <<<"$answer" || fail "answer $answer"
}
