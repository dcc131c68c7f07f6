#!/bin/sh
# Runs every image in bin/ under QEMU and rewrites expected/NAME.out (the
# guest's serial output, byte for byte) and expected/NAME.status (QEMU's exit
# status: (v<<1)|1 for a guest that wrote v to port 0xF4; 1 = all passed).
#
# The command, per image (run from this directory):
#   qemu-system-i386 -kernel bin/NAME.elf -display none -serial stdio \
#     -monitor none -no-reboot \
#     -device isa-debug-exit,iobase=0xf4,iosize=0x04 -m 128 </dev/null
# `-nographic` is NOT used: with it QEMU 7.2 turns on SeaBIOS's serial
# console, so the SeaBIOS and iPXE banners (with terminal escapes) precede the
# guest's output. The command above gives the guest's bytes and nothing else.
# The default NIC stays (no -net none): its option ROM decides where QEMU's
# boot ROM leaves the GDT (0xcb2b8), which hello prints; DESIGN §2's command
# has the default NIC too.
#
# For every image with a native build (bin/alu-native, and bin/NAME-native
# for the CPU-bound workloads) it also runs that static i386 Linux program
# (the real CPU, no arguments = the default scale=1) and fails if its
# stdout differs from the kernel's serial output.
#
# Images QEMU cannot be the oracle for are skipped, named or not (the same
# lists are in tests/common/mod.rs: NATIVE_ORACLE and SDM_EXPECTED). QEMU's
# x87 is not the real CPU's (README "Not tested"):
#   x87  its oracle is bin/x87-native (the real CPU); it has no
#        expected/x87.out or .status. QEMU's output is kept anyway, as
#        expected/x87.qemu.out (written, or compared under --check, below;
#        exit status 1), and tests/x87_qemu.rs explains every way it differs
#        from the real CPU's by the README's list of QEMU's x87 errors. The
#        native comparison below would be meaningless for it.
#   fpu  expected/fpu.out and fpu.status are written from the SDM (every
#        check passing; ./sdm-expected.sh fpu), not by QEMU, which gets 31
#        of its checks wrong.
NOT_QEMU="x87 fpu"
#
# Usage: ./regen-expected.sh [--check] [NAME...]   (default: every bin/*.elf)
#   --check   compare with expected/ instead of rewriting it (for CI)
set -eu
cd "$(dirname "$0")"
TIMEOUT=${TIMEOUT:-60}
QEMU=${QEMU:-qemu-system-i386}
mode=write
if [ "${1:-}" = --check ]; then
    mode=check
    shift
fi

run_qemu() {
    timeout "$TIMEOUT" "$QEMU" -kernel "bin/$1.elf" -display none -serial stdio \
        -monitor none -no-reboot \
        -device isa-debug-exit,iobase=0xf4,iosize=0x04 -m 128 </dev/null
}

if [ $# -eq 0 ]; then
    set -- $(ls bin/*.elf | sed 's|bin/||; s|\.elf$||')
fi

mkdir -p expected
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
bad=0
for name in "$@"; do
    [ -f "bin/$name.elf" ] || { echo "no bin/$name.elf" >&2; exit 2; }
    if [ "$name" = x87 ]; then
        status=0
        run_qemu x87 >"$tmp" || status=$?
        if [ "$status" != 1 ]; then
            echo "x87: QEMU exit status $status (expected 1)" >&2
            bad=1
        elif [ $mode = check ]; then
            if cmp -s "$tmp" expected/x87.qemu.out; then
                echo "x87: QEMU output matches expected/x87.qemu.out"
            else
                echo "x87: QEMU output DIFFERS from expected/x87.qemu.out" >&2
                diff "$tmp" expected/x87.qemu.out | head -20 >&2 || true
                bad=1
            fi
        else
            cp "$tmp" expected/x87.qemu.out
            echo "x87: QEMU output, $(wc -l <"$tmp") lines, in expected/x87.qemu.out (not its oracle)"
        fi
    fi
    case " $NOT_QEMU " in
    *" $name "*)
        echo "$name: skipped (QEMU is not its oracle; see NOT_QEMU above)"
        continue
        ;;
    esac
    status=0
    run_qemu "$name" >"$tmp" || status=$?
    if [ $mode = check ]; then
        if cmp -s "$tmp" "expected/$name.out" &&
            [ "$status" = "$(cat "expected/$name.status")" ]; then
            echo "$name: matches expected (status $status)"
        else
            echo "$name: DIFFERS from expected (status $status)" >&2
            diff "$tmp" "expected/$name.out" | head -20 >&2 || true
            bad=1
        fi
    else
        cp "$tmp" "expected/$name.out"
        echo "$status" >"expected/$name.status"
        echo "$name: status $status, $(wc -l <"$tmp") lines"
        if [ "$status" != 1 ]; then
            echo "  warning: $name did not pass (status $status)" >&2
            grep -n 'FAIL\|unexpected\|timeout' "$tmp" | head >&2 || true
            bad=1
        fi
    fi
    # The real CPU as an oracle: bin/NAME-native (alu-native for alu; the
    # workloads' native builds) must print exactly what the kernel printed.
    native=bin/$name-native
    if [ -x "$native" ]; then
        if ./"$native" | cmp -s - "$tmp"; then
            echo "  $name-native output equals the kernel's"
        else
            echo "  error: $name-native output differs from the kernel's:" >&2
            ./"$native" | diff - "$tmp" | head -20 >&2 || true
            bad=1
        fi
    fi
done
exit $bad
