/* sieve: CPU-bound benchmark. Sieve of Eratosthenes below 8 Mi over a
 * byte array, run 3 times; prints and checks the prime count. */
#include "rt.h"

#define LIMIT (8u << 20)
#define RUNS 3

static u8 composite[LIMIT];

static u32 sieve(void)
{
    for (u32 i = 0; i < LIMIT; i++)
        composite[i] = 0;
    u32 count = 0;
    for (u32 i = 2; i < LIMIT; i++) {
        if (composite[i])
            continue;
        count++;
        for (u32 j = i * i; i < 65536 && j < LIMIT; j += i)
            composite[j] = 1;
    }
    return count;
}

void kmain(u32 magic, u32 mbi)
{
    u32 c = 0, scale = cmdline_uint(mbi, "scale", 1);
    for (u32 r = 0; r < RUNS * scale; r++)
        c = sieve();
    kv_dec("sieve_primes_below_8Mi", c);
    check("sieve_count", c, 564163);
}
