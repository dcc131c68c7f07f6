/* hello: the smallest kernel. Prints a greeting and what the Multiboot
 * loader handed over, then exits 0. */
#include "rt.h"

struct mb_info {
    u32 flags, mem_lower, mem_upper;
};

void kmain(u32 magic, u32 mbi)
{
    const struct mb_info *mb = (const struct mb_info *)mbi;
    tprintf("hello: bt86 guest runtime\n");
    kv("magic", magic);
    kv("mb_flags", mb->flags);
    kv_dec("mem_lower_kb", mb->mem_lower);
    kv_dec("mem_upper_kb", mb->mem_upper);
    check("magic_is_multiboot", magic, 0x2badb002);
}
