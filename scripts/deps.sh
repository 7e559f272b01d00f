#!/usr/bin/env bash
# Install the Debian packages stage-node needs, and only those that are missing.
# Usage: scripts/deps.sh [build|test|bench]   (each level includes the ones before)
set -euo pipefail

level=${1:-build}
build_pkgs=(make gcc pkg-config cmake liblua5.3-dev libzmq3-dev libmsgpack-dev libev-dev
            libmicrohttpd-dev libcjson-dev libbson-dev libcurl4-openssl-dev libwslay-dev
            libssl-dev unixodbc-dev python3)
test_pkgs=(libcriterion-dev lua5.3 clang libclang-rt-14-dev
           docker-compose prometheus python3-yaml shellcheck binutils
           python3 python3-zmq python3-websockets chromium iproute2 iputils-ping libhiredis-dev
           unixodbc libsqliteodbc odbc-postgresql postgresql)
bench_pkgs=(lua-cjson redis-server valgrind)

pkgs=("${build_pkgs[@]}")
case "$level" in
    build) ;;
    test) pkgs+=("${test_pkgs[@]}") ;;
    bench) pkgs+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
    *) echo "deps.sh: unknown level '$level' (build|test|bench)" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "deps.sh: installing missing Debian packages: ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "deps.sh: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
