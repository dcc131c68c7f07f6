/* Multiboot v1 header, entry, ISR stubs and the few routines that need asm. */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000003 /* page-align modules, want memory info */

    .section .multiboot, "a"
    .align 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

    .section .text.entry, "ax"
    .globl _start
_start:
    cli
    /* Record the machine state the loader left, for kernels to report. */
    movl %eax, boot_state + 0
    movw %cs, boot_state + 4
    movw %ds, boot_state + 8
    movw %ss, boot_state + 12
    movw %es, boot_state + 16
    sgdt boot_state + 20
    movl %cr0, %ecx
    movl %ecx, boot_state + 28
    movl %esp, boot_state + 32
    pushfl
    popl boot_state + 36
    movl $rt_stack_top, %esp
    pushl $0
    popfl                   /* known EFLAGS: IF=0, DF=0 */
    pushl %ebx
    pushl %eax
    call rt_main            /* never returns */
1:  hlt
    jmp 1b

/* ---- ISR stubs: 16 bytes each; vectors with a CPU error code skip the dummy. */
    .text
    .align 16
    .globl isr_stubs
isr_stubs:
    .set vec, 0
    .rept 256
    .align 16
    .if (vec == 8) || (vec == 10) || (vec == 11) || (vec == 12) || (vec == 13) || (vec == 14) || (vec == 17)
    .else
    pushl $0
    .endif
    pushl $vec
    jmp isr_common
    .set vec, vec + 1
    .endr

isr_common:
    pushal
    pushl %ds
    pushl %es
    pushl %fs
    pushl %gs
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    cld
    pushl %esp
    call isr_dispatch       /* returns the frame to resume */
    movl %eax, %esp
    popl %gs
    popl %fs
    popl %es
    popl %ds
    popal
    addl $8, %esp
    iret

/* ---- setjmp/longjmp (callee-saved registers, esp, eip). */
    .globl rt_setjmp
rt_setjmp:
    movl 4(%esp), %eax
    movl %ebx, 0(%eax)
    movl %esi, 4(%eax)
    movl %edi, 8(%eax)
    movl %ebp, 12(%eax)
    leal 4(%esp), %ecx
    movl %ecx, 16(%eax)
    movl (%esp), %ecx
    movl %ecx, 20(%eax)
    xorl %eax, %eax
    ret

    .globl rt_longjmp
rt_longjmp:
    movl 4(%esp), %edx
    movl 8(%esp), %eax
    movl 0(%edx), %ebx
    movl 4(%edx), %esi
    movl 8(%edx), %edi
    movl 12(%edx), %ebp
    movl 16(%edx), %esp
    jmp *20(%edx)

/* ---- enter_user(eip, esp, eflags): IRET to ring 3. */
    .globl enter_user
enter_user:
    movl 4(%esp), %eax
    movl 8(%esp), %ecx
    movl 12(%esp), %edx
    movw $0x23, %bx
    movw %bx, %ds
    movw %bx, %es
    movw %bx, %fs
    movw %bx, %gs
    pushl $0x23
    pushl %ecx
    pushl %edx
    pushl $0x1b
    pushl %eax
    iret

/* ---- SYSENTER entry: user passes return EIP in EDX, ESP in ECX (Linux
 * convention); sysenter_handler(eax, ebx, esp_at_entry) returns EAX.
 * Returns to ring 3 with IF=1. */
    .globl sysenter_entry
sysenter_entry:
    pushl %ecx
    pushl %edx
    movl %esp, %ecx
    pushl %ecx
    pushl %ebx
    pushl %eax
    call sysenter_handler
    addl $12, %esp
    popl %edx
    popl %ecx
    sti                     /* like Linux: the STI shadow covers SYSEXIT */
    sysexit

    .bss
    .align 16
    .globl boot_state
boot_state:
    .space 64
    .align 16
    .space 16384
    .globl rt_stack_top
rt_stack_top:
    .space 16384
    .globl rt_kstack0_top
rt_kstack0_top:
    .section .note.GNU-stack, "", @progbits
