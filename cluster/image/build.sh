#!/usr/bin/env bash
# Builds the goproxy-ha container image offline: FROM scratch plus the binary and exactly the
# shared libraries it links (read from ldd), so no base image is ever pulled.
#   cluster/image/build.sh [--vcs] [binary] [tag]
# --vcs adds what `direct` routes run: the go command (from this machine's golang-go), git
# with its HTTP(S) helpers, ssh, and /bin/sh (git runs GIT_SSH_COMMAND through it).
set -euo pipefail
vcs=0
if [ "${1:-}" = "--vcs" ]; then vcs=1; shift; fi
binary=${1:-target/release/goproxy-ha}
tag=${2:-goproxy-ha:latest}
here=$(cd "$(dirname "$0")" && pwd)
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT

[ -x "$binary" ] || { echo "build.sh: $binary is not an executable (run cargo build first)" >&2; exit 1; }
mkdir -p "$context/rootfs/usr/local/bin" "$context/rootfs/etc/goproxy-ha" \
         "$context/rootfs/var/lib/goproxy-ha" "$context/rootfs/tmp"
cp "$binary" "$context/rootfs/usr/local/bin/goproxy-ha"
executables=("$binary")
if [ "$vcs" = 1 ]; then
    go=$(readlink -f "$(command -v go)") || { echo "build.sh --vcs: no go (apt-get install golang-go)" >&2; exit 1; }
    goroot=$(dirname "$(dirname "$go")")
    # Module downloads need only the go binary and VERSION from GOROOT.
    mkdir -p "$context/rootfs$goroot/bin" "$context/rootfs/usr/bin" "$context/rootfs/bin"
    cp "$go" "$context/rootfs$goroot/bin/go"
    cp "$goroot/VERSION" "$context/rootfs$goroot/VERSION"
    ln -s "$goroot/bin/go" "$context/rootfs/usr/bin/go"
    gitcore=$(git --exec-path)
    mkdir -p "$context/rootfs$gitcore"
    cp -a "$gitcore/." "$context/rootfs$gitcore/"
    for tool in /usr/bin/git /usr/bin/ssh /bin/false; do
        path=$(readlink -f "$tool") && [ -x "$path" ] || {
            echo "build.sh --vcs: $tool is missing (apt-get install git openssh-client)" >&2; exit 1; }
        cp "$path" "$context/rootfs/usr/bin/$(basename "$tool")"
        executables+=("$path")
    done
    ln -s /usr/bin/false "$context/rootfs/bin/false"
    # ssh refuses to run as a uid it cannot name.
    printf 'root:x:0:0:root:/root:/bin/sh\n' > "$context/rootfs/etc/passwd"
    printf 'root:x:0:\n' > "$context/rootfs/etc/group"
    cp -L /bin/sh "$context/rootfs/bin/sh"
    executables+=(/bin/sh "$gitcore/git-remote-http" "$gitcore/git-http-fetch")
fi
# Every library the dynamic loader resolves, plus the loader itself, at the same paths.
for exe in "${executables[@]}"; do ldd "$exe"; done |
awk '/=> \//{print $3} /^\s*\/[^ ]*ld-linux/{print $1}' | sort -u |
while read -r lib; do
    mkdir -p "$context/rootfs$(dirname "$lib")"
    cp -L "$lib" "$context/rootfs$lib"
done
# The x86_64 ABI names the loader /lib64/ld-linux-x86-64.so.2 even on merged-/usr systems.
if [ -e /lib64/ld-linux-x86-64.so.2 ] && [ ! -e "$context/rootfs/lib64/ld-linux-x86-64.so.2" ]; then
    mkdir -p "$context/rootfs/lib64"
    cp -L /lib64/ld-linux-x86-64.so.2 "$context/rootfs/lib64/"
fi
# Name resolution for the upstream URL and peers given by name.
printf 'hosts: files dns\n' > "$context/rootfs/etc/nsswitch.conf"
for lib in /lib/x86_64-linux-gnu/libnss_dns.so.2 /lib/x86_64-linux-gnu/libnss_files.so.2 \
           /lib/x86_64-linux-gnu/libresolv.so.2; do
    if [ -e "$lib" ]; then
        mkdir -p "$context/rootfs$(dirname "$lib")"
        cp -L "$lib" "$context/rootfs$lib"
    fi
done
if [ -d /etc/ssl/certs ]; then
    mkdir -p "$context/rootfs/etc/ssl/certs"
    cp -L /etc/ssl/certs/ca-certificates.crt "$context/rootfs/etc/ssl/certs/" 2>/dev/null || true
fi
cp "$here/Dockerfile" "$context/Dockerfile"
docker build -q -t "$tag" "$context" >"$context/build.log" 2>&1 || { cat "$context/build.log" >&2; exit 1; }
echo "built $tag ($(du -sh "$context/rootfs" | cut -f1) rootfs)"
