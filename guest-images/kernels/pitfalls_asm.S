/* pitfalls' assembly: the armed-check runner, the exception stubs that
 * abandon a faulted check, the IRQ0 / INT 0x80 / INT 0x81 entries, the
 * ring-3 spin and the code run through the conforming segment.
 *
 * Nothing here reloads a selector read back from the CPU or trusts a
 * frame's CS or SS: deprivileged, MOV from SS or CS shows RPL 1, which a
 * DS or SS load then refuses. Handlers load DS/ES with the kernel data
 * selector; resuming the kernel means the kernel's own selectors (the
 * constants load_tables loaded) in SS/DS/ES/FS/GS, the ESP run_armed saved,
 * and an IRET to a frame built from constants (CS = SEL_KCODE,
 * EFLAGS = 0x2: IF=0, IOPL=0). */
#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UCODE 0x1b
#define SEL_UDATA 0x23
#define EFLAGS_QUIET 0x2      /* IF=0, DF=0, IOPL=0 */
#define EFLAGS_USER 0x202     /* IF=1 */
#define RING3_SPIN 4000000
#define DEBUG_EXIT_PORT 0xf4
#define EXIT_UNEXPECTED 2

    .text

/* int run_armed(void (*fn)(u32 *), u32 *obs): runs fn(obs) armed.
 * Returns 0 if fn returned (or a ring-3 excursion came back through
 * INT 0x80), 1 if an exception abandoned it (fault_vec, fault_err). */
    .globl run_armed
run_armed:
    pushl %ebp
    pushl %ebx
    pushl %esi
    pushl %edi
    movl 24(%esp), %eax         /* obs */
    movl 20(%esp), %ecx         /* fn */
    movl %esp, saved_esp
    movl $1, armed
    pushl %eax
    call *%ecx
    addl $4, %esp
armed_done:
    movl $0, armed
    xorl %eax, %eax
    jmp 1f
armed_faulted:
    movl $1, %eax
1:  popl %edi
    popl %esi
    popl %ebx
    popl %ebp
    ret

/* Back to the kernel context run_armed saved, at EIP %edx, with IF=0.
 * Entered with DS = the kernel data selector. */
resume_kernel:
    movl $0, armed
    movl saved_esp, %ecx
    movl $SEL_KDATA, %eax
    movw %ax, %ss
    movl %ecx, %esp
    pushl $EFLAGS_QUIET
    pushl $SEL_KCODE
    pushl %edx
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    iret

/* ---- exceptions 0..31: 16-byte stubs; a dummy error code where the CPU
 * pushes none. */
    .align 16
    .globl fault_stubs
fault_stubs:
    .set vec, 0
    .rept 32
    .align 16
    .if (vec == 8) || (vec == 10) || (vec == 11) || (vec == 12) || (vec == 13) || (vec == 14) || (vec == 17)
    .else
    pushl $0
    .endif
    pushl $vec
    jmp fault_common
    .set vec, vec + 1
    .endr

fault_common:                   /* vector, error code, EIP, CS, EFLAGS, ... */
    /* A fault in here (before DS is loaded) would recurse until the stack
     * ran out: SS is usable in any handler, so count nesting through it. */
    cmpl $0, %ss:in_fault
    jne fault_nested
    movl $1, %ss:in_fault
    movl $SEL_KDATA, %eax
    movw %ax, %ds
    movw %ax, %es
    movl $0, in_fault
    cmpl $0, armed
    je 1f
    popl fault_vec
    popl fault_err
    movl $armed_faulted, %edx
    jmp resume_kernel
1:  cld
    call pitfalls_unexpected    /* (vector, err, eip, cs): does not return */
fault_nested:
    movb $EXIT_UNEXPECTED, %al
    outb %al, $DEBUG_EXIT_PORT
2:  cli
    hlt
    jmp 2b

/* ---- IRQ0: count a tick, EOI; the interrupted code's DS (ring 0 or 3)
 * is put back. */
    .globl irq0_entry
irq0_entry:
    pushl %eax
    pushl %ds
    movl $SEL_KDATA, %eax
    movw %ax, %ds
    incl ticks
    movb $0x20, %al
    outb %al, $0x20
    popl %ds
    popl %eax
    iret

/* ---- INT 0x80 (DPL 3): the ring-3 code's way back; EAX = its result. */
    .globl int80_entry
int80_entry:
    movl $SEL_KDATA, %ecx
    movw %cx, %ds
    movw %cx, %es
    cmpl $0, armed
    je 1f
    movl ring3_obs, %ecx
    movl %eax, (%ecx)
    movl $armed_done, %edx
    jmp resume_kernel
1:  pushl $0
    pushl $0x80
    cld
    call pitfalls_unexpected

/* ---- INT 0x81 (trap gate, DPL 3): record the pushed CS and where the
 * frame is. Touches no segment register: SS-relative stores only. */
    .globl int81_entry
int81_entry:
    movl %esp, %ss:int81_esp
    pushl %eax
    movl 8(%esp), %eax
    movl %eax, %ss:int81_cs
    popl %eax
    iret

/* ---- the iret check: IRET to ring 3 with IF=1 in the frame. Ring 3 spins
 * until the tick count moves (bounded) and comes back with INT 0x80,
 * EAX = 1 if it saw a tick, 0 if not. */
    .globl enter_ring3
enter_ring3:                    /* (u32 user_esp): never returns */
    movl 4(%esp), %ecx
    movl $SEL_UDATA, %eax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    pushl $SEL_UDATA
    pushl %ecx
    pushl $EFLAGS_USER
    pushl $SEL_UCODE
    pushl $ring3_spin
    iret

ring3_spin:
    movl ticks, %edx
    movl $RING3_SPIN, %ecx
1:  cmpl ticks, %edx
    jne 2f
    decl %ecx
    jnz 1b
    xorl %eax, %eax
    int $0x80
2:  movl $1, %eax
    int $0x80
3:  jmp 3b                      /* not reached */

/* ---- code run through the conforming segment (flat, so the offsets are
 * the kernel's own addresses). */
    .globl conf_callee
conf_callee:                    /* far-called: [esp] = EIP, [esp+4] = CS */
    movl 4(%esp), %eax
    movl %eax, callfar_cs
    lret

    .section .note.GNU-stack, "", @progbits
