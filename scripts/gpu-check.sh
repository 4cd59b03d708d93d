#!/usr/bin/env bash
# The GPU check, machine side here: builds the `xtask` binary and the backend conformance test
# binary with `--features cuda` (release), strips them, packs them with the Beauty dataset files
# into gpu-check/bundle.tar.gz, and checks that the bundle and the working tree together fit what a
# lent GPU machine receives (64 MiB). On the GPU machine, scripts/gpu-device.sh unpacks the bundle
# and runs the checks within one 10-minute command, writing its numbers to $OUT.
#
#   scripts/gpu-check.sh                          # cuda, release: the real package (~25 min cold)
#   scripts/gpu-check.sh --features wgpu --profile dev   # the same steps on other binaries (CI)
#
# Then, on the machine with the GPU: carry `gpu-check` and run `scripts/gpu-device.sh`
# (docs: README "Backends", docs/benchmarks.md "GPU path").
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

features=cuda
profile=release
limit_mib=${GPU_CHECK_LIMIT_MIB:-64}
out=gpu-check
usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
  echo "options: --features cuda|wgpu (default cuda)  --profile release|dev (default release)  --limit-mib N (default 64)"
}
while [ $# -gt 0 ]; do
  case "$1" in
    --features) features=$2; shift 2 ;;
    --profile) profile=$2; shift 2 ;;
    --limit-mib) limit_mib=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "error: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
case "$profile" in release|dev) ;; *) echo "error: --profile must be release or dev" >&2; exit 2 ;; esac
command -v python3 >/dev/null || { echo "error: python3 is needed to read cargo's build messages" >&2; exit 1; }
if command -v strip >/dev/null; then strip_cmd=(strip --strip-all)
elif command -v objcopy >/dev/null; then strip_cmd=(objcopy --strip-all)
else echo "error: neither strip nor objcopy found (binutils)" >&2; exit 1; fi

# 1. Build: the command-line binary and the conformance test binary, one cargo invocation.
profile_flag=()
[ "$profile" = release ] && profile_flag=(--release)
started=$(date +%s)
echo "building xtask and the conformance test (--features $features, $profile)…" >&2
messages=$(cargo build "${profile_flag[@]}" -p xtask --features "$features" --bin xtask --test conformance \
  --message-format=json-render-diagnostics)
built_s=$(( $(date +%s) - started ))
read -r xtask_bin conformance_bin < <(python3 -c '
import json, sys
bins = {}
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        t = m["target"]
        key = "test" if t["kind"] == ["test"] else "bin"
        if t["name"] in ("xtask", "conformance"):
            bins[(key, t["name"])] = m["executable"]
x, c = bins.get(("bin", "xtask")), bins.get(("test", "conformance"))
if not x or not c:
    sys.exit("cargo did not report both executables: %r" % bins)
print(x, c)
' <<<"$messages")
echo "built in ${built_s} s: $xtask_bin, $conformance_bin" >&2

# 2. Package: stripped binaries, the Beauty dataset files (the device has no data and no
#    internet), and a note of what was built from what.
rm -rf "$out"
stage="$out/.stage"
mkdir -p "$stage/bin" "$stage/datasets/amazon"
for pair in "xtask:$xtask_bin" "conformance:$conformance_bin"; do
  name=${pair%%:*}
  cp "${pair#*:}" "$stage/bin/$name"
  "${strip_cmd[@]}" "$stage/bin/$name"
done
beauty="${RASTP_DATASETS:-datasets}/amazon/beauty"
if [ -d "$beauty" ]; then
  cp -rL "$beauty" "$stage/datasets/amazon/beauty"
  chmod -R u+w "$stage/datasets"
else
  echo "warning: $beauty not found; the device will skip the Beauty steps" >&2
fi
{
  echo "features=$features"
  echo "profile=$profile"
  echo "commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo +changes)"
  echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "build_seconds=$built_s"
} >"$stage/build.txt"
(cd "$stage" && tar -czf ../bundle.tar.gz .)
cp "$stage/build.txt" "$out/build.txt"
(cd "$stage" && find . -type f -printf '%s\t%p\n' | sort -k2) >"$out/contents.txt"
echo "stripped binaries: $(du -sh "$stage/bin/xtask" | cut -f1) xtask, $(du -sh "$stage/bin/conformance" | cut -f1) conformance" >&2
rm -rf "$stage"

# 3. Size check: what travels is the working tree (tracked and untracked files that git does not
#    ignore) plus the carried `gpu-check` folder.
tree_bytes=$(git ls-files -z --cached --others --exclude-standard | python3 -c '
import os, sys
names = [n for n in sys.stdin.buffer.read().split(b"\0") if n]
print(sum(os.lstat(n).st_size for n in names if os.path.lexists(n) and not os.path.islink(n)))
')
bundle_bytes=$(du -sb "$out" | cut -f1)
total=$((tree_bytes + bundle_bytes))
limit=$((limit_mib * 1024 * 1024))
mib() { python3 -c "print('%.1f MiB' % ($1 / 1048576))"; }
echo "package: $out/ $(mib "$bundle_bytes"); working tree $(mib "$tree_bytes"); together $(mib "$total") of $limit_mib MiB"
if [ "$total" -gt "$limit" ]; then
  echo "error: the working tree and $out/ together exceed $limit_mib MiB; the GPU machine would not receive them" >&2
  exit 1
fi
echo "ok: carry [\"$out\"] and run scripts/gpu-device.sh on the GPU machine (features $features)"
