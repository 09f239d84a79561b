#!/usr/bin/env bash
# Set-up shared by the README's two commands: install the Debian packages rdmlearn needs
# (only those missing), then configure and build into build/. Idempotent; run as root on
# Debian 12. Usage: tools/setup.sh [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."

# Build dependencies, then what the tests and the fixtures' reference checks use.
PKGS=(
  build-essential cmake pkg-config git
  libopenmpi-dev openmpi-bin
  libhdf5-openmpi-dev hdf5-tools
  libscalapack-openmpi-dev libopenblas-dev
  libiniparser-dev libpng-dev libjansson-dev libcairo2-dev libzip-dev
  python3 python3-numpy python3-scipy python3-h5py python3-pil python3-sklearn
  python3-torch python3-torchvision
  python3-pytest python3-pandas python3-setuptools python3-pip python3-venv
  clang libclang-rt-14-dev valgrind
  slurm-wlm munge
  chromium
)

missing=()
for p in "${PKGS[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: need root to install packages (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Open MPI refuses to start as root unless told; CI and these machines run as root.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

BUILD=${RDML_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRDML_WERROR=ON "$@" >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
echo "setup: built $BUILD/rdmlearn"
