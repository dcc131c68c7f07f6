/* smc's self-modifying routines (each returns its result in EAX). Paging is
 * off or identity-mapped RW while they run, so .text is writable. */
    .text

/* A store rewrites the immediate of an instruction later in the same block. */
    .globl smc_same_block
smc_same_block:
    movl $0x22222222, %ecx
    movl %ecx, smc1 + 1
smc1:
    movl $0xdeadbeef, %eax
    ret

/* Each call increments the immediate it then executes: 1, 2, 3, ... */
    .globl smc_counter
smc_counter:
    movl smc4 + 1, %ecx
    incl %ecx
    movl %ecx, smc4 + 1
smc4:
    movl $0, %eax
    ret

/* The store rewrites the very next instruction: DEC EAX (0x48) and INC EAX
 * (0x40) swap on every call: 5 -> 6, 4, 6, ... */
    .globl smc_next_insn
smc_next_insn:
    movl $5, %eax
    xorb $0x08, smc2
smc2:
    decl %eax
    ret

/* REP MOVSB overwrites the immediate of the next instruction. */
    .globl smc_rep_movs
smc_rep_movs:
    pushl %esi
    pushl %edi
    movl $smc_rep_src, %esi
    movl $smc5 + 1, %edi
    movl $4, %ecx
    cld
    rep movsb
smc5:
    movl $0x0badc0de, %eax
    popl %edi
    popl %esi
    ret

/* A loop whose body patches the rel8 of its own JMP each iteration, so the
 * iterations go t0 t1 t2 t0 t1 t2 t0: ((((((0*3+1)+10)*2)*3+1)+10)*2)*3+1. */
    .globl smc_branch_loop
smc_branch_loop:
    pushl %ebx
    xorl %eax, %eax
    xorl %ecx, %ecx
    movb $(bl_t0 - bl_next), bl_jmp + 1
bl_jmp:
    .byte 0xeb, bl_t0 - bl_next
bl_next:
bl_t0:
    leal 1(%eax,%eax,2), %eax
    jmp bl_cont
bl_t1:
    addl $10, %eax
    jmp bl_cont
bl_t2:
    shll $1, %eax
bl_cont:
    movb bl_table(%ecx), %bl
    movb %bl, bl_jmp + 1
    incl %ecx
    cmpl $7, %ecx
    jb bl_jmp
    popl %ebx
    ret

    .section .rodata
bl_table:
    .byte bl_t1 - bl_next, bl_t2 - bl_next, bl_t0 - bl_next
    .byte bl_t1 - bl_next, bl_t2 - bl_next, bl_t0 - bl_next, bl_t1 - bl_next
    .align 4
smc_rep_src:
    .long 0x600df00d
    .section .note.GNU-stack, "", @progbits
