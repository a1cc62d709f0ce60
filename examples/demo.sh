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
