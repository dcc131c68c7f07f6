/* sort: CPU-bound benchmark. Sorts 256 Ki pseudo-random words with an
 * in-place quicksort (median of three, insertion sort below 16), checks the
 * order and prints a position-weighted checksum. */
#include "rt.h"

#define N (1u << 18)

static u32 a[N];

static void insertion(u32 *v, int n)
{
    for (int i = 1; i < n; i++) {
        u32 x = v[i];
        int j = i - 1;
        while (j >= 0 && v[j] > x) {
            v[j + 1] = v[j];
            j--;
        }
        v[j + 1] = x;
    }
}

static void swap(u32 *x, u32 *y)
{
    u32 t = *x;
    *x = *y;
    *y = t;
}

static void quicksort(u32 *v, int n)
{
    while (n > 16) {
        int m = n / 2;
        if (v[m] < v[0]) swap(&v[m], &v[0]);
        if (v[n - 1] < v[0]) swap(&v[n - 1], &v[0]);
        if (v[n - 1] < v[m]) swap(&v[n - 1], &v[m]);
        u32 p = v[m];
        int i = 0, j = n - 1;
        while (i <= j) {
            while (v[i] < p) i++;
            while (v[j] > p) j--;
            if (i <= j) swap(&v[i++], &v[j--]);
        }
        /* recurse into the smaller part, loop on the larger */
        if (j + 1 < n - i) {
            quicksort(v, j + 1);
            v += i;
            n -= i;
        } else {
            quicksort(v + i, n - i);
            n = j + 1;
        }
    }
    insertion(v, n);
}

void kmain(u32 magic, u32 mbi)
{
    u32 sum_before = 0, sum_after = 0, sorted = 1, h = 0, scale = cmdline_uint(mbi, "scale", 1);
    /* scale=N (command line, default 1) repeats the work for benchmarks. */
    for (u32 rep = 0; rep < scale; rep++) {
        u32 x = 2463534242u;
        sum_before = 0;
        for (u32 i = 0; i < N; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            a[i] = x;
            sum_before += x;
        }
        quicksort(a, N);
    }
    for (u32 i = 0; i < N; i++) {
        sum_after += a[i];
        if (i && a[i - 1] > a[i])
            sorted = 0;
        h = h * 31 + a[i] * (i | 1);
    }
    check("sort_sorted", sorted, 1);
    check("sort_same_sum", sum_after, sum_before);
    kv("sort_checksum", h);
}
