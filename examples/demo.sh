#!/bin/sh
# The main job: start a local HTTP server, run the seed's two examples against
# it through the coevent runner, stop the server by its pid.
set -eu
runner=${1:-target/release/coevent}
cargo build --release --quiet --example http_server
dir=$(mktemp -d)
mkfifo "$dir/port"
target/release/examples/http_server > "$dir/port" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT INT TERM
read -r port < "$dir/port"
echo "== HTTP server on 127.0.0.1:$port (pid $pid)"
echo "== examples/single_loop.lua"
"$runner" examples/single_loop.lua 127.0.0.1 "$port"
echo "== examples/multi_loop.lua"
"$runner" examples/multi_loop.lua 127.0.0.1 "$port"

# A server too: examples/serve_http.lua on a free port, answering curl.
mkfifo "$dir/http"
"$runner" examples/serve_http.lua 0 examples > "$dir/http" &
srv=$!
trap 'kill $pid $srv 2>/dev/null || true; rm -rf "$dir"' EXIT INT TERM
read -r line < "$dir/http"
echo "== examples/serve_http.lua: $line (pid $srv)"
url=http://${line#listening on }
echo "\$ curl -s $url/ $url/ (one connection, kept alive)"
curl -s -w '  (status %{http_code}, new connections: %{num_connects})\n' "$url/" "$url/"
kill -TERM $srv && wait $srv && echo "== SIGTERM: the server ended with status 0"
