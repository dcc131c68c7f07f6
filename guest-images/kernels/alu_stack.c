/* ALU core, part 3: high-byte registers (AH..DH, which a 64-bit host cannot
 * encode together with REX), flag instructions, the stack (PUSHA/POPA, PUSH
 * imm/16-bit, ENTER/LEAVE with nesting), XLAT, LOOP/JECXZ. See alu_core.h. */
#include "alu_core.h"

static void test_high_bytes(void)
{
    u32 a = 0x11228344, b = 0x55667788, c = 0x99aabbcc, d = 0xddeeff00, f;
    asm volatile("pushl $0\n\tpopfl\n\t"
                 "addb %%ah, %%bl\n\t"
                 "adcb %%bh, %%ch\n\t"
                 "xchgb %%ch, %%dh\n\t"
                 "subb %%dh, %%ah\n\t"
                 "shlb %%cl, %%bh\n\t"
                 "movzbl %%dh, %%esi\n\t"
                 "addl %%esi, %%eax\n\t"
                 "negb %%ch\n\t"
                 "pushfl\n\tpopl %%edi"
                 : "+a"(a), "+b"(b), "+c"(c), "+d"(d), "=&D"(f)
                 :
                 : "esi", "cc");
    tprintf("highbytes: %x %x %x %x f=0x%x\n", a, b, c, d, f & F_ALL);
}

static void test_flag_ops(void)
{
    static const u32 fins[] = { 0, F_ALL, F_C | F_Z, F_S | F_A | F_P };
    for (int i = 0; i < 4; i++) {
        u32 ah, f1, f2, f3, f4;
        asm volatile("pushl %[fi]\n\tpopfl\n\tlahf\n\tmovzbl %%ah, %[ah]\n\t"
                     "cmc\n\tpushfl\n\tpopl %[f1]\n\t"
                     "stc\n\tpushfl\n\tpopl %[f2]\n\t"
                     "clc\n\tpushfl\n\tpopl %[f3]\n\t"
                     "movb $0xd5, %%ah\n\tsahf\n\tpushfl\n\tpopl %[f4]"
                     : [ah] "=&r"(ah), [f1] "=&r"(f1), [f2] "=&r"(f2), [f3] "=&r"(f3),
                       [f4] "=&r"(f4)
                     : [fi] "r"(fins[i])
                     : "eax", "cc");
        tprintf("flagops f=0x%x: lahf=%x cmc=0x%x stc=0x%x clc=0x%x sahf=0x%x\n", fins[i],
                ah & 0xd7, f1 & F_ALL, f2 & F_ALL, f3 & F_ALL, f4 & F_ALL);
    }
}

/* Results go to globals addressed absolutely (%c): the asm moves ESP and
 * EBP, so no operand may be stack- or frame-relative. */
static u32 st_r[8], st_delta, st_enter[2][4];

static void test_stack(void)
{
    u32 w, v;
    asm volatile("pushl %%ebp\n\t"
                 "movl %%esp, %%ebp\n\t"
                 "movl $0x1111, %%eax\n\tmovl $0x2222, %%ecx\n\tmovl $0x3333, %%edx\n\t"
                 "movl $0x4444, %%ebx\n\tmovl $0x5555, %%esi\n\tmovl $0x6666, %%edi\n\t"
                 "pushal\n\t"
                 "movl 12(%%esp), %%eax\n\t" /* the ESP PUSHA stored */
                 "subl %%ebp, %%eax\n\t"
                 "movl %%eax, %c[d]\n\t"
                 "movl $0, 0(%%esp)\n\t"     /* change the saved EDI */
                 "popal\n\t"
                 "movl %%edi, %c[r]\n\tmovl %%esi, 4+%c[r]\n\tmovl %%ebx, 8+%c[r]\n\t"
                 "movl %%edx, 12+%c[r]\n\tmovl %%ecx, 16+%c[r]\n\tmovl %%eax, 20+%c[r]\n\t"
                 "pushl $-2\n\tpopl 24+%c[r]\n\t"
                 "pushw $0x1234\n\tpopw 28+%c[r]\n\tmovw $0x9999, 30+%c[r]\n\t"
                 "popl %%ebp"
                 :
                 : [d] "i"(&st_delta), [r] "i"(st_r)
                 : "eax", "ecx", "edx", "ebx", "esi", "edi", "memory", "cc");
    tprintf("pusha/popa: delta=%d %x %x %x %x %x %x push=%x pushw=%x\n", (int)st_delta,
            st_r[0], st_r[1], st_r[2], st_r[3], st_r[4], st_r[5], st_r[6], st_r[7]);
    /* ENTER with nesting levels 0 and 2: EBP, ESP and the frame links, all
     * relative to ESP before ENTER. */
#define ENTER(n, lvl, slot)                                                     \
    asm volatile("pushl %%ebp\n\tmovl %%esp, %%ecx\n\tmovl %%ecx, %%ebp\n\t"  \
                 "enter $" #n ", $" #lvl "\n\t"                               \
                 "movl %%ebp, %%eax\n\tsubl %%ecx, %%eax\n\tmovl %%eax, %c[e]\n\t" \
                 "movl %%esp, %%eax\n\tsubl %%ecx, %%eax\n\tmovl %%eax, 4+%c[e]\n\t" \
                 "movl -4(%%ebp), %%eax\n\tsubl %%ecx, %%eax\n\tmovl %%eax, 8+%c[e]\n\t" \
                 "movl -8(%%ebp), %%eax\n\tsubl %%ecx, %%eax\n\tmovl %%eax, 12+%c[e]\n\t" \
                 "leave\n\tpopl %%ebp"                                         \
                 :                                                              \
                 : [e] "i"(st_enter[slot])                                      \
                 : "eax", "ecx", "memory")
    ENTER(16, 0, 0);
    ENTER(8, 2, 1);
    tprintf("enter 16,0: ebp=%d esp=%d\n", (int)st_enter[0][0], (int)st_enter[0][1]);
    tprintf("enter 8,2: ebp=%d esp=%d links=%d,%d\n", (int)st_enter[1][0], (int)st_enter[1][1],
            (int)st_enter[1][2], (int)st_enter[1][3]);
    static const u8 table[16] = { 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };
    w = 0x1234560b;
    asm volatile("xlat" : "+a"(w) : "b"(table) : "memory");
    tprintf("xlat: %x\n", w);
    /* LOOP family: count iterations until each stops. */
    u32 n1 = 0, n2 = 0, n3 = 0, c;
    asm volatile("movl $5, %%ecx\n1:\tincl %0\n\tloop 1b" : "+r"(n1) :: "ecx", "cc");
    asm volatile("movl $9, %%ecx\n\txorl %%eax, %%eax\n"
                 "1:\tincl %0\n\tcmpl $3, %0\n\tloopne 1b\n\tmovl %%ecx, %1"
                 : "+r"(n2), "=r"(c) :: "ecx", "eax", "cc");
    v = c;
    asm volatile("movl $9, %%ecx\n1:\tincl %0\n\tcmpl $100, %0\n\tloope 1b" : "+r"(n3) :: "ecx", "cc");
    u32 z = 0;
    asm volatile("xorl %%ecx, %%ecx\n\tjecxz 1f\n\tmovl $1, %0\n1:" : "+r"(z) :: "ecx");
    tprintf("loop: %u loopne: %u ecx=%u loope: %u jecxz_taken: %u\n", n1, n2, v, n3, z == 0);
}

void alu_stack(void)
{
    test_high_bytes();
    test_flag_ops();
    test_stack();
}
