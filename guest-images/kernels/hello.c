/* hello: the smallest kernel. Prints a greeting, the CPU state the Multiboot
 * loader left at entry, and the Multiboot information (flags, memory sizes,
 * command line, memory map), then exits 0. */
#include "rt.h"

struct mb_info {
    u32 flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
    u32 syms[4];
    u32 mmap_length, mmap_addr;
};

struct mb_mmap {
    u32 size;
    u32 base_lo, base_hi, len_lo, len_hi, type;
} __attribute__((packed));

static void print_entry_state(void)
{
    const struct boot_state *b = &boot_state;
    kv("entry_eax", b->eax);
    kv("entry_cs", b->cs & 0xffff);
    kv("entry_ds", b->ds & 0xffff);
    kv("entry_es", b->es & 0xffff);
    kv("entry_ss", b->ss & 0xffff);
    kv("entry_cr0", b->cr0);
    kv("entry_eflags", b->eflags);
    kv("entry_gdt_limit", b->gdt_limit);
    kv("entry_gdt_base", b->gdt_base_lo | ((u32)b->gdt_base_hi << 16));
}

/* QEMU passes "KERNEL-PATH APPEND": print the kernel's file name without
 * its directory (so the output does not depend on where it was run from)
 * and the APPEND part verbatim. */
static void print_cmdline(const char *s)
{
    u32 end = 0, base = 0;
    while (s[end] && s[end] != ' ' && end < 256)
        if (s[end++] == '/')
            base = end;
    tprintf("cmdline_kernel_name: \"");
    for (u32 i = base; i < end; i++)
        out_char(s[i]);
    tprintf("\"\ncmdline_append: \"");
    for (u32 i = end + (s[end] == ' '); s[end] && s[i] && i < 512; i++)
        out_char(s[i]);
    tprintf("\"\n");
}

static void print_mmap(const struct mb_info *mb)
{
    u32 p = mb->mmap_addr, end = mb->mmap_addr + mb->mmap_length;
    for (u32 n = 0; p < end && n < 32; n++) {
        const struct mb_mmap *e = (const struct mb_mmap *)p;
        tprintf("mmap%u: base=0x%08x%08x len=0x%08x%08x type=%u\n", n, e->base_hi,
                e->base_lo, e->len_hi, e->len_lo, e->type);
        p += e->size + 4;
    }
}

void kmain(u32 magic, u32 mbi)
{
    const struct mb_info *mb = (const struct mb_info *)mbi;
    tprintf("hello: bt86 guest runtime\n");
    kv("magic", magic);
    print_entry_state();
    kv("mb_info_addr", mbi);
    kv("mb_flags", mb->flags);
    kv_dec("mem_lower_kb", mb->mem_lower);
    kv_dec("mem_upper_kb", mb->mem_upper);
    if (mb->flags & (1u << 2))
        kv("cmdline_addr", mb->cmdline);
    if (mb->flags & (1u << 2))
        print_cmdline((const char *)mb->cmdline);
    if (mb->flags & (1u << 3))
        kv_dec("mods_count", mb->mods_count);
    if (mb->flags & (1u << 6)) {
        kv("mmap_addr", mb->mmap_addr);
        kv("mmap_length", mb->mmap_length);
        print_mmap(mb);
    }
    check("magic_is_multiboot", magic, 0x2badb002);
    check("entry_protected_mode", boot_state.cr0 & 1, 1);
    check("entry_paging_off", boot_state.cr0 & CR0_PG, 0);
    check("entry_if_clear", boot_state.eflags & EFLAGS_IF, 0);
}
