/* Paging helpers: page directories and tables from a static frame pool. */
#include "rt.h"

#define POOL_FRAMES 96

static u8 pool[POOL_FRAMES][4096] __attribute__((aligned(4096)));
static u32 pool_used;

u32 *pg_alloc(void)
{
    if (pool_used >= POOL_FRAMES) {
        tprintf("pg_alloc: out of frames\n");
        rt_exit(EXIT_UNEXPECTED);
    }
    u32 *p = (u32 *)pool[pool_used++];
    for (u32 i = 0; i < 1024; i++)
        p[i] = 0;
    return p;
}

u32 *pg_new_dir(void) { return pg_alloc(); }

void pg_map(u32 *pd, u32 va, u32 pa, u32 flags)
{
    u32 *pde = &pd[va >> 22];
    if (!(*pde & PG_P))
        *pde = (u32)pg_alloc() | PG_P | PG_RW | PG_US;
    u32 *pt = (u32 *)(*pde & ~0xfffu);
    pt[(va >> 12) & 0x3ff] = (pa & ~0xfffu) | flags;
}

void pg_map_big(u32 *pd, u32 va, u32 pa, u32 flags)
{
    pd[va >> 22] = (pa & 0xffc00000u) | flags | PG_PS;
}

u32 *pg_pte(u32 *pd, u32 va)
{
    u32 pde = pd[va >> 22];
    if (!(pde & PG_P) || (pde & PG_PS))
        return 0;
    return &((u32 *)(pde & ~0xfffu))[(va >> 12) & 0x3ff];
}

void pg_identity(u32 *pd, u32 start, u32 end, u32 flags)
{
    for (u32 a = start & ~0xfffu; a < end; a += 4096)
        pg_map(pd, a, a, flags);
}

void pg_enable(u32 *pd)
{
    write_cr3((u32)pd);
    write_cr0(read_cr0() | CR0_PG);
}

void pg_disable(void) { write_cr0(read_cr0() & ~CR0_PG); }
