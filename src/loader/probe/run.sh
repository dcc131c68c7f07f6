#!/bin/sh
# Runs the probes under QEMU; each run's output goes to out-NAME.txt.
Q="qemu-system-i386 -nographic -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04"
run() { name=$1; shift; echo "== $name: $*"; timeout 20 $Q "$@" > out-$name.txt 2>&1; echo "status $?"; }
run elf-128-full  -kernel probe.elf -m 128 -append "a b" -initrd "mod1,mod2"
run elf-64-full   -kernel probe.elf -m 64  -append "a b" -initrd "mod1,mod2"
run elf-128-bare  -kernel probe.elf -m 128
run elf-64-bare   -kernel probe.elf -m 64
run elf-128-args  -kernel probe.elf -m 128 -append "" -initrd "mod1 x  y,mod2"
run elf-3-bare    -kernel probe.elf -m 3
run kludge-128    -kernel probe-kludge.elf -m 128 -append "a b" -initrd "mod1,mod2"
run vbe-128       -kernel probe-vbe.elf -m 128
run elf-1000-full -kernel probe.elf -m 1000 -append "a b" -initrd "mod1,mod2"
run elf-4000-bare -kernel probe.elf -m 3584
run pad-200       -kernel probe-pad.elf -m 200
run hh-128 -kernel hh.elf -m 128
