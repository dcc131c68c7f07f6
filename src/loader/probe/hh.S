/* Higher-half probe: linked at 0xC0100000, loaded (p_paddr) at 1 MiB.
 * Position-independent: prints "hh: entry ok" and exits. If QEMU jumped
 * to the virtual e_entry with paging off, nothing would be printed. */
        .intel_syntax noprefix
        .section .text
        .align 4
        .long 0x1BADB002, 3, -(0x1BADB002 + 3)
        .globl _start
_start: call 1f
1:      pop esi
        add esi, msg - 1b
        mov dx, 0x3f8
2:      mov al, [esi]
        test al, al
        jz 3f
        out dx, al
        inc esi
        jmp 2b
3:      mov al, 0
        out 0xf4, al
        hlt
msg:    .asciz "hh: entry ok\n"
