/* strings: CPU-bound benchmark. The string functions of a C library, in
 * the shapes i386 C libraries write them (string instructions, with and
 * without REP prefixes), over a generated text of words and lines:
 *
 *   memset   REP STOSL, then REP STOSB for the tail
 *   strlen   REPNE SCASB (ECX from ~0; the length is ~ECX - 1)
 *   strchr   a LODSB loop: compare with the character, stop at the NUL
 *   memcmp   REPE CMPSB, the result from the bytes where it stopped
 *   strcpy   a LODSB; STOSB loop up to the NUL
 *   strcmp   a LODSB; SCASB loop: stop at a difference or the NUL
 *
 * Every call's result is also computed by a plain C loop and the two
 * compared (a mismatch fails a check); what the program prints are FNV-1a
 * hashes of the results and buffers. The command line's scale=N (default
 * 1) repeats the work N times; the output does not depend on it. */
#include "rt.h"

#define TEXT_SIZE (256u * 1024)
#define LINES 4096
#define ROUNDS 6

static char text[TEXT_SIZE];
static char copy[TEXT_SIZE];
static char fill[64 * 1024 + 64];
static u32 line_at[LINES];
static u32 nlines;

static void asm_memset(void *d, u8 c, u32 n)
{
    u32 v = c * 0x01010101u, words = n >> 2, tail = n & 3;
    asm volatile("rep stosl\n\t"
                 "movl %3, %%ecx\n\t"
                 "rep stosb"
                 : "+D"(d), "+c"(words)
                 : "a"(v), "r"(tail)
                 : "memory");
}

static u32 asm_strlen(const char *s)
{
    u32 n = ~0u;
    asm volatile("repne scasb" : "+D"(s), "+c"(n) : "a"(0) : "memory", "cc");
    return ~n - 1;
}

static const char *asm_strchr(const char *s, char c)
{
    const char *r;
    asm volatile("1:\n\t"
                 "lodsb\n\t"
                 "cmpb %%ah, %%al\n\t"
                 "je 2f\n\t"
                 "testb %%al, %%al\n\t"
                 "jne 1b\n\t"
                 "movl $1, %%esi\n"
                 "2:\n\t"
                 "leal -1(%%esi), %0"
                 : "=r"(r), "+S"(s)
                 : "a"((u32)(u8)c << 8)
                 : "memory", "cc");
    return r;
}

static int asm_memcmp(const void *a, const void *b, u32 n)
{
    const u8 *p = a, *q = b;
    if (!n)
        return 0;
    asm volatile("repe cmpsb" : "+S"(p), "+D"(q), "+c"(n) : : "memory", "cc");
    return (int)p[-1] - (int)q[-1];
}

static void asm_strcpy(char *d, const char *s)
{
    asm volatile("1:\n\t"
                 "lodsb\n\t"
                 "stosb\n\t"
                 "testb %%al, %%al\n\t"
                 "jne 1b"
                 : "+D"(d), "+S"(s)
                 :
                 : "eax", "memory", "cc");
}

static int asm_strcmp(const char *a, const char *b)
{
    u32 r;
    asm volatile("1:\n\t"
                 "lodsb\n\t"
                 "scasb\n\t"
                 "jne 2f\n\t"
                 "testb %%al, %%al\n\t"
                 "jne 1b\n\t"
                 "xorl %%eax, %%eax\n\t"
                 "jmp 3f\n"
                 "2:\n\t"
                 "sbbl %%eax, %%eax\n\t"
                 "orb $1, %%al\n"
                 "3:"
                 : "=a"(r), "+S"(a), "+D"(b)
                 :
                 : "memory", "cc");
    return (int)r;
}

/* The plain C versions, for the checks. */
static u32 c_strlen(const char *s)
{
    u32 n = 0;
    while (s[n])
        n++;
    return n;
}

static const char *c_strchr(const char *s, char c)
{
    for (;; s++) {
        if (*s == c)
            return s;
        if (!*s)
            return 0;
    }
}

static int sign(int x)
{
    return (x > 0) - (x < 0);
}

static int c_memcmp(const void *a, const void *b, u32 n)
{
    const u8 *p = a, *q = b;
    for (u32 i = 0; i < n; i++)
        if (p[i] != q[i])
            return (int)p[i] - (int)q[i];
    return 0;
}

static int c_strcmp(const char *a, const char *b)
{
    const u8 *p = (const u8 *)a, *q = (const u8 *)b;
    while (*p && *p == *q)
        p++, q++;
    return sign((int)*p - (int)*q);
}

static u32 fnv(const void *p, u32 n)
{
    const u8 *b = p;
    u32 h = 0x811c9dc5;
    for (u32 i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x01000193;
    return h;
}

static u32 mix(u32 h, u32 v)
{
    return (h ^ v) * 0x01000193;
}

/* Lines of lower-case words (xorshift), each NUL-terminated; every fourth
 * line repeats the one before it but for its last letter, so strcmp and
 * memcmp meet long equal prefixes. */
static void make_text(void)
{
    u32 x = 2463534242u, at = 0;
    while (nlines < LINES && at + 256 < TEXT_SIZE) {
        line_at[nlines] = at;
        if (nlines % 4 == 3) {
            const char *prev = text + line_at[nlines - 1];
            u32 n = c_strlen(prev);
            for (u32 i = 0; i <= n; i++)
                text[at + i] = prev[i];
            if (n)
                text[at + n - 1] ^= 1;
            at += n + 1;
        } else {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            u32 len = 8 + x % 120;
            for (u32 i = 0; i < len; i++) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                text[at + i] = (x % 7 == 0) ? ' ' : (char)('a' + x % 26);
            }
            text[at + len] = 0;
            at += len + 1;
        }
        nlines++;
    }
}

static u32 mismatches;

static void expect(int ok)
{
    mismatches += !ok;
}

void kmain(u32 magic, u32 mbi)
{
    make_text();
    kv_dec("strings_lines", nlines);
    kv("strings_text_fnv", fnv(text, line_at[nlines - 1] + c_strlen(text + line_at[nlines - 1])));
    u32 scale = cmdline_uint(mbi, "scale", 1);
    u32 h_len = 0, h_chr = 0, h_cmp = 0, h_mcmp = 0, h_set = 0;
    for (u32 rep = 0; rep < scale; rep++) {
        h_len = h_chr = h_cmp = h_mcmp = h_set = 0x811c9dc5;
        for (u32 round = 0; round < ROUNDS; round++) {
            char want = (char)('a' + round * 5);
            for (u32 l = 0; l < nlines; l++) {
                const char *s = text + line_at[l];
                u32 n = asm_strlen(s);
                expect(n == c_strlen(s));
                h_len = mix(h_len, n);
                const char *p = asm_strchr(s, want);
                expect(p == c_strchr(s, want));
                h_chr = mix(h_chr, p ? (u32)(p - s) : 0xffffffffu);
                asm_strcpy(copy + line_at[l], s);
                if (l > 0) {
                    const char *t = text + line_at[l - 1];
                    int r = asm_strcmp(s, t);
                    expect(sign(r) == c_strcmp(s, t));
                    h_cmp = mix(h_cmp, (u32)sign(r));
                    u32 m = n < c_strlen(t) ? n : c_strlen(t);
                    int mr = asm_memcmp(s, t, m);
                    expect(sign(mr) == sign(c_memcmp(s, t, m)));
                    h_mcmp = mix(h_mcmp, (u32)sign(mr));
                }
            }
            for (u32 k = 0; k < 16; k++) {
                u32 off = (round * 7 + k * 13) % 64, len = 4096 * (k + 1) - off;
                asm_memset(fill + off, (u8)(round * 16 + k), len);
                expect(fill[off] == (char)(round * 16 + k) && fill[off + len - 1] == (char)(round * 16 + k));
                h_set = mix(h_set, fnv(fill, sizeof(fill)));
            }
        }
    }
    kv("strings_strlen", h_len);
    kv("strings_strchr", h_chr);
    kv("strings_strcmp", h_cmp);
    kv("strings_memcmp", h_mcmp);
    kv("strings_memset", h_set);
    check("strings_copy_equals_text", fnv(copy, TEXT_SIZE), fnv(text, TEXT_SIZE));
    check("strings_asm_equals_c", mismatches, 0);
    check("strings_df_clear", read_eflags() & EFLAGS_DF, 0);
}
