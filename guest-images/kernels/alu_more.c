/* ALU core, part 2: BCD adjusts, bit ops, bsf/bsr, bswap, setcc/cmovcc,
 * sign extensions, xchg/xadd/cmpxchg/cmpxchg8b, movzx/movsx, lea, and the
 * string instructions. See alu_core.h. */
#include "alu_core.h"

/* ---- BCD ---------------------------------------------------------------- */

#define BCD(fn, insn)                                                          \
    static u32 fn(u32 ax, u32 fin, u32 *fo)                                    \
    {                                                                          \
        u32 f;                                                                 \
        asm volatile("pushl %[fi]\n\tpopfl\n\t" insn "\n\tpushfl\n\tpopl %[f]" \
                     : "+a"(ax), [f] "=&r"(f)                                  \
                     : [fi] "r"(fin)                                           \
                     : "cc");                                                  \
        *fo = f;                                                               \
        return ax & 0xffff;                                                    \
    }
BCD(do_daa, "daa") BCD(do_das, "das") BCD(do_aaa, "aaa") BCD(do_aas, "aas")
BCD(do_aam10, "aam") BCD(do_aam16, "aam $16") BCD(do_aad10, "aad") BCD(do_aad16, "aad $16")

static void test_bcd(void)
{
    static const u32 als[] = { 0x00, 0x09, 0x0a, 0x0f, 0x19, 0x1a, 0x99, 0x9a, 0x9f, 0xa0, 0xf9, 0xfa, 0xff };
    static const u32 axs[] = { 0x0009, 0x000a, 0x000f, 0x00f9, 0x01fa, 0x0100, 0x05ff, 0xff00 };
    u32 f, r;
    for (unsigned i = 0; i < sizeof(als) / sizeof(als[0]); i++)
        for (u32 fl = 0; fl < 4; fl++) {
            u32 fin = (fl & 1 ? F_C : 0) | (fl & 2 ? F_A : 0);
            r = do_daa(0x1200 | als[i], fin, &f);
            tprintf("daa %x c%u a%u: %x f=0x%x\n", als[i], fl & 1, fl >> 1, r, f & (F_ALL & ~F_O));
            r = do_das(0x1200 | als[i], fin, &f);
            tprintf("das %x c%u a%u: %x f=0x%x\n", als[i], fl & 1, fl >> 1, r, f & (F_ALL & ~F_O));
        }
    for (unsigned i = 0; i < sizeof(axs) / sizeof(axs[0]); i++)
        for (u32 a = 0; a < 2; a++) {
            r = do_aaa(axs[i], a ? F_A : 0, &f);
            tprintf("aaa %x a%u: %x f=0x%x\n", axs[i], a, r, f & (F_A | F_C));
            r = do_aas(axs[i], a ? F_A : 0, &f);
            tprintf("aas %x a%u: %x f=0x%x\n", axs[i], a, r, f & (F_A | F_C));
        }
    for (unsigned i = 0; i < sizeof(als) / sizeof(als[0]); i++) {
        u32 ax = 0x0300 | als[i];
        r = do_aam10(ax, 0, &f);
        tprintf("aam10 %x: %x f=0x%x\n", ax, r, f & (F_S | F_Z | F_P));
        r = do_aam16(ax, 0, &f);
        tprintf("aam16 %x: %x f=0x%x\n", ax, r, f & (F_S | F_Z | F_P));
        r = do_aad10(ax, 0, &f);
        tprintf("aad10 %x: %x f=0x%x\n", ax, r, f & (F_S | F_Z | F_P));
        r = do_aad16(ax, 0, &f);
        tprintf("aad16 %x: %x f=0x%x\n", ax, r, f & (F_S | F_Z | F_P));
    }
}

/* ---- bit tests and scans ------------------------------------------------ */

#define BTREG(fn, insn)                                                        \
    static u32 fn(u32 v, u32 bit, u32 *fo)                                     \
    {                                                                          \
        u32 f;                                                                 \
        asm volatile("pushl $0\n\tpopfl\n\t" insn " %[b], %[v]\n\tpushfl\n\tpopl %[f]" \
                     : [v] "+r"(v), [f] "=&r"(f)                               \
                     : [b] "r"(bit)                                            \
                     : "cc");                                                  \
        *fo = f;                                                               \
        return v;                                                              \
    }
BTREG(bt_r, "btl") BTREG(bts_r, "btsl") BTREG(btr_r, "btrl") BTREG(btc_r, "btcl")

/* Bit string in memory, bit offset relative to the middle dword (may be <0). */
#define BTMEM(fn, insn)                                                        \
    static u32 fn(u32 *base, s32 bit, u32 *fo)                                 \
    {                                                                          \
        u32 f;                                                                 \
        asm volatile("pushl $0\n\tpopfl\n\t" insn " %[b], (%[p])\n\tpushfl\n\tpopl %[f]" \
                     : [f] "=&r"(f)                                            \
                     : [b] "r"(bit), [p] "r"(base)                             \
                     : "cc", "memory");                                        \
        return *fo = f;                                                        \
    }
BTMEM(bt_m, "btl") BTMEM(bts_m, "btsl") BTMEM(btr_m, "btrl") BTMEM(btc_m, "btcl")

static void test_bits(void)
{
    static const u32 bits[] = { 0, 5, 31, 35, 0xffffffe1 };
    static const s32 moffs[] = { -33, -1, 0, 7, 31, 32, 63, 95 };
    u32 (*const rf[4])(u32, u32, u32 *) = { bt_r, bts_r, btr_r, btc_r };
    u32 (*const mf[4])(u32 *, s32, u32 *) = { bt_m, bts_m, btr_m, btc_m };
    static const char *const names[4] = { "bt", "bts", "btr", "btc" };
    u32 f, r;
    for (int op = 0; op < 4; op++)
        for (unsigned i = 0; i < 5; i++) {
            r = rf[op](0x8a5b3c41, bits[i], &f);
            tprintf("%s32 8a5b3c41,%u: %x f=0x%x\n", names[op], bits[i] & 0xff, r, f & (F_C | F_Z));
        }
    for (int op = 0; op < 4; op++) {
        u32 mem[5] = { 0x11111111, 0x8a5b3c41, 0x76543210, 0xfedcba98, 0x0f0f0f0f };
        for (unsigned i = 0; i < 8; i++) {
            mf[op](&mem[2], moffs[i], &f);
            tprintf("%s32m %d: f=0x%x\n", names[op], moffs[i], f & (F_C | F_Z));
        }
        tprintf("%s32m mem: %x %x %x %x %x\n", names[op], mem[0], mem[1], mem[2], mem[3], mem[4]);
    }
    u32 v = 0x8000, fbt;
    asm volatile("pushl $0\n\tpopfl\n\tbtw $15, %w0\n\tpushfl\n\tpopl %1" : "+r"(v), "=r"(fbt) :: "cc");
    tprintf("bt16 8000,imm15: f=0x%x\n", fbt & (F_C | F_Z));
    asm volatile("pushl $0x41\n\tpopfl\n\tbtsl $36, %0\n\tpushfl\n\tpopl %1" : "+r"(v), "=r"(fbt) :: "cc");
    tprintf("bts32 8000,imm36: %x f=0x%x\n", v, fbt & (F_C | F_Z));

    static const u32 scan[] = { 0, 1, 0x80000000, 0x00f00000, 0xffffffff, 0x00010000, 0x8000 };
    for (unsigned i = 0; i < 7; i++) {
        u32 fs, fr, s = 0xdead, q = 0xdead, s16 = 0xdead, f16;
        asm volatile("pushl $0\n\tpopfl\n\tbsfl %2, %0\n\tpushfl\n\tpopl %1" : "+r"(s), "=&r"(fs) : "r"(scan[i]) : "cc");
        asm volatile("pushl $0\n\tpopfl\n\tbsrl %2, %0\n\tpushfl\n\tpopl %1" : "+r"(q), "=&r"(fr) : "r"(scan[i]) : "cc");
        asm volatile("pushl $0\n\tpopfl\n\tbsrw %w2, %w0\n\tpushfl\n\tpopl %1" : "+r"(s16), "=&r"(f16) : "r"(scan[i]) : "cc");
        if (scan[i] == 0)
            s = q = 0; /* destination undefined for a zero source */
        if ((scan[i] & 0xffff) == 0)
            s16 = 0;
        tprintf("bsf32 %x: %x f=0x%x\n", scan[i], s, fs & F_Z);
        tprintf("bsr32 %x: %x f=0x%x\n", scan[i], q, fr & F_Z);
        tprintf("bsr16 %x: %x f=0x%x\n", scan[i] & 0xffff, s16 & 0xffff, f16 & F_Z);
        u32 b = scan[i] ^ 0x12345678;
        asm volatile("bswap %0" : "+r"(b));
        tprintf("bswap %x: %x\n", scan[i] ^ 0x12345678, b);
    }
}

/* ---- setcc / cmovcc / jcc ---------------------------------------------- */

#define SETCC(cc)                                                              \
    asm volatile("pushl %[fi]\n\tpopfl\n\tset" #cc " %b[r]" : [r] "=q"(r) : [fi] "r"(fin) : "cc"); \
    set |= (r & 1) << i++;                                                     \
    asm volatile("pushl %[fi]\n\tpopfl\n\tcmov" #cc "l %[one], %[m]"           \
                 : [m] "=r"(m) : [fi] "r"(fin), [one] "r"(1), "0"(0) : "cc");  \
    mov |= m << (i - 1);

static void test_cc(void)
{
    static const u32 fins[] = { 0, F_C, F_Z, F_S, F_O, F_S | F_O, F_Z | F_C, F_P, F_ALL };
    for (unsigned k = 0; k < sizeof(fins) / sizeof(fins[0]); k++) {
        u32 fin = fins[k], set = 0, mov = 0, r, m;
        int i = 0;
        SETCC(o) SETCC(no) SETCC(b) SETCC(ae) SETCC(e) SETCC(ne) SETCC(be) SETCC(a)
        SETCC(s) SETCC(ns) SETCC(p) SETCC(np) SETCC(l) SETCC(ge) SETCC(le) SETCC(g)
        tprintf("setcc f=0x%x: %x\n", fin, set);
        tprintf("cmovcc f=0x%x: %x\n", fin, mov);
    }
}

/* ---- moves, extensions, exchanges --------------------------------------- */

static void test_moves(void)
{
    static const u32 v[] = { 0x7f, 0x80, 0x7fff, 0x8000, 0x8000ff80, 0x12345678 };
    for (unsigned i = 0; i < 6; i++) {
        u32 a = v[i], b = v[i], c = v[i], d, e = v[i];
        asm("cbtw" : "+a"(a));
        asm("cwtl" : "+a"(b));
        asm("cwtd" : "+a"(c), "=d"(d) : "1"(0x5555));
        tprintf("cbw %x: %x\n", v[i], a);
        tprintf("cwde %x: %x\n", v[i], b);
        tprintf("cwd %x: %x:%x\n", v[i], d & 0xffff, c);
        asm("cltd" : "+a"(e), "=d"(d));
        tprintf("cdq %x: %x:%x\n", v[i], d, e);
        u32 zb, zw, sb, sw, sbw;
        asm("movzbl %b1, %0" : "=r"(zb) : "q"(v[i]));
        asm("movzwl %w1, %0" : "=r"(zw) : "r"(v[i]));
        asm("movsbl %b1, %0" : "=r"(sb) : "q"(v[i]));
        asm("movswl %w1, %0" : "=r"(sw) : "r"(v[i]));
        asm("movl $0xaaaaaaaa, %0\n\tmovsbw %b1, %w0" : "=&r"(sbw) : "q"(v[i]));
        tprintf("movzx %x: b=%x w=%x\n", v[i], zb, zw);
        tprintf("movsx %x: b=%x w=%x bw=%x\n", v[i], sb, sw, sbw);
    }
    for (int w = 0; w < 3; w++)
        for (int x = 0; x < 6; x += 2)
            for (int y = 1; y < 6; y += 2) {
                u32 a = alu_vals[w][x], b = alu_vals[w][y], f, s = b;
                u32 d = a;
                if (w == 0) asm volatile("pushl $0\n\tpopfl\n\txaddb %b1, %b0\n\tpushfl\n\tpopl %2" : "+q"(d), "+q"(s), "=&r"(f) :: "cc");
                if (w == 1) asm volatile("pushl $0\n\tpopfl\n\txaddw %w1, %w0\n\tpushfl\n\tpopl %2" : "+r"(d), "+r"(s), "=&r"(f) :: "cc");
                if (w == 2) asm volatile("pushl $0\n\tpopfl\n\txaddl %1, %0\n\tpushfl\n\tpopl %2" : "+r"(d), "+r"(s), "=&r"(f) :: "cc");
                u32 m = w == 0 ? 0xff : w == 1 ? 0xffff : 0xffffffff;
                tprintf("xadd%d %x,%x: %x,%x f=0x%x\n", alu_bits[w], a, b, d & m, s & m, f & F_ALL);
            }
    u32 p = 0x11112222, q = 0x33334444;
    asm("xchgl %0, %1" : "+r"(p), "+r"(q));
    asm("xchgw %w0, %w1" : "+r"(p), "+r"(q));
    asm("xchgb %b0, %h1" : "+q"(p), "+Q"(q));
    tprintf("xchg: %x %x\n", p, q);
    static const u32 cx[][3] = { /* dst, eax, src */
        { 5, 5, 9 }, { 5, 6, 9 }, { 0x80000000, 0x7fffffff, 1 }, { 0xffffffff, 0xffffffff, 0 } };
    for (int i = 0; i < 4; i++) {
        u32 mem = cx[i][0], a = cx[i][1], f, mem8 = cx[i][0], a8 = cx[i][1], f8;
        asm volatile("pushl $0\n\tpopfl\n\tlock cmpxchgl %3, %1\n\tpushfl\n\tpopl %2" : "+a"(a), "+m"(mem), "=&r"(f) : "r"(cx[i][2]) : "cc");
        asm volatile("pushl $0\n\tpopfl\n\tcmpxchgb %b3, %b1\n\tpushfl\n\tpopl %2" : "+a"(a8), "+q"(mem8), "=&r"(f8) : "q"(cx[i][2]) : "cc");
        tprintf("cmpxchg32 %x,%x,%x: mem=%x eax=%x f=0x%x\n", cx[i][0], cx[i][1], cx[i][2], mem, a, f & F_ALL);
        tprintf("cmpxchg8 %x,%x,%x: dst=%x al=%x f=0x%x\n", cx[i][0] & 0xff, cx[i][1] & 0xff, cx[i][2] & 0xff, mem8 & 0xff, a8 & 0xff, f8 & F_ALL);
    }
    for (int eq = 0; eq < 2; eq++) {
        u64 mem = 0x1122334455667788ull;
        u32 lo = eq ? 0x55667788 : 1, hi = 0x11223344, f;
        asm volatile("pushl $0\n\tpopfl\n\tlock cmpxchg8b %1\n\tpushfl\n\tpopl %2"
                     : "+a"(lo), "+m"(mem), "=&r"(f), "+d"(hi)
                     : "b"(0xaaaabbbb), "c"(0xccccdddd) : "cc");
        tprintf("cmpxchg8b eq=%d: mem=%x:%x edx:eax=%x:%x f=0x%x\n", eq, (u32)(mem >> 32), (u32)mem, hi, lo, f & F_Z);
    }
}

static void test_lea(void)
{
    u32 b = 0x1000, s = 0x20, r[8];
    asm("leal 0x10(%1,%2,4), %0" : "=r"(r[0]) : "r"(b), "r"(s));
    asm("leal (,%1,8), %0" : "=r"(r[1]) : "r"(s));
    asm("leal -1(%1), %0" : "=r"(r[2]) : "r"(0u));
    asm("leal 0x7fffffff(%1,%1), %0" : "=r"(r[3]) : "r"(0x80000001u));
    asm("leal 0x1234, %0" : "=r"(r[4]));
    asm("leaw 0x10(%1,%2,2), %w0" : "=r"(r[5]) : "r"(0xfff8u), "r"(0x1234u), "0"(0xaaaa0000u));
    asm("leal 0x10(%%bx,%%si), %0" : "=r"(r[6]) : "b"(0xfff8u), "S"(0x100u));
    for (int i = 0; i < 7; i++)
        tprintf("lea%d: %x\n", i, r[i]);
}

/* ---- string instructions ------------------------------------------------ */

static u8 sbuf[64], dbuf[64];

static void fill(void)
{
    for (int i = 0; i < 64; i++) {
        sbuf[i] = (u8)(i * 7 + 1);
        dbuf[i] = (u8)(0xe0 + i);
    }
}

static u32 sum(const u8 *p)
{
    u32 h = 0;
    for (int i = 0; i < 64; i++)
        h = h * 31 + p[i];
    return h;
}

/* Runs one string instruction with ESI/EDI at offset `at` into the buffers,
 * ECX=cnt, EAX=acc, DF=df; prints the registers after, relative to the
 * buffers, the flags and a hash of the destination. */
#define STR(label, insn, fmask)                                                \
    do {                                                                       \
        fill();                                                                \
        u32 S = (u32)sbuf + at, D = (u32)dbuf + at, C = cnt, A = acc, F;       \
        asm volatile("pushl %[fi]\n\tpopfl\n\t" insn "\n\tpushfl\n\tpopl %[f]\n\tcld" \
                     : "+S"(S), "+D"(D), "+c"(C), "+a"(A), [f] "=&r"(F)        \
                     : [fi] "r"(df ? EFLAGS_DFBIT : 0)                         \
                     : "cc", "memory");                                        \
        tprintf("%s df%d: esi=%d edi=%d ecx=%x eax=%x f=0x%x dst=%x\n", label, df, \
                (int)(S - (u32)sbuf), (int)(D - (u32)dbuf), C, A, F & (fmask), sum(dbuf)); \
    } while (0)
#define EFLAGS_DFBIT 0x400

static void test_strings(void)
{
    for (int df = 0; df < 2; df++) {
        u32 at = df ? 40 : 8, cnt = 5, acc = 0x11223344;
        STR("movsb", "movsb", 0);
        STR("movsw", "movsw", 0);
        STR("movsl", "movsl", 0);
        STR("rep movsb", "rep movsb", 0);
        STR("rep movsw", "rep movsw", 0);
        STR("rep movsl", "rep movsl", 0);
        STR("rep stosb", "rep stosb", 0);
        STR("rep stosw", "rep stosw", 0);
        STR("rep stosl", "rep stosl", 0);
        STR("lodsb", "lodsb", 0);
        STR("lodsw", "lodsw", 0);
        STR("lodsl", "lodsl", 0);
        STR("rep lodsb", "rep lodsb", 0);
        cnt = 0;
        STR("rep movsl c0", "rep movsl", 0);
        STR("repe cmpsb c0", "repe cmpsb", F_ALL);
        cnt = 10;
        STR("cmpsb", "cmpsb", F_ALL);
        STR("cmpsl", "cmpsl", F_ALL);
        STR("repe cmpsb", "repe cmpsb", F_ALL);
        STR("repne cmpsb", "repne cmpsb", F_ALL);
        STR("repe cmpsw", "repe cmpsw", F_ALL);
        /* make the buffers equal for a stretch so repe runs a while */
        acc = sbuf[at + (df ? -3 : 3)];
        STR("repne scasb", "repne scasb", F_ALL);
        STR("repe scasb", "repe scasb", F_ALL);
        acc = 0xe0e0e0e0 + (df ? 0x01010101 * 40 : 0x01010101 * 8);
        STR("repe scasl", "repe scasl", F_ALL);
        STR("scasw", "scasw", F_ALL);
    }
    /* repe cmps over equal data, stops on the difference */
    for (int df = 0; df < 2; df++) {
        for (int i = 0; i < 64; i++)
            sbuf[i] = dbuf[i] = (u8)i;
        sbuf[df ? 20 : 44] = 0xff;
        u32 S = (u32)sbuf + (df ? 40 : 24), D = (u32)dbuf + (df ? 40 : 24), C = 30, F;
        asm volatile("pushl %[fi]\n\tpopfl\n\trepe cmpsb\n\tpushfl\n\tpopl %[f]\n\tcld"
                     : "+S"(S), "+D"(D), "+c"(C), [f] "=&r"(F)
                     : [fi] "r"(df ? EFLAGS_DFBIT : 0)
                     : "cc", "memory");
        tprintf("repe cmpsb equal df%d: esi=%d ecx=%x f=0x%x\n", df, (int)(S - (u32)sbuf), C, F & F_ALL);
    }
}

void alu_more(void)
{
    test_bcd();
    test_bits();
    test_cc();
    test_moves();
    test_lea();
    test_strings();
}
