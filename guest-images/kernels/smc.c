/* smc: self-modifying code, each result printed as a value:
 *
 *   - a store rewrites an immediate further on in the same basic block,
 *     then runs it; a routine that bumps its own immediate on every call;
 *   - a store rewrites the very next instruction (DEC <-> INC, every call);
 *   - REP MOVSB overwrites the next instruction's immediate;
 *   - code copied into a fresh page, run, its immediate patched, run again,
 *     then replaced by a different routine; data written into the rest of
 *     the page in between (the code must not change);
 *   - a loop that patches the rel8 of its own JMP every iteration;
 *   - with paging: one frame mapped at two linear addresses, written through
 *     one and executed through the other (both ways, and through the
 *     identity mapping); a PTE pointed at another frame (INVLPG); two page
 *     directories mapping the same address to different code (CR3 switch).
 * The routines written in assembly are in smc_asm.S. */
#include "rt.h"

#define VA1 0x40000000u
#define VA2 0x40003000u

u32 smc_same_block(void);
u32 smc_counter(void);
u32 smc_next_insn(void);
u32 smc_rep_movs(void);
u32 smc_branch_loop(void);

typedef u32 (*fn0)(void);
typedef u32 (*fn1)(u32);

static u8 fresh[4096] __attribute__((aligned(4096)));

static void value(const char *name, u32 got, u32 expected)
{
    tprintf("%s: 0x%x\n", name, got);
    if (got != expected) {
        rt_failures++;
        tprintf("%s: FAIL expected 0x%x\n", name, expected);
    }
}

/* mov $imm, %eax; ret */
static void put_mov_ret(volatile u8 *p, u32 imm)
{
    p[0] = 0xb8;
    p[1] = (u8)imm;
    p[2] = (u8)(imm >> 8);
    p[3] = (u8)(imm >> 16);
    p[4] = (u8)(imm >> 24);
    p[5] = 0xc3;
}

static void put_imm(volatile u8 *p, u32 imm)
{
    for (u32 i = 0; i < 4; i++)
        p[1 + i] = (u8)(imm >> (8 * i));
}

static u32 call0(u32 addr) { return ((fn0)addr)(); }

static void test_in_place(void)
{
    value("same_block_imm", smc_same_block(), 0x22222222);
    value("counter_1", smc_counter(), 1);
    value("counter_2", smc_counter(), 2);
    value("counter_3", smc_counter(), 3);
    value("next_insn_1", smc_next_insn(), 6);
    value("next_insn_2", smc_next_insn(), 4);
    value("next_insn_3", smc_next_insn(), 6);
    value("rep_movs_next_insn", smc_rep_movs(), 0x600df00d);
    value("branch_loop", smc_branch_loop(), 463);
    value("branch_loop_again", smc_branch_loop(), 463);
}

static void test_fresh_page(void)
{
    volatile u8 *p = fresh;
    put_mov_ret(p, 0x11111111);
    value("fresh_run_1", call0((u32)fresh), 0x11111111);
    for (u32 i = 2048; i < 4096; i++) /* data in the same page */
        p[i] = (u8)i;
    value("fresh_after_data_write", call0((u32)fresh), 0x11111111);
    put_imm(p, 0x22222222);
    value("fresh_patched_imm", call0((u32)fresh), 0x22222222);
    /* mov 4(%esp), %eax; add %eax, %eax; ret */
    static const u8 twice[] = { 0x8b, 0x44, 0x24, 0x04, 0x01, 0xc0, 0xc3 };
    for (u32 i = 0; i < sizeof(twice); i++)
        p[i] = twice[i];
    value("fresh_new_routine", ((fn1)(u32)fresh)(21), 42);
    p[5] = 0xd8; /* add %eax,%eax -> add %ebx,%eax: ebx is 0x1000 here */
    u32 r;
    asm volatile("pushl $7\n\tcall *%2\n\taddl $4, %%esp"
                 : "=a"(r) : "b"(0x1000), "r"(fresh) : "ecx", "edx", "memory");
    value("fresh_patched_modrm", r, 0x1007);
}

static void test_aliases(void)
{
    u32 *pd = pg_new_dir();
    pg_identity(pd, 0, 0x400000, PG_P | PG_RW);
    u32 *frame = pg_alloc(), *frame2 = pg_alloc();
    pg_map(pd, VA1, (u32)frame, PG_P | PG_RW);
    pg_map(pd, VA2, (u32)frame, PG_P | PG_RW);
    put_mov_ret((u8 *)frame2, 0x55555555);
    pg_enable(pd);

    put_mov_ret((u8 *)VA1, 0x1111);
    value("alias_write_va1_run_va2", call0(VA2), 0x1111);
    value("alias_run_va1", call0(VA1), 0x1111);
    put_imm((u8 *)VA1, 0x2222);
    value("alias_patch_va1_run_va2", call0(VA2), 0x2222);
    put_imm((u8 *)VA2, 0x3333);
    value("alias_patch_va2_run_va1", call0(VA1), 0x3333);
    value("alias_patch_va2_run_va2", call0(VA2), 0x3333);
    put_imm((u8 *)frame, 0x4444);
    value("alias_patch_phys_run_va1", call0(VA1), 0x4444);
    value("alias_patch_phys_run_va2", call0(VA2), 0x4444);
    *pg_pte(pd, VA2) = (u32)frame2 | PG_P | PG_RW;
    invlpg(VA2);
    value("remapped_va2", call0(VA2), 0x55555555);
    value("remapped_va1_unchanged", call0(VA1), 0x4444);

    /* a second directory: VA1 -> frame2 */
    u32 *pd2 = pg_new_dir();
    pg_identity(pd2, 0, 0x400000, PG_P | PG_RW);
    pg_map(pd2, VA1, (u32)frame2, PG_P | PG_RW);
    write_cr3((u32)pd2);
    value("cr3_switch_va1", call0(VA1), 0x55555555);
    write_cr3((u32)pd);
    value("cr3_back_va1", call0(VA1), 0x4444);
    pg_disable();
}

void kmain(u32 magic, u32 mbi)
{
    test_in_place();
    test_fresh_page();
    test_aliases();
}
