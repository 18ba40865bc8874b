#!/bin/sh
# The whole test suite: C unit tests (make check), a short fuzzing run of the
# config parser, and the pytest integration suite. Ends with pytest's summary
# and a combined `N passed, N failed` line.
set -u
cd "$(dirname "$0")/.."
scripts/install-deps.sh || exit 1
scripts/build.sh || exit 1

failed=0
passed=0
if make -C build -s check >build/check.log 2>&1; then
  passed=$((passed + 1)); echo "unit tests (make check): ok"
else
  failed=$((failed + 1)); echo "unit tests (make check): FAILED"; cat build/check.log
  for f in build/tests/unit/*.log; do [ -f "$f" ] && tail -n 30 "$f"; done
fi
if make -C build -s fuzz-smoke FUZZ_SECONDS="${FUZZ_SECONDS:-30}" >build/fuzz.log 2>&1; then
  passed=$((passed + 1)); echo "fuzz smoke run: ok"
else
  failed=$((failed + 1)); echo "fuzz smoke run: FAILED"; tail -n 40 build/fuzz.log
fi

OCIRUN="$PWD/build/ocirun" /usr/bin/python3 -m pytest -p no:cacheprovider tests/integration -q \
  --junitxml=build/pytest.xml "$@"
rc=$?
if [ -f build/pytest.xml ]; then
  set -- $(/usr/bin/python3 - <<'PY'
import xml.etree.ElementTree as ET
r = ET.parse("build/pytest.xml").getroot()
s = r if r.tag == "testsuite" else r.find("testsuite")
t, f, e, sk = (int(s.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
print(t - f - e - sk, f + e, sk)
PY
)
  passed=$((passed + $1)); failed=$((failed + $2)); skipped=$3
else
  failed=$((failed + 1)); skipped=0
fi
[ $rc -ne 0 ] && [ $rc -ne 5 ] && [ "$failed" -eq 0 ] && failed=1
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
