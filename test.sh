#!/usr/bin/env bash
# Runs every test suite of OServe: the xunit projects through `dotnet test`, the Expecto suite as
# the executable it is, and ends with one line `N passed, N failed[, N skipped]` summed over all.
# Usage: ./test.sh [extra args passed to each runner's filter are not supported; run suites by hand]
set -uo pipefail
cd "$(dirname "$0")"
config=${CONFIGURATION:-Debug}
logdir=${TEST_LOG_DIR:-artifacts/test-logs}
mkdir -p "$logdir"

echo "== build ($config)"
if ! dotnet build OServe.sln -c "$config" -nologo -v quiet -clp:ErrorsOnly; then
  echo "build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

passed=0; failed=0; skipped=0; status=0
strip_ansi() { sed -E 's/\x1B\[[0-9;?]*[A-Za-z]//g'; }

for proj in tests/*/*.csproj; do
  name=$(basename "$proj" .csproj)
  echo "== xunit: $name"
  log="$logdir/$name.log"
  dotnet test "$proj" -c "$config" --no-build -nologo 2>&1 | tee "$log" | strip_ansi | grep -vE '^\s*$' | tail -n 40
  rc=${PIPESTATUS[0]}
  line=$(strip_ansi < "$log" | grep -E '(Passed|Failed)!? +- +Failed: ' | tail -n 1)
  if [[ -z "$line" ]]; then
    echo "   $name: no summary line (exit $rc); counted as one failure"
    failed=$((failed + 1)); status=1; continue
  fi
  f=$(sed -E 's/.*Failed: *([0-9]+).*/\1/' <<<"$line")
  p=$(sed -E 's/.*Passed: *([0-9]+).*/\1/' <<<"$line")
  s=$(sed -E 's/.*Skipped: *([0-9]+).*/\1/' <<<"$line")
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  [[ $rc -ne 0 || $f -ne 0 ]] && status=1
done

for proj in tests/*/*.fsproj; do
  name=$(basename "$proj" .fsproj)
  echo "== expecto: $name"
  log="$logdir/$name.log"
  dotnet run --project "$proj" -c "$config" --no-build -- --colours 0 2>&1 | tee "$log" | strip_ansi | grep -E 'EXPECTO|\[ERR\]|Failed|failed' | tail -n 60
  rc=${PIPESTATUS[0]}
  line=$(strip_ansi < "$log" | grep -E 'EXPECTO!.* passed, .* ignored, .* failed, .* errored' | tail -n 1)
  if [[ -z "$line" ]]; then
    echo "   $name: no summary line (exit $rc); counted as one failure"
    failed=$((failed + 1)); status=1; continue
  fi
  p=$(sed -E 's/.* ([0-9]+) passed,.*/\1/' <<<"$line")
  i=$(sed -E 's/.* ([0-9]+) ignored,.*/\1/' <<<"$line")
  f=$(sed -E 's/.* ([0-9]+) failed,.*/\1/' <<<"$line")
  e=$(sed -E 's/.* ([0-9]+) errored.*/\1/' <<<"$line")
  passed=$((passed + p)); failed=$((failed + f + e)); skipped=$((skipped + i))
  [[ $rc -ne 0 || $f -ne 0 || $e -ne 0 ]] && status=1
done

echo "$passed passed, $failed failed, $skipped skipped"
exit $status
