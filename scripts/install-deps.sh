#!/usr/bin/env bash
# Installs what dearest needs from Debian 12 (bookworm) and nothing else; skips what is present.
set -euo pipefail
packages=(g++ make cmake ninja-build pkg-config
          libdnnl-dev ocl-icd-opencl-dev        # oneDNN 2.6 (its CMake package needs the OpenCL headers)
          libopenblas-openmp-dev                # OpenBLAS on the same OpenMP pool as oneDNN
          libstb-dev libboost-program-options-dev libgtest-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} Debian packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
