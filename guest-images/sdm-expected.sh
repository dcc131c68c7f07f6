#!/bin/sh
# Writes expected/NAME.out and NAME.status for an image whose expected output
# comes from the SDM, not from QEMU (fpu; tests/common/mod.rs SDM_EXPECTED):
# the output of a run in which every check passes. Each check's expected
# value is in the kernel's source (reasoned from the SDM there), so the
# passing output is the kernel's own lines with every failure rewritten into
# its passing form:
#   "X: FAIL got A expected B"                 -> "X: ok"
#   "X: vector=V count=C eip=E" followed by
#   "X: FAIL expected vector=W count=1 eip=fault" -> "X: vector=W count=1 eip=fault"
# The run is QEMU's (the names and order of the lines are the kernel's; QEMU
# only supplies them). Review the diff against the previous file: a new
# failing line means QEMU disagrees with the kernel's expectation, which must
# then be the SDM's (see README "The x87 images").
#
# Usage: ./sdm-expected.sh fpu
set -eu
cd "$(dirname "$0")"
name=$1
timeout "${TIMEOUT:-60}" "${QEMU:-qemu-system-i386}" -kernel "bin/$name.elf" -display none \
    -serial stdio -monitor none -no-reboot \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 -m 128 </dev/null >"expected/$name.qemu.tmp" || true
awk '
    /: FAIL expected vector=[0-9]+ count=1 eip=fault$/ {
        n = index($0, ": FAIL expected ")
        v = substr($0, n + 16)
        sub(/ count=1 eip=fault$/, "", v)
        held = substr($0, 1, n - 1) ": " v " count=1 eip=fault"
        next
    }
    { if (have) print held; held = $0; have = 1 }
    /: FAIL got / { held = substr($0, 1, index($0, ": FAIL got ") - 1) ": ok" }
    END { if (have) print held }
' "expected/$name.qemu.tmp" >"expected/$name.out"
rm -f "expected/$name.qemu.tmp"
echo 1 >"expected/$name.status"
echo "$name: expected/$name.out rewritten ($(wc -l <"expected/$name.out") lines, $(grep -c FAIL "expected/$name.out" || true) FAIL)"
