#!/usr/bin/env bash
# `make demo`: start the service, send the demo inputs over gRPC, print the answers, stop.
# Runs inside a loopback-only network namespace (scripts/netns-run) on machines that need one.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
PORT=${EMER_PORT:-50051}
export EMER_ADDRESS="127.0.0.1:$PORT"
log=$(mktemp -t emer-serve.XXXX.log)
"$BIN/emer" serve --port "$PORT" >"$log" 2>&1 &
server=$!
trap 'kill -INT $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
echo "starting emer-serve (log: $log) ..."
for _ in $(seq 1 300); do
  if ! kill -0 $server 2>/dev/null; then echo "the server exited:"; cat "$log"; exit 1; fi
  # every deployment up (the LLM included), then SERVING through the proxy
  if grep -q "emer-serve is serving gRPC" "$log" && "$BIN/emer" health >/dev/null 2>&1; then break; fi
  sleep 2
done
"$BIN/emer" health
for item in demo/inputs/astronaut-greeting.mp4 demo/inputs/waited.wav demo/inputs/astronaut-portrait.jpg; do
  echo; echo "=== emer analyze $item"
  "$BIN/emer" analyze "$item"
done
echo; echo "=== emer analyze --subtitle (text only, streamed)"
"$BIN/emer" analyze --stream --subtitle "Oh great, another meeting that could have been an email."
echo; echo "=== emer annotate demo/manifest.csv"
out=$(mktemp -d)/demo.jsonl
"$BIN/emer" annotate demo/manifest.csv --out "$out" --concurrency 2
echo "wrote $(wc -l <"$out") lines to $out"
echo; echo "=== bad input: random bytes as a video"
head -c 4096 /dev/urandom >"$out.bin"
"$BIN/emer" analyze "$out.bin" || true
"$BIN/emer" health
