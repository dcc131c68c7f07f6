/* Descriptor helpers for kernels that need more GDT entries than the
 * runtime's ten free ones (segments, code16, doublefault), an LDT, or call
 * gates. Linked only into the kernels that use it (Makefile: RT_DESC), so
 * the older images stay byte for byte what they were.
 *
 * gdt_big_init() copies the runtime GDT (entries 0..GDT_ENTRIES-1, with
 * whatever accessed bits the CPU has set in them) into gdt_big[] and loads
 * it with a limit of GDT_BIG_ENTRIES*8-1; the runtime's gdt_set() then no
 * longer writes the live table, so use desc_seg()/desc_gate() on gdt_big.
 * Selector GDT_BIG_ENTRIES*8 is the first one past the limit. */
#ifndef BT86_DESC_H
#define BT86_DESC_H
#include "rt.h"

#define GDT_BIG_ENTRIES 64
#define SEL_BEYOND_BIG (GDT_BIG_ENTRIES * 8)

extern u64 gdt_big[GDT_BIG_ENTRIES];

/* A far pointer as LDS/LSS/LJMP m16:32 read it. */
struct farptr {
    u32 off;
    u16 sel;
} __attribute__((packed));

void gdt_big_init(void);
/* Code/data/system segment: access byte (P DPL S type) and flags (G D/B L AVL). */
void desc_seg(u64 *table, u32 index, u32 base, u32 limit, u8 access, u8 flags);
/* Call/interrupt/trap/task gate: type_attr = P DPL 0 type; params = dword
 * (or word) count copied by a call gate. */
void desc_gate(u64 *table, u32 index, u16 sel, u32 offset, u8 type_attr, u8 params);
void lldt(u16 sel);
u16 sldt(void);

/* IDT base and limit (SIDT) and reloading them (LIDT). */
void idt_get(u32 *base, u16 *limit);
void idt_load(u32 base, u16 limit);
#endif
