/* code16's 16-bit code: entered by a far JMP to CODE16 (D=0) with a B=0
 * stack segment; results go to slots (dwords) at DS16:4*n, which is
 * code16.c's r16[]. The C side names and checks every slot. */
#define CODE16 0x30  /* GDT 6: code, D=0, base c16_start, limit 0xffff */
#define DS16 0x38    /* GDT 7: data, base r16, limit 0xffff */
#define SS16 0x40    /* GDT 8: data, B=0, base stack16, limit 0xffff */
#define S(n) (4 * (n))
#define OFF(l) ((l) - c16_start)
#define SP0 0x5a5a1ff0 /* ESP[31:16] must survive every 16-bit stack op */

    .text
    .globl c16_run
c16_run:
    pushal
    movl %esp, c16_saved_esp
    ljmp $CODE16, $0
c16_back:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl c16_saved_esp, %esp
    popal
    ret

/* 32-bit interrupt gate entered from 16-bit code: a 32-bit frame pushed
 * through SP (SS.B=0); IRETL pops it through SP too. */
    .globl h32from16
h32from16:
    movl %esp, S(53)
    movzwl %sp, %ebx
    movl %ss:(%ebx), %eax
    movl %eax, S(54)
    movl %ss:4(%ebx), %eax
    andl $0xffff, %eax
    movl %eax, S(55)
    xorl %eax, %eax
    movw %cs, %ax
    movl %eax, S(56)
    iretl

    .balign 4096
    .code16
    .globl c16_start
c16_start:
    movw $DS16, %ax
    movw %ax, %ds
    movw %ax, %es
    movw $SS16, %ax
    movw %ax, %ss
    movl $SP0, %esp
    ljmp $CODE16, $OFF(c16_j1)      /* 16-bit far JMP within D=0 code */
    hlt
c16_j1:
    /* 16-bit arithmetic and flags */
    movw $0xffff, %ax
    addw $1, %ax
    pushf
    popw %bx
    andw $0x8d5, %bx
    movw %ax, S(0)
    movw %bx, S(1)
    movw $0x7fff, %ax
    incw %ax
    pushf
    popw %bx
    andw $0x8d4, %bx
    movw %ax, S(1)+2
    movw %bx, S(0)+2
    /* 0x66: 32-bit operands */
    movl $0x12345678, %eax
    movl $0x11111111, %ebx
    addl %ebx, %eax
    movl %eax, S(2)
    movw $0x1234, %ax
    movl %eax, S(3)
    movw $0x1234, %ax
    movw $0x100, %bx
    mulw %bx
    movw %ax, S(4)
    movw %dx, S(4)+2
    xorw %dx, %dx
    movw $1000, %ax
    movw $7, %cx
    divw %cx
    movw %ax, S(5)
    movw %dx, S(5)+2
    movw $0x8000, %ax
    cwde
    movl %eax, S(6)
    movl $0x5555ff80, %eax
    movl $0x77777777, %edx
    cwd
    movl %edx, S(57)
    /* addressing: 16-bit wrap, 0x67 */
    movw $0xbeef, 0x118
    movl $0x1fff8, %ebx
    movl $0x110, %esi
    movw 0x10(%bx,%si), %ax
    movw %ax, S(7)
    movl $0xffffffff, %eax
    lea 0x10(%bx,%si), %eax
    movl %eax, S(8)
    addr32 lea 0x10(%ebx,%esi), %eax
    movl %eax, S(9)
    movl $0x100, %ebx
    movl $6, %ecx
    addr32 movw (%ebx,%ecx,4), %ax
    movw %ax, S(10)
    /* push/pop with a 16-bit SP */
    movl %esp, S(12)
    pushw $0x1234
    movl %esp, S(13)
    pushl $0x89abcdef
    movl %esp, S(14)
    popw %ax
    popw %bx
    popw %cx
    movw %ax, S(15)
    movw %bx, S(15)+2
    movw %cx, S(16)
    pushw %ds
    popw %ax
    movw %ax, S(16)+2
    movl $0x11112222, %eax
    pushaw
    movl %esp, S(17)
    popaw
    pushl %ds
    movl %esp, S(11)
    popl %ecx
    /* near and far calls */
    call c16_sub
c16_after_call:
    calll c16_sub32
c16_after_call32:
    pushw $1
    pushw $2
    call c16_sub_ret4
    movl %esp, S(21)
    lcall $CODE16, $OFF(c16_far)
c16_after_far:
    lcalll $CODE16, $OFF(c16_far32)
c16_after_far32:
    /* strings with SI/DI/CX */
    cld
    movl $0x44434241, 0x140
    movl $0x48474645, 0x144
    movl $0xabcd0005, %ecx
    movl $0x11110140, %esi
    movl $0x22220160, %edi
    rep movsb
    movl %ecx, S(25)
    movl %esi, S(26)
    movl %edi, S(27)
    movl 0x160, %eax
    movl %eax, S(28)
    movl 0x164, %eax
    movl %eax, S(29)
    movw $0x7777, %ax
    movw $3, %cx
    movw $0x170, %di
    rep stosw
    movl 0x170, %eax
    movl %eax, S(30)
    movw 0x174, %ax
    movw %ax, S(31)
    movw %di, S(31)+2
    movw $8, %cx
    movw $0x140, %si
    movw $0x160, %di
    repe cmpsb
    movw %cx, S(32)
    movw %si, S(32)+2
    movw %di, S(33)
    movl $3, %ecx
    movl $0x140, %esi
    movl $0x180, %edi
    addr32 rep movsb
    movl 0x180, %eax
    movl %eax, S(34)
    movl %esi, S(35)
    std
    movw $0x142, %si
    lodsw
    cld
    movw %ax, S(36)
    movw %si, S(36)+2
    /* LOOP with CX, and with ECX (0x67) */
    movl $0x00010003, %ecx
    xorw %ax, %ax
1:  incw %ax
    loop 1b
    movw %ax, S(37)
    movl %ecx, S(38)
    movl $2, %ecx
    xorw %ax, %ax
1:  incw %ax
    addr32 loop 1b
    movw %ax, S(39)
    xorw %ax, %ax
    movl $0x00010000, %ecx
    jcxz 1f
    orw $1, %ax
1:  jecxz 1f
    orw $2, %ax
1:  movw %ax, S(40)
    /* ENTER/LEAVE with 16-bit operands and stack */
    movl $SP0, %esp
    movl $0x6b6b1234, %ebp
    movw $0xcafe, %ss:0x1232
    enter $8, $0
    movl %esp, S(41)
    movl %ebp, S(42)
    movw %ss:0x1fee, %ax
    movw %ax, S(43)
    leave
    movl %esp, S(44)
    movl %ebp, S(45)
    enter $4, $2
    movl %esp, S(46)
    movl %ebp, S(47)
    movw %ss:0x1fec, %ax
    movw %ax, S(48)
    movw %ss:0x1fea, %ax
    movw %ax, S(48)+2
    leave
    movl %ebp, S(58)
    /* INT n through a 16-bit interrupt gate, IRET (16-bit) back */
    movl $SP0, %esp
    pushw $0x0803
    popfw
    int $0x41
c16_after_int:
    pushfw
    popw %ax
    andw $0x0fd5, %ax
    movw %ax, S(52)
    movl %esp, S(59)
    /* INT n through a 32-bit interrupt gate from 16-bit code */
    int $0x42
c16_after_int42:
    movl %esp, S(60)
    /* back to 32-bit code */
    ljmpl $0x08, $c16_back

c16_sub:
    movl %esp, S(19)
    movw %sp, %bx
    movw %ss:(%bx), %ax
    movw %ax, S(18)
    ret
c16_sub32:
    movw %sp, %bx
    movl %ss:(%bx), %eax
    movl %eax, S(20)
    retl
c16_sub_ret4:
    ret $4
c16_far:
    movw %sp, %bx
    movl %ss:(%bx), %eax
    movl %eax, S(22)
    lret
c16_far32:
    movw %sp, %bx
    movl %ss:(%bx), %eax
    movl %eax, S(23)
    movl %ss:4(%bx), %eax
    andl $0xffff, %eax
    movl %eax, S(24)
    lretl
    .globl c16_isr
c16_isr:
    movl %esp, S(49)
    movw %sp, %bx
    movl %ss:(%bx), %eax
    movl %eax, S(50)
    movw %ss:4(%bx), %ax
    movw %ax, S(51)
    xorw %ax, %ax
    iret

    .globl c16_offsets
    .code32
    .section .rodata
    .align 4
c16_offsets: /* offsets the C side checks against */
    .long OFF(c16_after_call), OFF(c16_after_call32), OFF(c16_after_far)
    .long OFF(c16_after_far32), OFF(c16_after_int), OFF(c16_after_int42)
    .long OFF(c16_isr)
    .section .note.GNU-stack, "", @progbits
