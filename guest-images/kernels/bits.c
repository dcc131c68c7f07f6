/* bits: CPU-bound benchmark. Byte and bit-field manipulation, the code
 * that makes a compiler use the byte registers (stores from AH-DH,
 * MOVZX from them), shifts and masks:
 *
 *   aes      AES-128 (FIPS-197) with its S-box computed at start
 *            (inverses in GF(2^8) from log tables, the affine map): a
 *            byte-wise implementation (a 16-byte state, xtime) encrypts
 *            and decrypts a buffer; a 32-bit T-table implementation
 *            (words indexed by their bytes) encrypts it again. The FIPS-197
 *            C.1 vector, the round trip and the two implementations'
 *            agreement are checked
 *   planes   32-bit words split into four byte planes (one byte of each
 *            word per array), each plane delta-coded and the words packed
 *            back from the planes; round trip checked
 *   crc16    CRC-16/CCITT-FALSE by a 256-entry table (one lookup per
 *            byte) and bit by bit; "123456789" gives 0x29b1, both agree
 *   headers  IPv4 headers as C bit-fields built from random values,
 *            written to bytes in network order, their ones'-complement
 *            checksum filled in, parsed back into bit-fields; the round
 *            trip and a zero checksum over every header checked
 *   insns    RISC-V-like instruction words encoded and decoded through
 *            a struct of bit-fields (a signed 12-bit immediate) and with
 *            shifts and masks; both agree
 *   popcount population count by SWAR shifts and masks and by a byte
 *            table, bit reversal by mask swaps and by a byte table,
 *            parity, byte swaps of 32- and 16-bit values by shifts and
 *            through bytes; each pair agrees
 *
 * The command line's scale=N (default 1) repeats the work N times; the
 * output does not depend on it. */
#include "rt.h"

static inline u32 opaque(u32 x)
{
    asm volatile("" : "+r"(x));
    return x;
}

static u32 mix(u32 h, u32 v)
{
    return (h ^ v) * 0x01000193;
}

static u32 fnv(const void *p, u32 n)
{
    const u8 *b = p;
    u32 h = 0x811c9dc5;
    for (u32 i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x01000193;
    return h;
}

static u32 rng;

static u32 next(void)
{
    u32 x = rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return rng = x;
}

static u32 mismatches;

static void expect(int ok)
{
    mismatches += !ok;
}

/* ---- AES-128 ---- */

static u8 sbox[256], inv_sbox[256];
static u8 gf_log[256], gf_exp[512];
static u32 te[4][256]; /* encryption T-tables */

static u8 rotl8(u8 x, u32 n)
{
    return (u8)((x << n) | (x >> (8 - n)));
}

static u8 xtime(u8 x)
{
    return (u8)((x << 1) ^ ((x >> 7) * 0x1b));
}

static u8 gmul(u8 a, u8 b)
{
    if (!a || !b)
        return 0;
    return gf_exp[gf_log[a] + gf_log[b]];
}

static void aes_tables(void)
{
    u8 x = 1;
    for (u32 i = 0; i < 255; i++) { /* 3 generates GF(2^8)* */
        gf_exp[i] = gf_exp[i + 255] = x;
        gf_log[x] = (u8)i;
        x ^= xtime(x);
    }
    for (u32 i = 0; i < 256; i++) {
        u8 inv = i ? gf_exp[255 - gf_log[i]] : 0;
        u8 s = inv ^ rotl8(inv, 1) ^ rotl8(inv, 2) ^ rotl8(inv, 3) ^ rotl8(inv, 4) ^ 0x63;
        sbox[i] = s;
        inv_sbox[s] = (u8)i;
    }
    for (u32 i = 0; i < 256; i++) {
        u8 s = sbox[i], s2 = xtime(s), s3 = s2 ^ s;
        /* column (2s, s, s, 3s) as a little-endian word: byte 0 is row 0 */
        u32 t = (u32)s2 | (u32)s << 8 | (u32)s << 16 | (u32)s3 << 24;
        te[0][i] = t;
        te[1][i] = t << 8 | t >> 24;
        te[2][i] = t << 16 | t >> 16;
        te[3][i] = t << 24 | t >> 8;
    }
}

static u8 round_keys[176];

static void key_expand(const u8 key[16])
{
    u8 rcon = 1;
    for (u32 i = 0; i < 16; i++)
        round_keys[i] = key[i];
    for (u32 i = 16; i < 176; i += 4) {
        u8 t0 = round_keys[i - 4], t1 = round_keys[i - 3], t2 = round_keys[i - 2], t3 = round_keys[i - 1];
        if (i % 16 == 0) {
            u8 r = t0;
            t0 = sbox[t1] ^ rcon;
            t1 = sbox[t2];
            t2 = sbox[t3];
            t3 = sbox[r];
            rcon = xtime(rcon);
        }
        round_keys[i] = round_keys[i - 16] ^ t0;
        round_keys[i + 1] = round_keys[i - 15] ^ t1;
        round_keys[i + 2] = round_keys[i - 14] ^ t2;
        round_keys[i + 3] = round_keys[i - 13] ^ t3;
    }
}

static void add_round_key(u8 *s, u32 round)
{
    const u8 *k = round_keys + 16 * round;
    for (u32 i = 0; i < 16; i++)
        s[i] ^= k[i];
}

/* The state is column-major as in FIPS-197: s[4 * c + r]. */
static void sub_shift(u8 *s, const u8 *box, u32 inverse)
{
    u8 t[16];
    for (u32 c = 0; c < 4; c++)
        for (u32 r = 0; r < 4; r++) {
            u32 from = inverse ? (c + 4 - r) % 4 : (c + r) % 4;
            t[4 * c + r] = box[s[4 * from + r]];
        }
    for (u32 i = 0; i < 16; i++)
        s[i] = t[i];
}

static void mix_columns(u8 *s)
{
    for (u32 c = 0; c < 4; c++) {
        u8 *p = s + 4 * c;
        u8 a0 = p[0], a1 = p[1], a2 = p[2], a3 = p[3], all = a0 ^ a1 ^ a2 ^ a3;
        p[0] = a0 ^ all ^ xtime(a0 ^ a1);
        p[1] = a1 ^ all ^ xtime(a1 ^ a2);
        p[2] = a2 ^ all ^ xtime(a2 ^ a3);
        p[3] = a3 ^ all ^ xtime(a3 ^ a0);
    }
}

static void inv_mix_columns(u8 *s)
{
    for (u32 c = 0; c < 4; c++) {
        u8 *p = s + 4 * c;
        u8 a0 = p[0], a1 = p[1], a2 = p[2], a3 = p[3];
        p[0] = gmul(a0, 14) ^ gmul(a1, 11) ^ gmul(a2, 13) ^ gmul(a3, 9);
        p[1] = gmul(a0, 9) ^ gmul(a1, 14) ^ gmul(a2, 11) ^ gmul(a3, 13);
        p[2] = gmul(a0, 13) ^ gmul(a1, 9) ^ gmul(a2, 14) ^ gmul(a3, 11);
        p[3] = gmul(a0, 11) ^ gmul(a1, 13) ^ gmul(a2, 9) ^ gmul(a3, 14);
    }
}

static void aes_encrypt_bytes(u8 *s)
{
    add_round_key(s, 0);
    for (u32 round = 1; round < 10; round++) {
        sub_shift(s, sbox, 0);
        mix_columns(s);
        add_round_key(s, round);
    }
    sub_shift(s, sbox, 0);
    add_round_key(s, 10);
}

static void aes_decrypt_bytes(u8 *s)
{
    add_round_key(s, 10);
    for (u32 round = 9; round > 0; round--) {
        sub_shift(s, inv_sbox, 1);
        add_round_key(s, round);
        inv_mix_columns(s);
    }
    sub_shift(s, inv_sbox, 1);
    add_round_key(s, 0);
}

static u32 load_le32(const u8 *p)
{
    return (u32)p[0] | (u32)p[1] << 8 | (u32)p[2] << 16 | (u32)p[3] << 24;
}

/* Splits a word into bytes: four byte stores. */
static void store_le32(u8 *p, u32 v)
{
    p[0] = (u8)v;
    p[1] = (u8)(v >> 8);
    p[2] = (u8)(v >> 16);
    p[3] = (u8)(v >> 24);
}

/* The same cipher on 32-bit columns: each round, each output column is
 * four T-table words chosen by one byte of four input columns. */
static void aes_encrypt_words(const u8 *in, u8 *out)
{
    const u8 *k = round_keys;
    u32 c0 = load_le32(in) ^ load_le32(k), c1 = load_le32(in + 4) ^ load_le32(k + 4);
    u32 c2 = load_le32(in + 8) ^ load_le32(k + 8), c3 = load_le32(in + 12) ^ load_le32(k + 12);
    for (u32 round = 1; round < 10; round++) {
        k += 16;
        u32 n0 = te[0][c0 & 0xff] ^ te[1][(c1 >> 8) & 0xff] ^ te[2][(c2 >> 16) & 0xff] ^ te[3][c3 >> 24];
        u32 n1 = te[0][c1 & 0xff] ^ te[1][(c2 >> 8) & 0xff] ^ te[2][(c3 >> 16) & 0xff] ^ te[3][c0 >> 24];
        u32 n2 = te[0][c2 & 0xff] ^ te[1][(c3 >> 8) & 0xff] ^ te[2][(c0 >> 16) & 0xff] ^ te[3][c1 >> 24];
        u32 n3 = te[0][c3 & 0xff] ^ te[1][(c0 >> 8) & 0xff] ^ te[2][(c1 >> 16) & 0xff] ^ te[3][c2 >> 24];
        c0 = n0 ^ load_le32(k);
        c1 = n1 ^ load_le32(k + 4);
        c2 = n2 ^ load_le32(k + 8);
        c3 = n3 ^ load_le32(k + 12);
    }
    k += 16;
    u32 c[4] = { c0, c1, c2, c3 };
    for (u32 col = 0; col < 4; col++) {
        out[4 * col] = sbox[c[col] & 0xff] ^ k[4 * col];
        out[4 * col + 1] = sbox[(c[(col + 1) % 4] >> 8) & 0xff] ^ k[4 * col + 1];
        out[4 * col + 2] = sbox[(c[(col + 2) % 4] >> 16) & 0xff] ^ k[4 * col + 2];
        out[4 * col + 3] = sbox[c[(col + 3) % 4] >> 24] ^ k[4 * col + 3];
    }
}

#define AES_BYTES (8 * 1024)
static u8 plain[AES_BYTES], cipher[AES_BYTES], cipher2[AES_BYTES], back[AES_BYTES];

static u32 aes_fips_vector(void)
{
    static const u8 key[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
    static const u8 want[16] = { 0x69, 0xc4, 0xe0, 0xd8, 0x6a, 0x7b, 0x04, 0x30,
                                 0xd8, 0xcd, 0xb7, 0x80, 0x70, 0xb4, 0xc5, 0x5a };
    u8 s[16], w[16];
    for (u32 i = 0; i < 16; i++)
        s[i] = (u8)(i * 0x11);
    key_expand(key);
    aes_encrypt_words(s, w);
    aes_encrypt_bytes(s);
    u32 bad = 0;
    for (u32 i = 0; i < 16; i++)
        bad += (s[i] != want[i]) + (w[i] != want[i]);
    aes_decrypt_bytes(s);
    for (u32 i = 0; i < 16; i++)
        bad += s[i] != (u8)(i * 0x11);
    return bad;
}

static u32 aes_buffer(void)
{
    u8 key[16];
    for (u32 i = 0; i < 16; i++)
        key[i] = (u8)next();
    key_expand(key);
    for (u32 i = 0; i < AES_BYTES; i++)
        plain[i] = (u8)(next() >> 7);
    /* CBC-style chaining, so every block depends on the one before */
    u8 iv[16];
    for (u32 i = 0; i < 16; i++)
        iv[i] = (u8)i;
    for (u32 b = 0; b < AES_BYTES; b += 16) {
        u8 *s = cipher + b, *prev = b ? cipher + b - 16 : iv;
        for (u32 i = 0; i < 16; i++)
            s[i] = plain[b + i] ^ prev[i];
        aes_encrypt_words(s, cipher2 + b);
        aes_encrypt_bytes(s);
    }
    for (u32 b = 0; b < AES_BYTES; b += 16) {
        const u8 *prev = b ? cipher + b - 16 : iv;
        u8 s[16];
        for (u32 i = 0; i < 16; i++)
            s[i] = cipher[b + i];
        aes_decrypt_bytes(s);
        for (u32 i = 0; i < 16; i++)
            back[b + i] = s[i] ^ prev[i];
    }
    u32 bad = 0;
    for (u32 i = 0; i < AES_BYTES; i++)
        bad += (back[i] != plain[i]) + (cipher2[i] != cipher[i]);
    expect(bad == 0);
    return fnv(cipher, AES_BYTES);
}

/* ---- byte planes ---- */

#define WORDS (32 * 1024)
static u32 words[WORDS], packed[WORDS];
static u8 plane0[WORDS], plane1[WORDS], plane2[WORDS], plane3[WORDS];

static void split_planes(void)
{
    for (u32 i = 0; i < WORDS; i++) {
        u32 w = words[i];
        plane0[i] = (u8)w;
        plane1[i] = (u8)(w >> 8);
        plane2[i] = (u8)(w >> 16);
        plane3[i] = (u8)(w >> 24);
    }
}

static void delta(u8 *p, u32 n)
{
    u8 prev = 0;
    for (u32 i = 0; i < n; i++) {
        u8 c = p[i];
        p[i] = (u8)(c - prev);
        prev = c;
    }
}

static void undelta(u8 *p, u32 n)
{
    u8 prev = 0;
    for (u32 i = 0; i < n; i++)
        p[i] = prev = (u8)(prev + p[i]);
}

static void pack_planes(void)
{
    for (u32 i = 0; i < WORDS; i++)
        packed[i] = (u32)plane0[i] | (u32)plane1[i] << 8 | (u32)plane2[i] << 16 | (u32)plane3[i] << 24;
}

static u32 planes(void)
{
    /* slowly varying samples in the low half, noise above */
    u32 a = 0;
    for (u32 i = 0; i < WORDS; i++) {
        a += next() & 0x3ff;
        words[i] = (a & 0xffff) | (next() & 0xff0f0000u);
    }
    split_planes();
    delta(plane0, WORDS);
    delta(plane1, WORDS);
    delta(plane2, WORDS);
    delta(plane3, WORDS);
    u32 h = mix(mix(fnv(plane0, WORDS), fnv(plane1, WORDS)), mix(fnv(plane2, WORDS), fnv(plane3, WORDS)));
    undelta(plane0, WORDS);
    undelta(plane1, WORDS);
    undelta(plane2, WORDS);
    undelta(plane3, WORDS);
    pack_planes();
    u32 bad = 0;
    for (u32 i = 0; i < WORDS; i++)
        bad += packed[i] != words[i];
    expect(bad == 0);
    return h;
}

/* ---- CRC-16/CCITT-FALSE ---- */

static u16 crc16_table[256];

static void crc16_init(void)
{
    for (u32 i = 0; i < 256; i++) {
        u16 c = (u16)(i << 8);
        for (u32 k = 0; k < 8; k++)
            c = (c & 0x8000) ? (u16)((c << 1) ^ 0x1021) : (u16)(c << 1);
        crc16_table[i] = c;
    }
}

static u16 crc16_bytes(const u8 *p, u32 n)
{
    u16 c = 0xffff;
    for (u32 i = 0; i < n; i++)
        c = (u16)((c << 8) ^ crc16_table[(c >> 8) ^ p[i]]);
    return c;
}

static u16 crc16_bits(const u8 *p, u32 n)
{
    u16 c = 0xffff;
    for (u32 i = 0; i < n; i++) {
        c ^= (u16)(p[i] << 8);
        for (u32 k = 0; k < 8; k++)
            c = (c & 0x8000) ? (u16)((c << 1) ^ 0x1021) : (u16)(c << 1);
    }
    return c;
}

/* ---- IPv4 headers as bit-fields ---- */

struct ipv4 {
    u32 ihl : 4, version : 4, ecn : 2, dscp : 6, total_len : 16;
    u32 id : 16, frag_off : 13, flags : 3;
    u32 ttl : 8, proto : 8, csum : 16;
    u32 src, dst;
};

#define HEADERS 2048
static struct ipv4 hdrs[HEADERS], parsed[HEADERS];
static u8 wire[HEADERS][20];

static void put_be16(u8 *p, u32 v)
{
    p[0] = (u8)(v >> 8);
    p[1] = (u8)v;
}

static u32 get_be16(const u8 *p)
{
    return (u32)p[0] << 8 | p[1];
}

static void put_be32(u8 *p, u32 v)
{
    p[0] = (u8)(v >> 24);
    p[1] = (u8)(v >> 16);
    p[2] = (u8)(v >> 8);
    p[3] = (u8)v;
}

static u32 get_be32(const u8 *p)
{
    return (u32)p[0] << 24 | (u32)p[1] << 16 | (u32)p[2] << 8 | p[3];
}

static u32 ip_sum(const u8 *p, u32 n)
{
    u32 s = 0;
    for (u32 i = 0; i < n; i += 2)
        s += get_be16(p + i);
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return ~s & 0xffff;
}

static void serialize(const struct ipv4 *h, u8 *p)
{
    p[0] = (u8)(h->version << 4 | h->ihl);
    p[1] = (u8)(h->dscp << 2 | h->ecn);
    put_be16(p + 2, h->total_len);
    put_be16(p + 4, h->id);
    put_be16(p + 6, h->flags << 13 | h->frag_off);
    p[8] = (u8)h->ttl;
    p[9] = (u8)h->proto;
    put_be16(p + 10, h->csum);
    put_be32(p + 12, h->src);
    put_be32(p + 16, h->dst);
}

static void parse(const u8 *p, struct ipv4 *h)
{
    h->version = p[0] >> 4;
    h->ihl = p[0] & 15;
    h->dscp = p[1] >> 2;
    h->ecn = p[1] & 3;
    h->total_len = get_be16(p + 2);
    h->id = get_be16(p + 4);
    u32 f = get_be16(p + 6);
    h->flags = f >> 13;
    h->frag_off = f & 0x1fff;
    h->ttl = p[8];
    h->proto = p[9];
    h->csum = get_be16(p + 10);
    h->src = get_be32(p + 12);
    h->dst = get_be32(p + 16);
}

static u32 headers(void)
{
    for (u32 i = 0; i < HEADERS; i++) {
        struct ipv4 *h = &hdrs[i];
        u32 r = next();
        h->version = 4;
        h->ihl = 5;
        h->dscp = r;
        h->ecn = r >> 6;
        h->total_len = 20 + (r >> 8) % 1480;
        h->id = next();
        r = next();
        h->flags = r & 2;
        h->frag_off = r >> 3;
        h->ttl = 1 + (r >> 16) % 255;
        h->proto = (r & 0x100) ? 6 : 17;
        h->csum = 0;
        h->src = next();
        h->dst = next();
    }
    u32 h = 0x811c9dc5, bad = 0;
    for (u32 i = 0; i < HEADERS; i++) {
        serialize(&hdrs[i], wire[i]);
        hdrs[i].csum = ip_sum(wire[i], 20);
        put_be16(wire[i] + 10, hdrs[i].csum);
        bad += ip_sum(wire[i], 20) != 0;
        parse(wire[i], &parsed[i]);
        /* a router's rewrite: TTL down by one, the checksum updated */
        struct ipv4 *q = &parsed[i];
        q->ttl--;
        serialize(q, wire[i]);
        put_be16(wire[i] + 10, 0);
        q->csum = ip_sum(wire[i], 20);
        put_be16(wire[i] + 10, q->csum);
        bad += ip_sum(wire[i], 20) != 0;
        bad += q->ttl + 1 != hdrs[i].ttl || q->flags != hdrs[i].flags || q->frag_off != hdrs[i].frag_off ||
               q->dscp != hdrs[i].dscp || q->ecn != hdrs[i].ecn || q->total_len != hdrs[i].total_len ||
               q->id != hdrs[i].id || q->src != hdrs[i].src || q->dst != hdrs[i].dst || q->version != 4 || q->ihl != 5;
        h = mix(h, fnv(wire[i], 20));
    }
    expect(bad == 0);
    return h;
}

/* ---- instruction words: bit-fields against shifts and masks ---- */

struct itype {
    u32 opcode : 7, rd : 5, funct3 : 3, rs1 : 5;
    s32 imm : 12;
};
union iword {
    struct itype f;
    u32 w;
};

#define INSNS 30000

static u32 insns(void)
{
    u32 h = 0x811c9dc5, bad = 0;
    for (u32 i = 0; i < INSNS; i++) {
        u32 r = next();
        union iword u;
        u.w = 0;
        u.f.opcode = r;
        u.f.rd = r >> 7;
        u.f.funct3 = r >> 12;
        u.f.rs1 = r >> 15;
        u.f.imm = (s32)r >> 20;
        bad += u.w != r;
        /* decode with shifts and masks, modify through the fields */
        s32 imm = (s32)r >> 20;
        u32 rd = (r >> 7) & 31, rs1 = (r >> 15) & 31;
        bad += u.f.imm != imm || u.f.rd != rd || u.f.rs1 != rs1 || u.f.funct3 != ((r >> 12) & 7);
        u.f.imm += 5;
        u.f.rd = u.f.rs1;
        u.f.funct3 ^= 5;
        u32 want = (r & 0x7f) | rs1 << 7 | (((r >> 12) & 7) ^ 5) << 12 | rs1 << 15 | (u32)(imm + 5) << 20;
        bad += u.w != want;
        h = mix(h, u.w);
    }
    expect(bad == 0);
    return h;
}

/* ---- popcount, bit reversal, parity, byte swaps ---- */

static u8 pop8[256], rev8[256];

static void bit_tables(void)
{
    for (u32 i = 0; i < 256; i++) {
        u32 n = 0, r = 0;
        for (u32 k = 0; k < 8; k++) {
            n += (i >> k) & 1;
            r |= ((i >> k) & 1) << (7 - k);
        }
        pop8[i] = (u8)n;
        rev8[i] = (u8)r;
    }
}

static u32 pop_swar(u32 x)
{
    x = x - ((x >> 1) & 0x55555555);
    x = (x & 0x33333333) + ((x >> 2) & 0x33333333);
    x = (x + (x >> 4)) & 0x0f0f0f0f;
    return (x * 0x01010101) >> 24;
}

static u32 pop_table(u32 x)
{
    return pop8[x & 0xff] + pop8[(x >> 8) & 0xff] + pop8[(x >> 16) & 0xff] + pop8[x >> 24];
}

static u32 rev_swar(u32 x)
{
    x = ((x >> 1) & 0x55555555) | ((x & 0x55555555) << 1);
    x = ((x >> 2) & 0x33333333) | ((x & 0x33333333) << 2);
    x = ((x >> 4) & 0x0f0f0f0f) | ((x & 0x0f0f0f0f) << 4);
    x = ((x >> 8) & 0x00ff00ff) | ((x & 0x00ff00ff) << 8);
    return (x >> 16) | (x << 16);
}

static u32 rev_table(u32 x)
{
    u8 b[4];
    store_le32(b, x);
    return (u32)rev8[b[3]] | (u32)rev8[b[2]] << 8 | (u32)rev8[b[1]] << 16 | (u32)rev8[b[0]] << 24;
}

static u32 parity(u32 x)
{
    x ^= x >> 16;
    x ^= x >> 8;
    x ^= x >> 4;
    return (0x6996 >> (x & 15)) & 1;
}

static u32 bswap_shifts(u32 x)
{
    return (x >> 24) | ((x >> 8) & 0xff00) | ((x << 8) & 0xff0000) | (x << 24);
}

static u16 bswap16(u16 x)
{
    return (u16)((x >> 8) | (x << 8));
}

#define BITWORDS 60000

static u32 bit_ops(void)
{
    u32 hp = 0, hr = 0, hb = 0, bad = 0;
    for (u32 i = 0; i < BITWORDS; i++) {
        u32 x = next() & (next() | 0x01010101u); /* sparser */
        u32 p = pop_swar(x), r = rev_swar(x), b = bswap_shifts(x);
        bad += p != pop_table(x);
        bad += r != rev_table(x);
        bad += parity(x) != (p & 1);
        bad += rev_swar(r) != x;
        u8 bytes[4];
        store_le32(bytes, x);
        bad += b != ((u32)bytes[3] | (u32)bytes[2] << 8 | (u32)bytes[1] << 16 | (u32)bytes[0] << 24);
        u16 lo = bswap16((u16)x), hi = bswap16((u16)(x >> 16));
        bad += ((u32)lo << 16 | hi) != b;
        hp = hp * 33 + p;
        hr = mix(hr, r);
        hb = mix(hb, b ^ lo);
    }
    expect(bad == 0);
    return mix(mix(hp, hr), hb);
}

/* Each part runs ROUNDS times on fresh random input; the bit-by-bit CRC
 * only over the first CRC_BITS_BYTES of a plane. */
#define ROUNDS 24
#define CRC_BITS_BYTES 4096

void kmain(u32 magic, u32 mbi)
{
    u32 scale = cmdline_uint(mbi, "scale", 1);
    aes_tables();
    crc16_init();
    bit_tables();
    check("bits_aes_fips197", aes_fips_vector(), 0);
    kv("bits_sbox", fnv(sbox, 256));
    check("bits_sbox_0x53", sbox[0x53], 0xed);
    check("bits_crc16_check", crc16_bytes((const u8 *)"123456789", 9), 0x29b1);
    u32 h_aes = 0, h_planes = 0, h_crc = 0, h_hdr = 0, h_insn = 0, h_bits = 0;
    for (u32 rep = 0; rep < scale; rep++) {
        h_aes = h_planes = h_crc = h_hdr = h_insn = h_bits = 0x811c9dc5;
        for (u32 round = 0; round < ROUNDS; round++) {
            rng = opaque(0x6b8b4567 + round * 0x9e3779b9u);
            h_aes = mix(h_aes, aes_buffer());
            h_planes = mix(h_planes, planes());
            u16 c1 = crc16_bytes(plane1, WORDS), c2 = crc16_bytes((const u8 *)words, sizeof(words));
            expect(crc16_bytes(plane3, CRC_BITS_BYTES) == crc16_bits(plane3, CRC_BITS_BYTES));
            h_crc = mix(h_crc, (u32)c1 << 16 | c2);
            h_hdr = mix(h_hdr, headers());
            h_insn = mix(h_insn, insns());
            h_bits = mix(h_bits, bit_ops());
        }
    }
    kv("bits_aes", h_aes);
    kv("bits_planes", h_planes);
    kv("bits_crc16", h_crc);
    kv("bits_headers", h_hdr);
    kv("bits_insns", h_insn);
    kv("bits_popcount_reverse_bswap", h_bits);
    check("bits_results_checked", mismatches, 0);
}
