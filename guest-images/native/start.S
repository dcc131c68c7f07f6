/* _start for the native workload builds (static i386 Linux, no libc):
 * hands the initial stack (argc, argv...) to native_main, which never
 * returns. */
    .text
    .globl _start
_start:
    xorl %ebp, %ebp
    movl %esp, %eax
    andl $-16, %esp
    subl $12, %esp
    pushl %eax
    call native_main
    hlt
