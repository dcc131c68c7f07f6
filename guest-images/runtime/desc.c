/* Descriptor helpers: the big GDT, segment and gate descriptors, LDTR, IDTR.
 * See desc.h. */
#include "desc.h"

struct dtr {
    u16 limit;
    u32 base;
} __attribute__((packed));

u64 gdt_big[GDT_BIG_ENTRIES] __attribute__((aligned(8)));

void gdt_big_init(void)
{
    struct dtr old, big = { sizeof(gdt_big) - 1, (u32)gdt_big };
    asm volatile("sgdt %0" : "=m"(old));
    const u64 *src = (const u64 *)old.base;
    for (u32 i = 0; i < GDT_ENTRIES; i++)
        gdt_big[i] = src[i];
    asm volatile("lgdt %0" ::"m"(big) : "memory");
}

void desc_seg(u64 *t, u32 i, u32 base, u32 limit, u8 access, u8 flags)
{
    u32 lo = (limit & 0xffff) | (base << 16);
    u32 hi = ((base >> 16) & 0xff) | ((u32)access << 8) | (limit & 0xf0000) |
             ((u32)(flags & 0xf) << 20) | (base & 0xff000000u);
    t[i] = ((u64)hi << 32) | lo;
}

void desc_gate(u64 *t, u32 i, u16 sel, u32 off, u8 type_attr, u8 params)
{
    u32 lo = (off & 0xffff) | ((u32)sel << 16);
    u32 hi = (off & 0xffff0000u) | ((u32)type_attr << 8) | (params & 0x1f);
    t[i] = ((u64)hi << 32) | lo;
}

void lldt(u16 sel) { asm volatile("lldt %0" ::"r"(sel) : "memory"); }

u16 sldt(void)
{
    u16 s;
    asm volatile("sldt %0" : "=r"(s));
    return s;
}

void idt_get(u32 *base, u16 *limit)
{
    struct dtr d;
    asm volatile("sidt %0" : "=m"(d));
    *base = d.base;
    *limit = d.limit;
}

void idt_load(u32 base, u16 limit)
{
    struct dtr d = { limit, base };
    asm volatile("lidt %0" ::"m"(d) : "memory");
}
