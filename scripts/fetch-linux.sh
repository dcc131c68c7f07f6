#!/bin/sh
# Fetches the Linux guest of issue 13: Debian 12's i386 kernel (the
# non-PAE 686 flavour) and busybox-static, both pinned below by version
# and sha256, and builds a reproducible initramfs around scripts/linux/init.
#
#   scripts/fetch-linux.sh           fetch (or reuse) the pinned files, build the initramfs
#   scripts/fetch-linux.sh --repin   pin what Debian bookworm ships today, fetch, and
#                                    regenerate tests/linux/init.expected under QEMU
#   scripts/fetch-linux.sh --expected  only that regeneration (QEMU 7.2, qemu-system-x86)
#
# Files are cached outside git, in $BT86_LINUX_CACHE (default target/linux):
#   vmlinuz               the bzImage (from the .deb, by dpkg-deb -x)
#   initramfs.cpio.gz     busybox + scripts/linux/init as /init and
#                         scripts/linux/kallsyms as /kallsyms (newc, mtimes 0, gzip -n)
#   config                the kernel's .config
#   System.map            the kernel's symbols (its /proc/kallsyms), for
#                         `bt86 run --symbols`; valid only with `nokaslr`
#   debs/  apt/  root/    the .debs, a private APT state, the unpacked files
#
# The host's package set-up is never touched: APT runs on a private state
# directory with an i386-only sources list (bookworm main on deb.debian.org).
# Needs apt-get, dpkg-deb, gzip, sha256sum and cargo; qemu-system-i386 for
# System.map and --expected.
#
# Debian's package ships a stub System.map (the real one is in the -dbg
# package, hundreds of MB), so the map comes from the kernel itself: QEMU
# boots it with `nokaslr rdinit=/kallsyms`, and the initramfs's /kallsyms
# prints /proc/kallsyms between markers. Made only when System.map is not
# in the cache yet (delete it to make it again; --repin does).
set -eu

# --- pins (rewritten by --repin) ---------------------------------------
KERNEL_PKG=linux-image-6.1.0-50-686
KERNEL_VERSION=6.1.176-1
KERNEL_SHA256=526c469c5148a2b61c4241c3f6575427096575e0ffef9541b6729351c600b3e4
BUSYBOX_PKG=busybox-static
BUSYBOX_VERSION=1:1.35.0-4+deb12u1+b1
BUSYBOX_SHA256=725ef9e6fbac4ab79b353165b05005e8c140d6e42177ebbc202ff1e13ded8b7c
# -----------------------------------------------------------------------

REPO=$(cd "$(dirname "$0")/.." && pwd)
SELF="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
CACHE=${BT86_LINUX_CACHE:-$REPO/target/linux}
APTDIR="$CACHE/apt"
mkdir -p "$APTDIR/empty" "$CACHE/debs" "$APTDIR/state/lists/partial" "$APTDIR/cache/archives/partial"
echo "deb [arch=i386] http://deb.debian.org/debian bookworm main" >"$APTDIR/sources.list"

apt_opts() {
    echo "-o Dir::State=$APTDIR/state -o Dir::Cache=$APTDIR/cache" \
        "-o Dir::Etc::SourceList=$APTDIR/sources.list -o Dir::Etc::SourceParts=$APTDIR/empty" \
        "-o Dir::Etc::Preferences=$APTDIR/empty -o Dir::Etc::PreferencesParts=$APTDIR/empty" \
        "-o APT::Architecture=i386 -o APT::Architectures=i386 -o Debug::NoLocking=1" \
        "-o APT::Sandbox::User=$(id -un)"
}
apt_update() { apt-get $(apt_opts) -qq update; }
# The value of FIELD in `apt-cache show PKG[=VERSION]`'s first stanza.
field() { apt-cache $(apt_opts) show "$1" 2>/dev/null | sed -n "s/^$2: //p" | head -n 1; }

if [ "${1:-}" = "--repin" ]; then
    apt_update
    kpkg=$(apt-cache $(apt_opts) depends linux-image-686 | sed -n 's/^ *Depends: \(linux-image-[0-9].*-686\)$/\1/p' | head -n 1)
    [ -n "$kpkg" ] || { echo "fetch-linux: linux-image-686 names no kernel package" >&2; exit 1; }
    kver=$(field "$kpkg" Version); ksha=$(field "$kpkg" SHA256)
    bver=$(field busybox-static Version); bsha=$(field busybox-static SHA256)
    sed -i -e "s/^KERNEL_PKG=.*/KERNEL_PKG=$kpkg/" -e "s/^KERNEL_VERSION=.*/KERNEL_VERSION=$kver/" \
        -e "s/^KERNEL_SHA256=.*/KERNEL_SHA256=$ksha/" -e "s/^BUSYBOX_VERSION=.*/BUSYBOX_VERSION=$bver/" \
        -e "s/^BUSYBOX_SHA256=.*/BUSYBOX_SHA256=$bsha/" "$SELF"
    echo "fetch-linux: pinned $kpkg $kver and busybox-static $bver in $SELF"
    rm -f "$CACHE/System.map"
    "$SELF"
    exec "$SELF" --expected
fi

# qemu APPEND: boots the cached kernel and initramfs under QEMU (-M isapc,
# a CPU with bt86's CPUID flags) with the kernel command line APPEND; COM1
# on stdout, without CRs.
qemu() {
    cpu=pentium3,-mmx,-sse,-fxsr,-apic,-pae,-mce,-pat,-pse36,-vme,-mtrr,-mca,-hypervisor,+sep
    timeout 300 qemu-system-i386 -M isapc -cpu "$cpu" -m 128 -kernel "$CACHE/vmlinuz" \
        -initrd "$CACHE/initramfs.cpio.gz" -append "$1" -display none \
        -serial stdio -monitor none -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
        </dev/null | tr -d '\r'
}

# The /init output under QEMU from the start marker to the end marker:
# tests/linux/init.expected.
if [ "${1:-}" = "--expected" ]; then
    qemu "console=ttyS0 quiet" | sed -n '/^=== bt86 init: start ===$/,/^=== bt86 init: end ===$/p' \
        >"$REPO/tests/linux/init.expected"
    echo "fetch-linux: wrote tests/linux/init.expected ($(wc -l <"$REPO/tests/linux/init.expected") lines)"
    exit 0
fi

# deb_path PKG VERSION: where the .deb is cached.
deb_path() { echo "$CACHE/debs/$1_$(echo "$2" | sed 's/^[0-9]*://')_i386.deb"; }
sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

# fetch PKG VERSION SHA256: the pinned .deb, checked, in $CACHE/debs.
fetch() {
    deb=$(deb_path "$1" "$2")
    sha_ok "$deb" "$3" && return 0
    [ -n "${updated:-}" ] || { apt_update; updated=1; }
    if [ -z "$(field "$1=$2" Version)" ]; then
        now=$(field "$1" Version)
        echo "fetch-linux: the pinned $1 $2 is no longer in Debian's archive (bookworm main has ${now:-no $1 at all})." >&2
        echo "fetch-linux: run 'scripts/fetch-linux.sh --repin' to pin what Debian ships today." >&2
        exit 3
    fi
    (cd "$CACHE/debs" && apt-get $(apt_opts) -qq download "$1=$2")
    # apt-get names the file with the epoch as %3a; normalise.
    for f in "$CACHE/debs/$1"_*%3a*; do [ -e "$f" ] && mv "$f" "$deb"; done
    sha_ok "$deb" "$3" || { echo "fetch-linux: $deb: sha256 is not the pinned $3" >&2; exit 1; }
}

fetch "$KERNEL_PKG" "$KERNEL_VERSION" "$KERNEL_SHA256"
fetch "$BUSYBOX_PKG" "$BUSYBOX_VERSION" "$BUSYBOX_SHA256"

rm -rf "$CACHE/root"
mkdir -p "$CACHE/root"
dpkg-deb -x "$(deb_path "$KERNEL_PKG" "$KERNEL_VERSION")" "$CACHE/root"
dpkg-deb -x "$(deb_path "$BUSYBOX_PKG" "$BUSYBOX_VERSION")" "$CACHE/root"
abi=${KERNEL_PKG#linux-image-}
cp "$CACHE/root/boot/vmlinuz-$abi" "$CACHE/vmlinuz"
cp "$CACHE/root/boot/config-$abi" "$CACHE/config"

cat >"$CACHE/initramfs.list" <<EOF
dir /bin 755 0 0
dir /dev 755 0 0
nod /dev/console 600 0 0 c 5 1
dir /proc 755 0 0
dir /sys 755 0 0
file /bin/busybox $CACHE/root/bin/busybox 755 0 0
slink /bin/sh busybox 777 0 0
file /init $REPO/scripts/linux/init 755 0 0
file /kallsyms $REPO/scripts/linux/kallsyms 755 0 0
EOF
(cd "$REPO" && cargo run --quiet --release --example mkinitramfs -- "$CACHE/initramfs.list" "$CACHE/initramfs.cpio")
gzip -n -9 -f "$CACHE/initramfs.cpio"

# System.map: /proc/kallsyms of the kernel booted with nokaslr (so the
# addresses are the link-time ones), between /kallsyms's markers. Refused
# when every address is 0 (kptr_restrict hid them) or startup_32 is
# missing (not this kernel's text).
if [ ! -s "$CACHE/System.map" ]; then
    echo "fetch-linux: booting the kernel under QEMU for its System.map (nokaslr rdinit=/kallsyms)"
    qemu "console=ttyS0 quiet nokaslr rdinit=/kallsyms" \
        | sed -n '/^=== bt86 kallsyms: start ===$/,/^=== bt86 kallsyms: end ===$/{/^===/d;p}' \
        >"$CACHE/System.map.part"
    if ! grep -q '^[0-9a-f]* [tT] startup_32$' "$CACHE/System.map.part" \
        || ! grep -qv '^0* ' "$CACHE/System.map.part"; then
        echo "fetch-linux: QEMU's boot gave no usable System.map (see $CACHE/System.map.part)" >&2
        exit 1
    fi
    mv "$CACHE/System.map.part" "$CACHE/System.map"
fi

echo "fetch-linux: $KERNEL_PKG $KERNEL_VERSION, $BUSYBOX_PKG $BUSYBOX_VERSION"
sha256sum "$CACHE/vmlinuz" "$CACHE/initramfs.cpio.gz"
echo "fetch-linux: System.map: $(wc -l <"$CACHE/System.map") symbols, _text at $(sed -n 's/ [tT] _text$//p' "$CACHE/System.map")"
