/* crc32: CPU-bound benchmark. Table-driven CRC-32 (IEEE, reflected) over a
 * 1 MiB pseudo-random buffer, 16 passes; prints the checksum. The
 * command line's scale=N (default 1) repeats the whole computation N times
 * (for benchmarks); the output does not depend on it. */
#include "rt.h"

#define BUF_SIZE (1u << 20)
#define PASSES 16

static u32 table[256];
static u8 buf[BUF_SIZE];

static void make_table(void)
{
    for (u32 i = 0; i < 256; i++) {
        u32 c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
}

static u32 crc32(u32 crc, const u8 *p, u32 n)
{
    crc = ~crc;
    while (n--)
        crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

void kmain(u32 magic, u32 mbi)
{
    make_table();
    check("crc32_check_string", crc32(0, (const u8 *)"123456789", 9), 0xcbf43926);
    u32 x = 12345;
    for (u32 i = 0; i < BUF_SIZE; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (u8)(x >> 16);
    }
    u32 crc = 0, scale = cmdline_uint(mbi, "scale", 1);
    for (u32 rep = 0; rep < scale; rep++) {
        crc = 0;
        for (u32 pass = 0; pass < PASSES; pass++)
            crc = crc32(crc, buf, BUF_SIZE);
    }
    kv("crc32", crc);
}
