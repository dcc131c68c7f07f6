/* matmul: CPU-bound benchmark. 128x128 integer matrix product, repeated
 * 8 times feeding the result back; prints a checksum of the result. */
#include "rt.h"

#define N 128
#define ROUNDS 8

static u32 a[N][N], b[N][N], c[N][N];

void kmain(u32 magic, u32 mbi)
{
    u32 scale = cmdline_uint(mbi, "scale", 1);
    /* scale=N (command line, default 1) repeats the work for benchmarks. */
    for (u32 rep = 0; rep < scale; rep++) {
    u32 x = 1;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            x = x * 1664525u + 1013904223u;
            a[i][j] = x >> 24;
            x = x * 1664525u + 1013904223u;
            b[i][j] = x >> 24;
        }
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                u32 s = 0;
                for (int k = 0; k < N; k++)
                    s += a[i][k] * b[k][j];
                c[i][j] = s;
            }
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++)
                a[i][j] = c[i][j] & 0xff;
    }
    }
    u32 h = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            h = h * 33 + c[i][j];
    kv("matmul_checksum", h);
}
