#!/bin/bash
# Installs the Debian packages OpenVSS needs to build and test, when any is missing.
set -euo pipefail
pkgs=(make meson ninja-build gcc g++ pkg-config libsystemd-dev libjson-c-dev libsqlite3-dev libbtrfsutil-dev libmount-dev
      libcurl4-openssl-dev libssl-dev openssl etcd-server etcd-client iproute2 socat
      btrfs-progs xfsprogs util-linux systemd valgrind libarchive-dev
      sqlite3 postgresql libpq-dev qemu-guest-agent mariadb-server mariadb-client
      attr acl libcap2-bin e2fsprogs restic borgbackup python3-dev dbus-bin
      scdoc mandoc groff-base bash-completion
      build-essential debhelper dpkg-dev lintian) # the last four: the package (dpkg-buildpackage, heavy/package)
missing=()
for p in "${pkgs[@]}"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
        echo "missing packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
        exit 1
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
