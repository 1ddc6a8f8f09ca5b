#!/usr/bin/env bash
# Fills .whl/ with exactly the wheels that the offline GPU machine of scripts/gpu_check.sh
# lacks, on a machine that reaches PyPI and has the project's .venv (made by `make`):
#   bash scripts/gpu_wheels.sh           # resolve, download (or build), prune, size, check
#   bash scripts/gpu_wheels.sh --check   # only the static completeness check of .whl/
#   WHEELS=.whl bash scripts/gpu_check.sh   # then, on the GPU machine (carry .whl/ there)
# The GPU machine's python3 is CPython 3.12 (x86_64, manylinux glibc) with the packages in
# PRESENT below; gpu_check.sh installs .whl/*.whl with `pip install --no-deps --target` and takes
# mask_age_gender itself from the checkout (PYTHONPATH), so .whl/ holds no wheel of the project.
# 1. resolve: pyproject.toml's runtime dependencies and theirs, recursively (markers evaluated for
#    CPython 3.12 on Linux, no extras), stopping at PRESENT and LEFT_OUT, each pinned to the
#    version .venv has installed (PINS="name==version ..." overrides one, e.g. where that version
#    has no cp312 or py3 wheel);
# 2. download each missing one as a cp312/py3 manylinux x86_64 wheel (newer glibc tags only if
#    the usual ones find none); a release with only an sdist is built here into a pure-Python
#    wheel (antlr4-python3-runtime 4.9.3), and anything else fails loudly;
# 3. remove every other file of .whl/ (another version, a package no longer wanted), list the
#    wheels with their sizes and fail above MAX_MIB (40 MiB: all carried to the GPU machine,
#    working tree included, must stay under 64 MiB);
# 4. check, statically (this machine's python3 need not be 3.12): every wheel is installable on
#    CPython 3.12 manylinux x86_64, one version each, its requirements met by PRESENT or another
#    wheel; every third-party top-level import of mask_age_gender/, tests/conftest.py and
#    tests/test_host_syncs.py (and the `_target_` of every conf/ file) is provided by a wheel here
#    or a PRESENT distribution; a LEFT_OUT package is imported only inside functions.
set -euo pipefail
cd "$(dirname "$0")/.." || exit 1

DEST=${WHEELS:-.whl}
VENV_PY=${VENV_PY:-.venv/bin/python} # the versions to pin, and the check's interpreter
MAX_MIB=${MAX_MIB:-40}
PINS=${PINS:-}
# On the GPU machine already (names as pip spells them; nvidia-* stands for the CUDA libraries).
# Their own dependencies are taken to be there too, so the resolution stops at them.
PRESENT="absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs
botorch build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage
cuda-bindings cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops
equinox etils execnet filelock flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch
grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna imageio iniconfig
interface-meta jax jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader lightning
lightning-utilities linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe
matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch mypy-extensions
nanobind narwhals networkx ninja numba numpy numpyro nvidia-* onnx onnxruntime
opencv-python-headless optax opt-einsum orbax-checkpoint packaging pandas pathspec patsy peft pillow
pip pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo
pygments pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock
pytest-timeout pytest-xdist python-dateutil pytorch-lightning pyyaml regex requests rich
safetensors scikit-image scikit-learn scipy seaborn sentencepiece setuptools shellingham simplejson
six sortedcontainers statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore
threadpoolctl tifffile timm tokenizers toolz torch torchaudio torchmetrics torchvision tqdm
transformers triton typer typing-extensions typing-inspect urllib3 werkzeug wheel wrapt xarray
xxhash yarl zipp"
# The versions known there, to check the wheels' requirements against.
PRESENT_VERSIONS="numpy==2.5.2 torch==2.11.0 torchvision==0.26.0 torchmetrics==1.9.0
pytorch-lightning==2.6.6"
# Left out on purpose: large, and only for optional features that gpu_check.sh never uses. The
# check fails if anything it runs imports one of them at module level.
#   wandb (~20 MiB of wheels): logger=wandb only; imported inside results/to_loggers.to_wandb.
#   hydra-optuna-sweeper, optuna, sqlalchemy, alembic (and their cmaes, colorlog, cliff, Mako,
#     greenlet, ...): hparams_search=optuna sweeps only; no module of the package imports them.
#   hydra-submitit-launcher, submitit: hydra/launcher=slurm_gpu|submitit_local sweeps only.
LEFT_OUT="wandb hydra-optuna-sweeper optuna sqlalchemy alembic hydra-submitit-launcher submitit"
export PRESENT PRESENT_VERSIONS LEFT_OUT PINS DEST MAX_MIB

PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
MORE_PLATFORMS=(--platform manylinux_2_31_x86_64 --platform manylinux_2_34_x86_64
  --platform manylinux_2_35_x86_64) # the GPU machine's Python 3.12.3 suggests glibc 2.39

die() {
  echo "gpu_wheels: ERROR: $*" >&2
  exit 1
}
test -x "$VENV_PY" || die "no $VENV_PY: make the project's .venv first (make), or set VENV_PY"

helper() { # COMMAND [ARGS...]: the Python half, run by .venv's interpreter (packaging, tomllib)
  "$VENV_PY" - "$@" <<'PYTHON'
import ast
import os
import re
import sys
import tomllib
import zipfile
from email.parser import Parser
from fnmatch import fnmatch
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import parse_wheel_filename
from packaging.version import Version


def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


PRESENT = [norm(n) for n in os.environ["PRESENT"].split()]
LEFT_OUT = {norm(n) for n in os.environ["LEFT_OUT"].split()}


def pins(text):
    """{normalised name: version} of "name==version ..." """
    return {norm(name): version for name, version in (p.split("==") for p in text.split())}


KNOWN = pins(os.environ["PRESENT_VERSIONS"])
PINS = pins(os.environ["PINS"])
DEST = Path(os.environ["DEST"])
# the GPU machine: CPython 3.12.3 on x86_64 Linux, no extras asked for
ENV = default_environment() | {
    "python_version": "3.12", "python_full_version": "3.12.3", "implementation_name": "cpython",
    "platform_python_implementation": "CPython", "sys_platform": "linux",
    "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix", "extra": "",
}
# importable on 3.11 (the interpreter running this), gone from 3.12's standard library
GONE_IN_312 = {"distutils", "imp", "asynchat", "asyncore", "smtpd"}


def present(name):
    return any(fnmatch(norm(name), p) for p in PRESENT)


def applies(req):
    return req.marker is None or req.marker.evaluate(ENV)


def wheels():
    """{normalised name: (version, path)} of DEST's wheels; fails on two versions of one."""
    found = {}
    for path in sorted(DEST.glob("*.whl")):
        name, version, _, _ = parse_wheel_filename(path.name)
        if name in found:
            sys.exit(f"two wheels of {name}: {found[name][1].name}, {path.name}")
        found[name] = (version, path)
    return found


def resolve():
    """Prints NAME==VERSION for every distribution the GPU machine lacks, sorted."""
    roots = tomllib.loads(Path("pyproject.toml").read_text())["project"]["dependencies"]
    queue = [(Requirement(r), "pyproject.toml") for r in roots]
    want = {}
    while queue:
        req, by = queue.pop()
        name = norm(req.name)
        if not applies(req) or present(name) or name in want:
            continue
        if name in LEFT_OUT:
            if by != "pyproject.toml":
                sys.exit(f"{by} requires {req}, which is left out: drop it from LEFT_OUT")
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            sys.exit(f"{req} (required by {by}) is not installed in .venv: nothing to pin it to")
        version = PINS.get(name, dist.version)
        if not req.specifier.contains(version, prereleases=True):
            sys.exit(f"{by} requires {req}, and the version pinned is {version}")
        want[name] = version
        queue += [(Requirement(r), f"{name} {version}") for r in dist.requires or []]
    for name in sorted(want):
        print(f"{name}=={want[name]}")


def prune(wanted):
    """Deletes DEST's files that are not a wanted wheel; prints the wanted ones missing."""
    wanted = pins(" ".join(wanted))
    have = set()
    for path in sorted(DEST.iterdir()):
        if path.suffix == ".whl":
            name, version, _, _ = parse_wheel_filename(path.name)
            if name in wanted and version == Version(wanted[name]) and name not in have:
                have.add(name)
                continue
        print(f"removing {path.name}", file=sys.stderr)
        path.unlink()
    for name in sorted(set(wanted) - have):
        print(f"{name}=={wanted[name]}")


def top_levels(path):
    """The importable top-level names a wheel installs."""
    names = set()
    for member in zipfile.ZipFile(path).namelist():
        first = member.split("/")[0]
        if "/" not in member:  # a module beside the packages: name.py, name.cpython-312-….so
            first = first.split(".")[0] if first.endswith((".py", ".so")) else ""
        if first and not first.endswith((".dist-info", ".data", ".libs")):
            names.add(first)
    return names


def imports():
    """[(top-level name, where, at import time)] of the sources gpu_check.sh runs."""
    files = sorted(Path("mask_age_gender").rglob("*.py"))
    files += [Path("tests/conftest.py"), Path("tests/test_host_syncs.py")]
    found = []
    for file in files:
        tree = ast.parse(file.read_text(), str(file))
        lazy = set()  # the imports inside a function run only when it is called
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lazy.update(id(n) for n in ast.walk(node) if n is not node)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.append((name.split(".")[0], f"{file}:{node.lineno}", id(node) not in lazy))
    # Hydra instantiates the configs' _target_ during a run
    for file in sorted(Path("conf").rglob("*.yaml")):
        for lineno, line in enumerate(file.read_text().splitlines(), 1):
            if m := re.match(r"\s*_target_:\s*([A-Za-z_]\w*)", line):
                found.append((m.group(1), f"{file}:{lineno}", True))
    return found


def check():
    errors, notes, unknown = [], [], {}
    have = wheels()
    if not have:
        sys.exit(f"no wheels in {DEST}/")
    platforms = [f"manylinux_2_{n}_x86_64" for n in range(35, 4, -1)]
    platforms += ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
    supported = set(cpython_tags((3, 12), abis=["cp312"], platforms=platforms))
    supported |= set(compatible_tags((3, 12), "cp312", platforms))
    provides = {}  # import name -> wheel
    for name, (version, path) in have.items():
        _, _, _, tags = parse_wheel_filename(path.name)
        if not tags & supported:
            errors.append(f"{path.name}: not installable on CPython 3.12 manylinux x86_64")
        if present(name) or name in LEFT_OUT:
            errors.append(f"{path.name}: {name} is PRESENT or LEFT_OUT, not to be carried")
        for top in top_levels(path):
            provides[top] = name
        with zipfile.ZipFile(path) as whl:
            meta = next(m for m in whl.namelist() if m.endswith(".dist-info/METADATA"))
            requires = Parser().parsestr(whl.read(meta).decode()).get_all("Requires-Dist") or []
        for req in map(Requirement, requires):
            dep = norm(req.name)
            if not applies(req):
                continue
            if dep in have:
                got = have[dep][0]
            elif present(dep):
                got = KNOWN.get(dep)
                if got is None and req.specifier:
                    unknown.setdefault(dep, set()).add(f"{req.specifier} ({name})")
            else:
                errors.append(f"{path.name} requires {req}: neither PRESENT nor a wheel here")
                continue
            if got is not None and not req.specifier.contains(got, prereleases=True):
                errors.append(f"{path.name} requires {req}, and {dep} is {got} there")
    packages = metadata.packages_distributions()  # import name -> distributions, in .venv
    stdlib = sys.stdlib_module_names - GONE_IN_312
    seen = {}
    for top, where, eager in imports():
        if top in stdlib or top in ("__future__", "mask_age_gender"):
            continue
        dists = {norm(d) for d in packages.get(top, [])}
        if top in provides:
            how = f"wheel {provides[top]}"
        elif any(present(d) for d in dists):
            how = "PRESENT " + ",".join(sorted(d for d in dists if present(d)))
        elif dists & LEFT_OUT:
            how = "LEFT_OUT " + ",".join(sorted(dists & LEFT_OUT))
            if eager:
                errors.append(f"{where}: imports {top} at import time, and it is {how}")
            else:
                notes.append(f"{where}: {top} ({how}) only inside a function")
        else:
            errors.append(f"{where}: imports {top}, which nothing provides on the GPU machine")
            continue
        seen.setdefault(top, how)
    for top, how in sorted(seen.items()):
        print(f"  import {top:34} {how}")
    for dep, needs in sorted(unknown.items()):
        notes.append(f"{dep} there, version unknown here, must satisfy {', '.join(sorted(needs))}")
    for note in notes:
        print(f"  note: {note}")
    for error in errors:
        print(f"  ERROR: {error}", file=sys.stderr)
    if errors:
        sys.exit(f"check failed: {len(errors)} problem(s)")
    print(f"check: ok, {len(have)} wheels, {len(seen)} third-party top-level imports covered")


command = sys.argv[1]
if command == "resolve":
    resolve()
elif command == "prune":
    prune(sys.argv[2:])
elif command == "check":
    check()
PYTHON
}

sizes() { # the wheels, their sizes, the total; fails above MAX_MIB
  local total=0 size f
  compgen -G "$DEST/*.whl" > /dev/null || die "no wheels in $DEST/"
  for f in "$DEST"/*.whl; do
    size=$(stat -c %s "$f")
    total=$((total + size))
    printf '%8d KiB  %s\n' $((size / 1024)) "${f##*/}"
  done
  awk -v t="$total" -v m="$MAX_MIB" \
    'BEGIN { printf "total %.2f MiB (limit %d MiB)\n", t / 1048576, m }'
  ((total <= MAX_MIB * 1048576)) || die "the wheels exceed ${MAX_MIB} MiB: leave something out"
}

if [ "${1:-}" = "--check" ]; then
  sizes
  helper check
  exit
fi
[ $# -eq 0 ] || die "usage: bash scripts/gpu_wheels.sh [--check]"

mkdir -p "$DEST"
RESOLVED=$(helper resolve) || die "could not resolve the dependencies"
mapfile -t WANTED <<< "$RESOLVED"
echo "wanted on the GPU machine: ${WANTED[*]}"
PRUNED=$(helper prune "${WANTED[@]}") || die "could not prune $DEST/"
mapfile -t MISSING < <(printf '%s' "$PRUNED" | grep .)

download() { # SPEC PLATFORM-OPTIONS...: a cp312 or py3 wheel of SPEC into DEST
  local spec=$1
  shift
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp "$@" -d "$DEST" "$spec"
}

for spec in "${MISSING[@]}"; do
  echo "fetching $spec"
  download "$spec" "${PLATFORMS[@]}" 2> /dev/null && continue
  echo "  no wheel for glibc <= 2.28: trying newer manylinux tags"
  download "$spec" "${PLATFORMS[@]}" "${MORE_PLATFORMS[@]}" 2> /dev/null && continue
  echo "  no cp312/py3 wheel: building one from the sdist (pure Python only)"
  build=$(mktemp -d)
  python3 -m pip wheel -q --no-deps --no-binary "${spec%%==*}" -w "$build" "$spec" \
    || die "$spec: no cp312/py3 wheel and no sdist that builds; pin another version (PINS)"
  for whl in "$build"/*.whl; do
    case "$whl" in
      *-py3-none-any.whl | *-py2.py3-none-any.whl) mv "$whl" "$DEST/" ;;
      *) die "$spec builds ${whl##*/}, not pure Python: pin another version (PINS)" ;;
    esac
  done
  rm -rf "$build"
done

echo "wheels in $DEST/:"
sizes
helper check
