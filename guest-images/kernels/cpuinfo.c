/* cpuinfo: what a kernel reads about the CPU and the platform, without
 * CPUID (its vendor and leaf 1 are engine-specific, so they are not printed):
 *
 *   - CR0 as the loader left it; CR0.ET reads 1 after writing 0; CR0.WP,
 *     NE, AM written and read back;
 *   - CR4 write/read-back of PSE and PGE (a #GP would be printed);
 *   - RDMSR/WRMSR round trip of SYSENTER_CS/ESP/EIP (0x174-0x176);
 *   - RDTSC increases (only "ok" is printed: never a count);
 *   - CMOS memory-size bytes 0x15-0x18, 0x30/0x31, 0x34/0x35 as QEMU
 *     sets them for -m 128. */
#include "rt.h"

#define CR0_ET 0x10u
#define CR0_NE 0x20u
#define CR0_AM 0x40000u
#define CR4_PGE 0x80u

u32 expect_eip, resume_eip;
static u32 gp_count;

static void gp_handler(struct frame *f)
{
    gp_count++;
    f->eip = resume_eip;
}

/* Write CR4 (a #GP resumes after the write) and read it back. */
static u32 cr4_roundtrip(u32 v)
{
    u32 r;
    asm volatile("movl $1f, %[e]\n\tmovl $2f, %[r]\n1:\tmovl %[v], %%cr4\n2:\tmovl %%cr4, %[o]"
                 : [e] "=m"(expect_eip), [r] "=m"(resume_eip), [o] "=r"(r)
                 : [v] "r"(v) : "memory");
    return r;
}

static u8 cmos(u8 reg)
{
    outb(0x70, reg);
    return inb(0x71);
}

static u64 rdtsc(void)
{
    u32 lo, hi;
    asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((u64)hi << 32) | lo;
}

static void test_cr(void)
{
    u32 cr0 = read_cr0();
    kv("cr0_at_entry", cr0);
    write_cr0(cr0 & ~CR0_ET);
    kv("cr0_et_cleared", read_cr0());
    write_cr0(cr0 | CR0_WP | CR0_NE | CR0_AM);
    kv("cr0_wp_ne_am", read_cr0());
    write_cr0(cr0);
    kv("cr0_restored", read_cr0());
    kv("cr4_at_entry", read_cr4());
    kv("cr4_pse", cr4_roundtrip(CR4_PSE));
    kv("cr4_pse_pge", cr4_roundtrip(CR4_PSE | CR4_PGE));
    kv("cr4_pge", cr4_roundtrip(CR4_PGE));
    kv("cr4_zero", cr4_roundtrip(0));
    kv_dec("cr4_gp_count", gp_count);
}

static void test_msr(void)
{
    static const u32 msrs[3] = { 0x174, 0x175, 0x176 };
    static const u32 vals[3] = { 0x0008, 0x12345678, 0x9abcdef0 };
    for (u32 i = 0; i < 3; i++) {
        wrmsr(msrs[i], vals[i]);
        u64 v = rdmsr(msrs[i]);
        tprintf("msr_0x%x: edx=0x%x eax=0x%x\n", msrs[i], (u32)(v >> 32), (u32)v);
    }
    for (u32 i = 0; i < 3; i++)
        wrmsr(msrs[i], 0);
    tprintf("msr_cleared: 0x%x 0x%x 0x%x\n", (u32)rdmsr(0x174), (u32)rdmsr(0x175),
            (u32)rdmsr(0x176));
}

static void test_tsc(void)
{
    u64 a = rdtsc();
    volatile u32 sink = 0;
    for (u32 i = 0; i < 1000; i++)
        sink += i;
    u64 b = rdtsc();
    u64 c = rdtsc();
    check("rdtsc_increases", b > a && c > b, 1);
}

static void test_cmos(void)
{
    static const u8 regs[] = { 0x15, 0x16, 0x17, 0x18, 0x30, 0x31, 0x34, 0x35 };
    for (u32 i = 0; i < sizeof(regs); i++)
        tprintf("cmos_0x%x: 0x%x\n", regs[i], cmos(regs[i]));
    u32 base_kb = cmos(0x15) | (cmos(0x16) << 8);
    u32 ext_kb = cmos(0x30) | (cmos(0x31) << 8);
    u32 above16m = (cmos(0x34) | (cmos(0x35) << 8)) * 64 + 16 * 1024;
    kv_dec("cmos_base_kb", base_kb);
    kv_dec("cmos_ext_kb", ext_kb);
    kv_dec("cmos_total_kb_from_0x34", above16m);
}

void kmain(u32 magic, u32 mbi)
{
    set_handler(13, gp_handler);
    test_cr();
    test_msr();
    test_tsc();
    test_cmos();
}
