#!/bin/sh
# Runs a demo container: a busybox bundle (Debian's busybox-static) made
# from `ocirun spec`, run with `ocirun run`.
set -eu
OCIRUN=${1:-$(dirname "$0")/../build/ocirun}
DEMO=$(mktemp -d /tmp/ocirun-demo.XXXXXX)
trap 'rm -rf "$DEMO"' EXIT
mkdir -p "$DEMO/bundle/rootfs/bin"
cp /bin/busybox "$DEMO/bundle/rootfs/bin/busybox"
for a in sh echo id hostname cat ls uname; do ln -s busybox "$DEMO/bundle/rootfs/bin/$a"; done
"$OCIRUN" spec --bundle "$DEMO/bundle"
/usr/bin/python3 - "$DEMO/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "echo hello from an ocirun container; id; echo hostname: $(hostname); echo kernel: $(uname -r)"]
json.dump(c, open(p, "w"), indent=2)
PY
cd "$DEMO/bundle"
"$OCIRUN" --root "$DEMO/state" run "demo-$$"
