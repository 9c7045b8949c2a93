#!/usr/bin/env bash
# An agent that speaks HTTP only: intentions and vitals to `chorus ingest`, the gate's verdicts back.
#   TOKEN=... AGENT=curl-agent examples/curl.sh        (see examples/README.md to start the ingest)
set -euo pipefail
URL=${CHORUS_INGEST_URL:-http://127.0.0.1:8500}
AGENT=${AGENT:-curl-agent}
: "${TOKEN:?set TOKEN to the ingest token of AGENT}"
AUTH="Authorization: Bearer $TOKEN"
JSON='Content-Type: application/json'

echo "# announce an acquisition (202 once Kafka has it)"
curl -sS -X POST "$URL/v1/intentions" -H "$AUTH" -H "$JSON" \
  -d "{\"agent_id\": \"$AGENT\", \"action\": \"acquire\", \"resource\": \"gpu-pool\", \"amount\": 2, \"hold_s\": 30, \"priority\": 5}"
echo

echo "# a batch of vitals, one per tick"
curl -sS -X POST "$URL/v1/vitals" -H "$AUTH" -H "$JSON" -d "[
  {\"agent_id\": \"$AGENT\", \"latency_ms\": 41.5, \"error_rate\": 0.0, \"queue_depth\": 2, \"cpu\": 0.31, \"requests_per_s\": 12},
  {\"agent_id\": \"$AGENT\", \"latency_ms\": 44.0, \"error_rate\": 0.01, \"queue_depth\": 3, \"cpu\": 0.33, \"requests_per_s\": 13}]"
echo

echo "# a mistake: the answer names the field"
curl -sS -X POST "$URL/v1/intentions" -H "$AUTH" -H "$JSON" \
  -d "{\"agent_id\": \"$AGENT\", \"action\": \"acquire\", \"resource\": \"gpu-pool\", \"amount\": -2}"
echo

echo "# the gate's verdict and the agent's quarantine status (long poll, up to 10 s)"
curl -sS "$URL/v1/agents/$AGENT/verdicts?after=0&wait=10" -H "$AUTH"
echo

echo "# the same as Server-Sent Events, for 5 s (a real agent keeps it open and resumes with Last-Event-ID)"
curl -sS -N --max-time 5 "$URL/v1/agents/$AGENT/verdicts" -H "$AUTH" -H 'Accept: text/event-stream' || true
