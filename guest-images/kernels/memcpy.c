/* memcpy: CPU-bound benchmark. Large copies with REP MOVS: REP MOVSB, and
 * REP MOVSD plus a REP MOVSB tail (the classic memcpy), over sizes from
 * 300 bytes to 1 MiB with aligned and misaligned source and destination;
 * and overlapping moves (memmove) within one buffer, backward (STD; REP
 * MOVSB/MOVSD; CLD) then forward again. Each copy is repeated so every
 * configuration moves several MiB.
 *
 * Checks, per configuration: the destination equals the source (FNV-1a of
 * both), the bytes just outside the destination are untouched; for the
 * overlapping moves, the backward move and the forward move each leave the
 * data where it belongs. The command line's scale=N (default 1) repeats
 * every configuration's copies N times; the output does not depend on it. */
#include "rt.h"

#define SRC_SIZE ((1u << 20) + 64)
#define DST_SIZE ((1u << 20) + 4096)
#define GUARD 16   /* the destination starts GUARD bytes into dst[] */
#define GUARD_BYTE 0xa5

enum kind {
    FWD_B, /* rep movsb */
    FWD_D, /* rep movsd + rep movsb for the last n % 4 bytes */
    OVL_B, /* move up by `off` backward with movsb, then down forward */
    OVL_D, /* same with movsd (n a multiple of 4) */
};

struct config {
    const char *name;
    u32 size, src_off, dst_off; /* for OVL_*: dst_off = distance moved */
    enum kind kind;
    u32 reps; /* copies (OVL: round trips) per scale unit */
};

static const struct config configs[] = {
    { "memcpy_1m_movsd_aligned", 1u << 20, 0, 0, FWD_D, 24 },
    { "memcpy_1m_movsb_src1_dst3", 1u << 20, 1, 3, FWD_B, 24 },
    { "memcpy_1m_movsd_src2_dst1", (1u << 20) - 7, 2, 1, FWD_D, 24 },
    { "memcpy_64k_movsb_aligned", 1u << 16, 0, 0, FWD_B, 384 },
    { "memcpy_64k_movsd_src3_dst0", 1u << 16, 3, 0, FWD_D, 384 },
    { "memcpy_4k_movsd_aligned", 4096, 0, 0, FWD_D, 6144 },
    { "memcpy_4093_movsb_src1_dst2", 4093, 1, 2, FWD_B, 6144 },
    { "memcpy_300_movsd_src1_dst1", 300, 1, 1, FWD_D, 65536 },
    { "memmove_256k_movsb_by13", 1u << 18, 0, 13, OVL_B, 24 },
    { "memmove_256k_movsd_by64", 1u << 18, 0, 64, OVL_D, 24 },
};

static u8 src[SRC_SIZE];
static u8 dst[DST_SIZE];

static void fwd_movsb(u8 *d, const u8 *s, u32 n)
{
    asm volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
}

static void fwd_movsd(u8 *d, const u8 *s, u32 n)
{
    u32 words = n >> 2, tail = n & 3;
    asm volatile("rep movsl\n\t"
                 "movl %3, %%ecx\n\t"
                 "rep movsb"
                 : "+D"(d), "+S"(s), "+c"(words)
                 : "r"(tail)
                 : "memory");
}

/* Backward copies for an overlapping move to a higher address. */
static void back_movsb(u8 *d, const u8 *s, u32 n)
{
    u8 *di = d + n - 1;
    const u8 *si = s + n - 1;
    asm volatile("std\n\trep movsb\n\tcld" : "+D"(di), "+S"(si), "+c"(n) : : "memory", "cc");
}

static void back_movsd(u8 *d, const u8 *s, u32 n)
{
    u8 *di = d + n - 4;
    const u8 *si = s + n - 4;
    u32 words = n >> 2;
    asm volatile("std\n\trep movsl\n\tcld" : "+D"(di), "+S"(si), "+c"(words) : : "memory", "cc");
}

static u32 fnv(const u8 *p, u32 n)
{
    u32 h = 0x811c9dc5;
    for (u32 i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x01000193;
    return h;
}

static u32 guards_broken;

static void fill_guards(u32 len)
{
    for (u32 i = 0; i < len + 2 * GUARD && i < DST_SIZE; i++)
        dst[i] = GUARD_BYTE;
}

static void check_guards(u32 from, u32 to)
{
    if (dst[from - 1] != GUARD_BYTE || dst[to] != GUARD_BYTE)
        guards_broken++;
}

static void run_forward(const struct config *c, u32 scale)
{
    u8 *d = dst + GUARD + c->dst_off;
    const u8 *s = src + c->src_off;
    fill_guards(c->size + c->dst_off);
    for (u32 rep = 0; rep < scale; rep++)
        for (u32 k = 0; k < c->reps; k++) {
            if (c->kind == FWD_B)
                fwd_movsb(d, s, c->size);
            else
                fwd_movsd(d, s, c->size);
        }
    check(c->name, fnv(d, c->size), fnv(s, c->size));
    check_guards(GUARD + c->dst_off, GUARD + c->dst_off + c->size);
}

static void move_up(const struct config *c, u8 *base)
{
    if (c->kind == OVL_B)
        back_movsb(base + c->dst_off, base, c->size);
    else
        back_movsd(base + c->dst_off, base, c->size);
}

static void move_down(const struct config *c, u8 *base)
{
    if (c->kind == OVL_B)
        fwd_movsb(base, base + c->dst_off, c->size);
    else
        fwd_movsd(base, base + c->dst_off, c->size);
}

static void run_overlapping(const struct config *c, u32 scale)
{
    u8 *base = dst + GUARD;
    u32 n = c->size, by = c->dst_off, want = fnv(src, n);
    fill_guards(n + by);
    fwd_movsb(base, src, n);
    for (u32 rep = 0; rep < scale; rep++)
        for (u32 k = 0; k < c->reps; k++) {
            move_up(c, base);
            move_down(c, base);
        }
    /* After a round trip the top `by` bytes hold src[n-by, n). */
    u32 ok = fnv(base, n) == want && fnv(base + n, by) == fnv(src + n - by, by);
    move_up(c, base);
    ok &= fnv(base + by, n) == want;
    move_down(c, base);
    ok &= fnv(base, n) == want;
    check(c->name, ok, 1);
    check_guards(GUARD, GUARD + n + by);
}

void kmain(u32 magic, u32 mbi)
{
    u32 x = 88172645;
    for (u32 i = 0; i < SRC_SIZE; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        src[i] = (u8)x;
    }
    kv("memcpy_src_fnv", fnv(src, SRC_SIZE));
    u32 scale = cmdline_uint(mbi, "scale", 1);
    for (u32 i = 0; i < sizeof(configs) / sizeof(configs[0]); i++) {
        if (configs[i].kind == FWD_B || configs[i].kind == FWD_D)
            run_forward(&configs[i], scale);
        else
            run_overlapping(&configs[i], scale);
    }
    check("memcpy_guards_intact", guards_broken, 0);
    check("memcpy_df_clear", read_eflags() & EFLAGS_DF, 0);
}
