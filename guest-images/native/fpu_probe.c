/* fpu-probe: the parts of the fpu kernel's SDM-derived expectations that a
 * Linux process can observe on the real CPU (an unmasked x87 exception
 * arrives as SIGFPE, with the saved EIP at the waiting instruction that
 * reported it). Not a test image and not committed as a binary: a tool to
 * re-check expected/fpu.out against a real CPU.
 *
 *   make build/fpu-probe && build/fpu-probe     (needs gcc-multilib: libc)
 *
 * Each line: what the CPU did, what the fpu kernel expects, ok/DIFF.
 * FCS/FDS print as 0 on CPUs that deprecate them (CPUID.7.0:EBX[13]), and
 * FDP/FOP read 0 on CPUs that update them only on unmasked exceptions
 * (EBX[6]): the fpu kernel checks the P6 behaviour instead (see its
 * header). Everything else must be "ok". On this project's host (Intel
 * family 6 model 0xA7, both CPUID bits set) only those FOP/FDP
 * lines differ (at an unmasked exception's SIGFPE the CPU has FOP too). */
#define _GNU_SOURCE
#include <signal.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <stdint.h>
#include <ucontext.h>
#include <cpuid.h>

static sigjmp_buf jb;
static volatile uint32_t sig_eip;
static volatile int sig_count;
static volatile uint32_t sig_fip, sig_fop;
uint32_t lbl_a, lbl_b;
unsigned char env[108], env2[108], mem64[8], smem[8];
uint16_t cw_ze = 0x037b, cw_ie = 0x037e, cw_oe = 0x0377;
const uint32_t snan80[3] = {1, 0x80000000, 0x7fff}, big80[3] = {0, 0x80000000, 0x4040},
               max80[3] = {0xffffffff, 0xffffffff, 0x7ffe};

static void h(int s, siginfo_t *si, void *uc_)
{
    ucontext_t *uc = uc_;
    sig_eip = uc->uc_mcontext.gregs[REG_EIP];
    /* The FPU state at the signal: the FNSAVE-layout part (a 64-bit kernel
     * puts the user CS, not FOP, into cssel), then at offset 110 the magic
     * (0 = FXSR data follows) and at 112 the FXSAVE image, FOP at +6. */
    const unsigned char *fp = (const unsigned char *)uc->uc_mcontext.fpregs;
    sig_fip = uc->uc_mcontext.fpregs->ipoff;
    sig_fop = *(const uint16_t *)(fp + 110) == 0 ? *(const uint16_t *)(fp + 112 + 6) & 0x7ff : 0xffff;
    sig_count++;
    siglongjmp(jb, 1);
}
static uint16_t e16(unsigned char *p, int o) { return *(uint16_t *)(p + o); }
static uint32_t e32(unsigned char *p, int o) { return *(uint32_t *)(p + o); }
#define P(name, got, exp) printf("%-55s got %#x expected %#x %s\n", name, (unsigned)(got), (unsigned)(exp), (got) == (exp) ? "ok" : "DIFF")

int main(void)
{
    unsigned a, b, c, d;
    __cpuid_count(7, 0, a, b, c, d);
    printf("cpuid.7.ebx bit6 (FDP_EXCPTN_ONLY)=%u bit13 (FCS/FDS deprecated)=%u\n", (b >> 6) & 1, (b >> 13) & 1);
    struct sigaction sa = {0};
    sa.sa_sigaction = h;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGFPE, &sa, 0);
    uint16_t sw, r0 = 0, r1 = 0, cw;

    /* unmasked ZE: #MF at next fld1 */
    sig_count = 0;
    if (!sigsetjmp(jb, 1))
        asm volatile("fninit\n\tfldcw cw_ze\n\tfldz\n\tfld1\n\tfdiv %%st(1), %%st\n\tfnstsw %0\n\tmovl $1f, lbl_a\n1:\tfld1\n\tfninit" : "=m"(sw) :: "memory");
    P("ze: signal count", sig_count, 1);
    P("ze: eip at fld1", sig_eip, lbl_a);
    P("ze: sw flags", sw & 0x80ff, 0x8084);
    sig_count = 0;
    if (!sigsetjmp(jb, 1))
        asm volatile("fninit\n\tfldcw cw_ze\n\tfldz\n\tfld1\n\tmovl $1f, lbl_b\n1:\tfdiv %%st(1), %%st\n\tmovl $2f, lbl_a\n2:\tfwait\n\tfninit" ::: "memory");
    P("ze: #MF at fwait", sig_eip, lbl_a);
    P("ze: fip at the #MF = the fdiv", sig_fip, lbl_b);
    P("ze: fop at the #MF = fdiv st,st(1)", sig_fop, 0x0f1);
    /* destination unchanged */
    asm volatile("fninit\n\tfldcw cw_ze\n\tfldz\n\tfld1\n\tfdiv %%st(1), %%st\n\tfnclex\n\tfistps %0\n\tfninit" : "=m"(r0) :: "memory");
    P("ze: destination unchanged", r0, 1);
    /* no-wait instructions */
    sig_count = 0;
    if (!sigsetjmp(jb, 1))
        asm volatile("fninit\n\tfldcw cw_ze\n\tfldz\n\tfld1\n\tfdiv %%st(1), %%st\n\tfnstcw %0\n\tfnstsw %%ax\n\tfnstsw %0\n\tfnstenv env\n\tfnclex\n\tfwait\n\tfld1\n\tfninit" : "=m"(sw) :: "eax", "memory");
    P("no-wait: nothing raised", sig_count, 0);
    P("fnstenv stored cw", e16(env, 0), 0x037b);
    P("fnstenv stored sw flags", e16(env, 4) & 0x80ff, 0x8084);
    asm volatile("fninit\n\tfldcw cw_ze\n\tfldz\n\tfld1\n\tfdiv %%st(1), %%st\n\tfnstenv env\n\tfnstcw %0\n\tfnclex\n\tfninit" : "=m"(cw) :: "memory");
    P("fnstenv masks afterwards", cw, 0x037f);
    sig_count = 0;
    if (!sigsetjmp(jb, 1))
        asm volatile("fninit\n\tfldcw cw_ze\n\tfldz\n\tfld1\n\tfdiv %%st(1), %%st\n\tfnsave env\n\tfld1\n\tfninit" ::: "memory");
    P("fnsave then fld1: nothing", sig_count, 0);
    sig_count = 0;
    if (!sigsetjmp(jb, 1))
        asm volatile("fninit\n\tfrstor env\n\tmovl $1f, lbl_a\n1:\tfld1\n\tfninit" ::: "memory");
    P("frstor pending: count", sig_count, 1);
    P("frstor pending: eip at fld1", sig_eip, lbl_a);
    sig_count = 0;
    if (!sigsetjmp(jb, 1))
        asm volatile("fninit\n\tfldz\n\tfld1\n\tfdiv %%st(1), %%st\n\tfldcw cw_ze\n\tmovl $1f, lbl_a\n1:\tfwait\n\tfninit" ::: "memory");
    P("fldcw unmasking: count", sig_count, 1);
    P("fldcw unmasking: eip at fwait", sig_eip, lbl_a);
    /* unmasked store cases */
    *(uint32_t *)smem = 0xdeadbeef;
    asm volatile("fninit\n\tfldcw cw_ie\n\tfldt snan80\n\tfsts smem\n\tfnstsw %0\n\tfnclex\n\tfninit" : "=m"(sw) :: "memory");
    P("ie: fst m32 snan leaves memory", *(uint32_t *)smem, 0xdeadbeef);
    P("ie: sw", sw & 0x80ff, 0x8081);
    asm volatile("fninit\n\tfldcw cw_ie\n\tfldt big80\n\tfistpl smem\n\tfnstsw %0\n\tfnclex\n\tfninit" : "=m"(sw) :: "memory");
    P("ie: fistp leaves memory", *(uint32_t *)smem, 0xdeadbeef);
    P("ie: fistp top", (sw >> 11) & 7, 7);
    P("ie: fistp sw", sw & 0x80ff, 0x8081);
    asm volatile("fninit\n\tfldcw cw_oe\n\tfldt max80\n\tfsts smem\n\tfnstsw %0\n\tfnclex\n\tfninit" : "=m"(sw) :: "memory");
    P("oe: fst leaves memory", *(uint32_t *)smem, 0xdeadbeef);
    P("oe: sw (oe es b)", sw & 0x8088, 0x8088);
    /* pointers */
    *(uint32_t *)(mem64 + 4) = 0x3ff00000;
    asm volatile("fninit\n\tmovl $1f, lbl_a\n1:\tfldl mem64\n\tfnstcw %0\n\tfnclex\n\tfldcw %0\n\tfnstsw %%ax\n\tfnstenv env\n\tfnsave env2" : "=m"(cw) :: "eax", "memory");
    P("fnstenv fip (fld m64)", e32(env, 12), lbl_a);
    printf("fnstenv fcs=%#x (user cs)\n", e16(env, 16));
    P("fnstenv fop", e16(env, 18) & 0x7ff, 0x505);
    P("fnstenv fdp", e32(env, 20), (uint32_t)mem64);
    printf("fnstenv fds=%#x\n", e16(env, 24));
    P("fnsave fip", e32(env2, 12), lbl_a);
    P("fnsave fop", e16(env2, 18) & 0x7ff, 0x505);
    asm volatile("fninit\n\tfldl mem64\n\tmovl $1f, lbl_b\n1:\tfsqrt\n\tfnstenv env" ::: "memory");
    P("fip fsqrt", e32(env, 12), lbl_b);
    P("fop fsqrt", e16(env, 18) & 0x7ff, 0x1fa);
    asm volatile("fninit\n\tfld1\n\tmovl $1f, lbl_b\n1:\tfiadds (%%ebx)\n\tfnstenv env" ::"b"(mem64 + 2) : "memory");
    P("fop fiadd [ebx]", e16(env, 18) & 0x7ff, 0x603);
    P("fdp fiadd [ebx]", e32(env, 20), (uint32_t)mem64 + 2);
    memset(env, 0xee, 108);
    asm volatile("fninit\n\tmovl $1f, lbl_a\n1:\tfldl mem64\n\t.byte 0x66\n\tfnstenv env" ::: "memory");
    P("16: fip", e16(env, 6), lbl_a & 0xffff);
    P("16: fdp", e16(env, 10), (uint32_t)mem64 & 0xffff);
    P("16: tw", e16(env, 4), 0x3fff);
    P("16: 14 bytes", env[14], 0xee);
    memset(env, 0, 28);
    *(uint16_t *)env = 0x37f; *(uint16_t *)(env + 8) = 0xffff;
    *(uint32_t *)(env + 12) = 0x12345678; *(uint16_t *)(env + 16) = 0x23; *(uint16_t *)(env + 18) = 0x4d9;
    *(uint32_t *)(env + 20) = 0x9abcdef0; *(uint16_t *)(env + 24) = 0x2b;
    asm volatile("fninit\n\tfldenv env\n\tfnstenv env2" ::: "memory");
    P("fldenv fip", e32(env2, 12), 0x12345678);
    P("fldenv fop", e16(env2, 18) & 0x7ff, 0x4d9);
    P("fldenv fdp", e32(env2, 20), 0x9abcdef0);
    printf("fldenv fcs=%#x fds=%#x\n", e16(env2, 16), e16(env2, 24));
    memset(env, 0, 14);
    *(uint16_t *)env = 0x27f; *(uint16_t *)(env + 4) = 0xffff; *(uint16_t *)(env + 6) = 0x4321;
    *(uint16_t *)(env + 8) = 0x23; *(uint16_t *)(env + 10) = 0x8765; *(uint16_t *)(env + 12) = 0x2b;
    asm volatile("fninit\n\t.byte 0x66\n\tfldenv env\n\tfnstenv env2" ::: "memory");
    P("fldenv16 cw", e16(env2, 0), 0x27f);
    P("fldenv16 fip", e32(env2, 12), 0x4321);
    P("fldenv16 fdp", e32(env2, 20), 0x8765);
    asm volatile("fninit\n\tfld1\n\tmovl $1f, lbl_a\n1:\tfldl mem64\n\tfnsave env2\n\tfldz\n\tfldz\n\tfrstor env2\n\tfnstenv env" ::: "memory");
    P("frstor fip", e32(env, 12), lbl_a);
    P("frstor fop", e16(env, 18) & 0x7ff, 0x505);
    P("frstor fdp", e32(env, 20), (uint32_t)mem64);
    asm volatile("fninit\n\tfldpi\n\tfld1\n\tfdiv %%st(1), %%st\n\tfninit\n\tfnstenv env" ::: "memory");
    P("fninit fip", e32(env, 12), 0);
    P("fninit fop", e16(env, 18) & 0x7ff, 0);
    P("fninit fdp", e32(env, 20), 0);
    memset(env2, 0, 108);
    *(uint16_t *)(env2 + 0) = 0x037f; *(uint16_t *)(env2 + 2) = 0x3800; *(uint16_t *)(env2 + 4) = 0x3fff;
    *(uint16_t *)(env2 + 6) = 0x1111; *(uint16_t *)(env2 + 8) = 0x23; *(uint16_t *)(env2 + 10) = 0x2222;
    *(uint16_t *)(env2 + 12) = 0x2b; *(uint32_t *)(env2 + 18) = 0x80000000; *(uint16_t *)(env2 + 22) = 0x3fff;
    asm volatile("fninit\n\t.byte 0x66\n\tfrstor env2\n\tfnstenv env\n\tfistps %0" : "=m"(r1) :: "memory");
    P("frstor16 fip", e32(env, 12), 0x1111);
    P("frstor16 fdp", e32(env, 20), 0x2222);
    P("frstor16 sw", e16(env, 4), 0x3800);
    P("frstor16 one", r1, 1);
    return 0;
}
