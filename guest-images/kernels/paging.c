/* paging: 4 KiB and 4 MiB pages, aliases, CR3 switching, INVLPG, demand
 * paging from a #PF handler, CR2 and error codes (not-present read/write,
 * protection, user access to supervisor pages), CR0.WP, and the accessed
 * and dirty bits the hardware sets. */
#include "rt.h"

#define VA_A 0x40000000u      /* 4 KiB page -> frame A */
#define VA_ALIAS 0x40001000u  /* second mapping of frame A */
#define VA_BIG 0x80000000u    /* 4 MiB page -> physical 0 */
#define VA_DEMAND 0x50000000u /* not present until touched */
#define VA_RO 0x40002000u     /* read-only supervisor page */
#define VA_SUP 0x40003000u    /* supervisor-only RW page */
#define VA_URO 0x40004000u    /* user read-only page */
#define VA_AD 0x40005000u     /* accessed/dirty probe */
#define VA_NONE 0x60000000u   /* never mapped */

enum { PF_DEMAND, PF_FIX_RW, PF_SKIP };

static u32 *pd1, *pd2;
static u32 pf_mode, pf_count, pf_err, pf_cr2, pf_eip_ok, pf_cpl;
u32 expect_eip, resume_eip;
static u8 user_stack[4096] __attribute__((aligned(16)));
static u32 user_out[8];

static void pf_handler(struct frame *f)
{
    pf_count++;
    pf_err = f->err;
    pf_cr2 = read_cr2();
    pf_cpl = f->cs & 3;
    pf_eip_ok = f->eip == expect_eip;
    if (pf_mode == PF_DEMAND) {
        u32 *frame = pg_alloc();
        for (u32 i = 0; i < 1024; i++)
            frame[i] = (pf_cr2 & ~0xfffu) + i;
        pg_map(pd1, pf_cr2, (u32)frame, PG_P | PG_RW);
    } else if (pf_mode == PF_FIX_RW) {
        *pg_pte(pd1, pf_cr2) |= PG_RW;
        invlpg(pf_cr2);
    } else {
        f->eip = resume_eip;
    }
}

static void syscall_handler(struct frame *f) { user_return(f->ebx); }

static inline u32 rd(u32 va) { return *(volatile u32 *)va; }
static inline void wr(u32 va, u32 v) { *(volatile u32 *)va = v; }

/* A 32-bit load or store the #PF handler can skip (PF_SKIP). */
#define SKIP_LOAD(va)                                                          \
    asm volatile("movl $1f, %[e]\n\tmovl $2f, %[r]\n1:\tmovl (%[a]), %%eax\n2:" \
                 : [e] "=m"(expect_eip), [r] "=m"(resume_eip)                  \
                 : [a] "r"(va) : "eax", "memory")
#define SKIP_STORE(va)                                                         \
    asm volatile("movl $1f, %[e]\n\tmovl $2f, %[r]\n1:\tmovl %%eax, (%[a])\n2:" \
                 : [e] "=m"(expect_eip), [r] "=m"(resume_eip)                  \
                 : [a] "r"(va) : "eax", "memory")

static void user_main(void)
{
    SKIP_LOAD(VA_SUP);
    user_out[0] = pf_err, user_out[1] = pf_cr2, user_out[2] = pf_eip_ok;
    SKIP_STORE(VA_SUP);
    user_out[3] = pf_err;
    SKIP_STORE(VA_URO);
    user_out[4] = pf_err;
    SKIP_LOAD(VA_NONE);
    user_out[5] = pf_err;
    user_out[6] = rd(VA_URO); /* allowed */
    asm volatile("int $0x80" ::"b"(pf_count) : "memory");
}

static void test_basic(u32 *fa, u32 *fb)
{
    fa[0] = 0xaaaa0001;
    fb[0] = 0xbbbb0001;
    check("map4k_read", rd(VA_A), 0xaaaa0001);
    wr(VA_A + 4, 0x12345678);
    check("map4k_write_phys", fa[1], 0x12345678);
    wr(VA_ALIAS + 8, 0xa11a5);
    check("alias_read_other", rd(VA_A + 8), 0xa11a5);
    static volatile u32 marker = 0x600d4;
    check("map4m_read", rd(VA_BIG + (u32)&marker), 0x600d4);
    wr(VA_BIG + (u32)&marker, 0x600d5);
    check("map4m_write", marker, 0x600d5);
    check("cr4_pse", read_cr4() & CR4_PSE, CR4_PSE);

    write_cr3((u32)pd2);
    check("cr3_pd2_read", rd(VA_A), 0xbbbb0001);
    check("cr3_pd2_value", read_cr3(), (u32)pd2);
    write_cr3((u32)pd1);
    check("cr3_pd1_read", rd(VA_A), 0xaaaa0001);

    *pg_pte(pd1, VA_A) = (u32)fb | PG_P | PG_RW;
    invlpg(VA_A);
    check("invlpg_new_frame", rd(VA_A), 0xbbbb0001);
    *pg_pte(pd1, VA_A) = (u32)fa | PG_P | PG_RW;
    invlpg(VA_A);
    check("invlpg_back", rd(VA_A), 0xaaaa0001);
}

static void test_faults(void)
{
    pf_mode = PF_DEMAND;
    check("demand_read", rd(VA_DEMAND + 0x10), VA_DEMAND + 4);
    check("demand_read_err", pf_err, 0x0);
    check("demand_read_cr2", pf_cr2, VA_DEMAND + 0x10);
    wr(VA_DEMAND + 0x2004, 0x77);
    check("demand_write_err", pf_err, 0x2);
    check("demand_write_cr2", pf_cr2, VA_DEMAND + 0x2004);
    check("demand_write_value", rd(VA_DEMAND + 0x2004), 0x77);
    check("demand_faults", pf_count, 2);

    pf_mode = PF_FIX_RW;
    write_cr0(read_cr0() & ~CR0_WP);
    wr(VA_RO, 0x1);
    check("wp0_write_ro_no_fault", pf_count, 2);
    *pg_pte(pd1, VA_RO) &= ~PG_RW;
    invlpg(VA_RO);
    write_cr0(read_cr0() | CR0_WP);
    wr(VA_RO + 4, 0x2);
    check("wp1_write_ro_faults", pf_count, 3);
    check("wp1_err", pf_err, 0x3);
    check("wp1_cr2", pf_cr2, VA_RO + 4);
    check("wp1_write_retried", rd(VA_RO + 4), 0x2);

    pf_mode = PF_SKIP;
    u32 ret = user_run((u32)user_main, (u32)user_stack + sizeof(user_stack), 0x2);
    check("user_faults", ret, 7);
    check("user_read_sup_err", user_out[0], 0x5);
    check("user_read_sup_cr2", user_out[1], VA_SUP);
    check("user_read_sup_eip", user_out[2], 1);
    check("user_write_sup_err", user_out[3], 0x7);
    check("user_write_ro_err", user_out[4], 0x7);
    check("user_read_none_err", user_out[5], 0x4);
    check("user_read_uro", user_out[6], 0x1); /* written at VA_RO with WP=0 */
    check("user_fault_cpl", pf_cpl, 3);
}

static void test_ad(u32 *fa)
{
    u32 *pte = pg_pte(pd1, VA_AD);
    *pte = (u32)fa | PG_P | PG_RW;
    pd1[VA_AD >> 22] &= ~PG_A;
    invlpg(VA_AD);
    check("ad_initial", *pte & (PG_A | PG_D), 0);
    (void)rd(VA_AD);
    check("ad_after_read", *pte & (PG_A | PG_D), PG_A);
    check("pde_accessed", pd1[VA_AD >> 22] & PG_A, PG_A);
    wr(VA_AD, 5);
    check("ad_after_write", *pte & (PG_A | PG_D), PG_A | PG_D);
}

void kmain(u32 magic, u32 mbi)
{
    set_handler(14, pf_handler);
    set_handler(0x80, syscall_handler);
    idt_set_dpl(0x80, 3);
    pd1 = pg_new_dir();
    pd2 = pg_new_dir();
    u32 *fa = pg_alloc(), *fb = pg_alloc(), *fro = pg_alloc();
    pg_identity(pd1, 0, 0x400000, PG_P | PG_RW | PG_US);
    pd2[0] = pd1[0]; /* share the identity page table */
    pg_map(pd1, VA_A, (u32)fa, PG_P | PG_RW);
    pg_map(pd1, VA_ALIAS, (u32)fa, PG_P | PG_RW);
    pg_map(pd1, VA_RO, (u32)fro, PG_P);
    pg_map(pd1, VA_SUP, (u32)fro, PG_P | PG_RW);
    pg_map(pd1, VA_URO, (u32)fro + 0, PG_P | PG_US);
    pg_map(pd1, VA_AD, (u32)fa, PG_P | PG_RW);
    pg_map(pd2, VA_A, (u32)fb, PG_P | PG_RW);
    write_cr4(read_cr4() | CR4_PSE);
    pg_map_big(pd1, VA_BIG, 0, PG_P | PG_RW);
    pg_enable(pd1);
    check("paging_on", read_cr0() & CR0_PG, CR0_PG);

    test_basic(fa, fb);
    test_faults();
    test_ad(fa);

    pg_disable();
    check("paging_off", read_cr0() & CR0_PG, 0);
}
