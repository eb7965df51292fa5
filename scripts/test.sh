#!/usr/bin/env bash
# The test command (README, CI): prepares the host (Docker Engine and the
# independent tools the tests use as real clients), builds, runs every tap
# suite over the compiled output, and ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ]; then
  bash scripts/setup-host.sh || { echo "host setup failed"; echo "0 passed, 1 failed"; exit 1; }
else
  echo "not root: skipping host setup (integration tests need a running Docker Engine and will say so)"
fi

npm run --silent build || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }

log=$(mktemp)
# tap's own summary is not a line CI reads; we count from tap's JSON-ish tail.
npx tap --reporter=tap "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
summaries=$(grep -E '^# \{ total: [0-9]+' "$log" | tail -n 1)
failures=$(node scripts/tap-failures.mjs <"$log")

# The scenarios whose behaviour depends on the simulated Pi's OS (its Docker
# Engine, systemd, Node.js) run once more on the other one: the run above
# uses PISWARM_SIM_OS (default trixie: Docker 26.1), this one bookworm
# (Docker 20.10), or trixie when the first was bookworm. Only for the whole
# suite: a run of chosen files stays one run.
# Test files only: a helper next to them (healing/swarm.js) would be reported as a test with none in it.
OS_SCENARIOS=(dist/test/integration/formation/*.test.js dist/test/integration/healing/*.test.js dist/test/integration/fleet/*.test.js dist/test/integration/flash/firstboot.test.js)
if (($# == 0)); then
  other=bookworm
  [[ ${PISWARM_SIM_OS:-trixie} == bookworm ]] && other=trixie
  echo "=== the OS-dependent scenarios again, on simulated $other Pis (PISWARM_SIM_OS=$other)"
  : >"$log"
  PISWARM_SIM_OS=$other npx tap --reporter=tap "${OS_SCENARIOS[@]}" 2>&1 | tee "$log"
  rc2=${PIPESTATUS[0]}
  ((rc2 == 0)) || rc=$rc2
  summaries+=$'\n'$(grep -E '^# \{ total: [0-9]+' "$log" | tail -n 1)
  more=$(node scripts/tap-failures.mjs <"$log" | sed "s/^FAILED: /FAILED ($other): /")
  [[ -n $more ]] && failures+=$'\n'$more
fi

# CI keeps only the end of the log: name every failed assertion again here.
if [[ -n ${failures//$'\n'/} ]]; then
  echo "=== failed assertions (subtest path > assertion)"
  grep -v '^$' <<<"$failures"
fi

node -e '
  const lines = (process.argv[1] || "").split("\n");
  const num = (k) => lines.reduce((n, s) => n + Number((s.match(new RegExp(k + ": (\\d+)")) || [0, 0])[1]), 0);
  const failed = num("fail");
  const skipped = num("skip") + num("todo");
  // CI reads the last line: it is exactly "N passed, N failed"; skips go above it.
  if (skipped) console.log(`${skipped} skipped (each with its reason above)`);
  console.log(`${num("pass")} passed, ${failed + (process.argv[2] !== "0" && failed === 0 ? 1 : 0)} failed`);
' "$summaries" "$rc"
rm -f "$log"
exit "$rc"
