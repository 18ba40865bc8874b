#!/bin/sh
# The whole test suite: C unit tests (make check), a short fuzzing run of the
# config parser, the pytest suites (integration; real engines end to end;
# the pure cgroup v2 / systemd VMs), each in its own pytest run. Ends with a
# combined `N passed, N failed` line.
set -u
cd "$(dirname "$0")/.."
scripts/install-deps.sh || exit 1
scripts/build.sh || exit 1

failed=0
passed=0
skipped=0
if make -C build -s check >build/check.log 2>&1; then
  passed=$((passed + 1)); echo "unit tests (make check): ok"
else
  failed=$((failed + 1)); echo "unit tests (make check): FAILED"; cat build/check.log
  for f in build/tests/unit/*.log; do [ -f "$f" ] && tail -n 30 "$f"; done
fi
# The checked-in .clang-format is the style: a file that drifts fails here.
if git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror >build/format.log 2>&1; then
  passed=$((passed + 1)); echo "format check (clang-format): ok"
else
  failed=$((failed + 1)); echo "format check (clang-format): FAILED"; head -n 40 build/format.log
fi
if make -C build -s fuzz-smoke FUZZ_SECONDS="${FUZZ_SECONDS:-30}" >build/fuzz.log 2>&1; then
  passed=$((passed + 1)); echo "fuzz smoke run: ok"
else
  failed=$((failed + 1)); echo "fuzz smoke run: FAILED"; tail -n 40 build/fuzz.log
fi

# The --disable-static-binary configuration (what sanitizer builds and
# distributions wanting a dynamic binary use): it loads libseccomp itself.
if (mkdir -p build/dynamic && cd build/dynamic && { [ -f Makefile ] || ../../configure --enable-werror \
    --disable-static-binary -q; } && make -j"$(nproc)" -s && make -s check) >build/dynamic.log 2>&1; then
  passed=$((passed + 1)); echo "dynamic build and its unit tests: ok"
else
  failed=$((failed + 1)); echo "dynamic build and its unit tests: FAILED"; tail -n 40 build/dynamic.log
fi

# Each suite has its own conftest.py, so each gets its own pytest run.
# SUITE_BUILD picks the build directory under test (default: build).
run_suite () {
  name=$1
  shift
  echo "== $name"
  b="$PWD/${SUITE_BUILD:-build}"
  OCIRUN="$b/ocirun" OCIRUN_BUILD="$b" /usr/bin/python3 -m pytest -p no:cacheprovider -q \
    --junitxml="build/pytest-$name.xml" "$@"
  rc=$?
  if [ -f "build/pytest-$name.xml" ]; then
    set -- $(/usr/bin/python3 - "build/pytest-$name.xml" <<'PY'
import sys
import xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
s = r if r.tag == "testsuite" else r.find("testsuite")
t, f, e, sk = (int(s.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
print(t - f - e - sk, f + e, sk)
PY
)
    passed=$((passed + $1)); failed=$((failed + $2)); skipped=$((skipped + $3))
    # A crash or a usage error with no failed test still fails the run.
    [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ] && [ "$2" -eq 0 ] && failed=$((failed + 1))
  else
    failed=$((failed + 1))
  fi
}

rm -f build/pytest-*.xml
run_suite integration tests/integration "$@"
[ -d tests/e2e ] && run_suite e2e tests/e2e "$@"
[ -d tests/vm ] && run_suite vm tests/vm "$@"
# The dynamic binary where it differs: seccomp (dlopen'ed) and list (owners).
SUITE_BUILD=build/dynamic run_suite integration-dynamic tests/integration -k "seccomp or test_list" "$@"

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
