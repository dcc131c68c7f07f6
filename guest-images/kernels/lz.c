/* lz: CPU-bound benchmark. An LZ77 compressor (LZSS-style: 3-byte hash,
 * hash chains searched up to CHAIN deep in a 64 KiB window, matches of
 * 3..258 bytes) compresses a 1 MiB generated text (words drawn from a
 * small vocabulary, so it compresses), then decompresses it. Checks the
 * round trip (same length, same bytes), a hand-made stream with an
 * overlapping match, and prints the compressed size and a checksum of the
 * compressed stream. The command line's scale=N (default 1) repeats the
 * compression and decompression N times; the output does not depend on it.
 *
 * Stream format: groups of 8 items, each group led by a flag byte (bit i,
 * LSB first, for item i: 0 = one literal byte, 1 = a match of 3 bytes:
 * distance-1 as u16 little-endian, then length-3). */
#include "rt.h"

#define INPUT (1u << 20)
#define WINDOW (1u << 16)
#define HASH_BITS 15
#define CHAIN 32
#define MIN_MATCH 3
#define MAX_MATCH 258

static u8 input[INPUT];
static u8 packed[INPUT + INPUT / 8 + 16];
static u8 output[INPUT];
static u32 head[1u << HASH_BITS]; /* last position + 1 with this hash, 0 = none */
static u32 prev[WINDOW];          /* previous position + 1 in the chain */

static u32 rng = 1;
static u32 next_rand(void)
{
    rng = rng * 1103515245u + 12345u;
    return rng >> 8;
}

/* Text: words from a 64-word vocabulary of 2..9 letters, spaces, and a
 * newline now and then. */
static void make_input(void)
{
    static u8 vocab[64][10];
    static u32 vlen[64];
    rng = 1;
    for (u32 w = 0; w < 64; w++) {
        vlen[w] = 2 + next_rand() % 8;
        for (u32 i = 0; i < vlen[w]; i++)
            vocab[w][i] = (u8)('a' + next_rand() % 26);
    }
    u32 n = 0;
    while (n < INPUT) {
        u32 r = next_rand(), w = (r % 64) & (r >> 6 & 1 ? 63 : 15); /* skewed */
        for (u32 i = 0; i < vlen[w] && n < INPUT; i++)
            input[n++] = vocab[w][i];
        if (n < INPUT)
            input[n++] = (r >> 12) % 16 ? ' ' : '\n';
    }
}

static u32 hash3(const u8 *p) { return ((p[0] << 10) ^ (p[1] << 5) ^ p[2]) & ((1u << HASH_BITS) - 1); }

static void insert(const u8 *in, u32 pos)
{
    u32 h = hash3(in + pos);
    prev[pos & (WINDOW - 1)] = head[h];
    head[h] = pos + 1;
}

static u32 compress(const u8 *in, u32 n, u8 *out)
{
    for (u32 i = 0; i < (1u << HASH_BITS); i++)
        head[i] = 0;
    u32 o = 0, pos = 0, flag_at = 0, item = 8;
    while (pos < n) {
        if (item == 8) {
            flag_at = o++;
            out[flag_at] = 0;
            item = 0;
        }
        u32 best_len = 0, best_dist = 0;
        if (pos + MIN_MATCH <= n) {
            u32 limit = n - pos < MAX_MATCH ? n - pos : MAX_MATCH;
            u32 cand = head[hash3(in + pos)];
            for (u32 depth = 0; cand && depth < CHAIN; depth++) {
                u32 c = cand - 1;
                if (pos - c > WINDOW)
                    break;
                u32 len = 0;
                while (len < limit && in[c + len] == in[pos + len])
                    len++;
                if (len > best_len) {
                    best_len = len;
                    best_dist = pos - c;
                    if (len == limit)
                        break;
                }
                cand = prev[c & (WINDOW - 1)];
            }
        }
        if (best_len >= MIN_MATCH) {
            out[flag_at] |= (u8)(1u << item);
            out[o++] = (u8)(best_dist - 1);
            out[o++] = (u8)((best_dist - 1) >> 8);
            out[o++] = (u8)(best_len - MIN_MATCH);
            for (u32 k = 0; k < best_len; k++, pos++)
                if (pos + MIN_MATCH <= n)
                    insert(in, pos);
        } else {
            out[o++] = in[pos];
            if (pos + MIN_MATCH <= n)
                insert(in, pos);
            pos++;
        }
        item++;
    }
    return o;
}

/* Returns the decompressed length, or 0xffffffff on a malformed stream. */
static u32 decompress(const u8 *in, u32 n, u8 *out, u32 cap)
{
    u32 i = 0, o = 0;
    while (i < n) {
        u32 flags = in[i++];
        for (u32 item = 0; item < 8 && i < n; item++) {
            if (!(flags >> item & 1)) {
                if (o >= cap)
                    return 0xffffffff;
                out[o++] = in[i++];
                continue;
            }
            if (i + 3 > n)
                return 0xffffffff;
            u32 dist = (in[i] | in[i + 1] << 8) + 1, len = in[i + 2] + MIN_MATCH;
            i += 3;
            if (dist > o || len > cap - o)
                return 0xffffffff;
            for (u32 k = 0; k < len; k++, o++)
                out[o] = out[o - dist];
        }
    }
    return o;
}

static u32 fnv(const u8 *p, u32 n)
{
    u32 h = 0x811c9dc5;
    for (u32 i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x01000193;
    return h;
}

/* "ab" then a match at distance 2, length 7 (overlapping): "ababababa". */
static void check_handmade(void)
{
    static const u8 stream[] = { 0x04, 'a', 'b', 0x01, 0x00, 7 - MIN_MATCH };
    u8 out[16];
    u32 n = decompress(stream, sizeof(stream), out, sizeof(out));
    check("lz_handmade_len", n, 9);
    check("lz_handmade_fnv", fnv(out, n < 16 ? n : 0), fnv((const u8 *)"ababababa", 9));
}

void kmain(u32 magic, u32 mbi)
{
    check_handmade();
    make_input();
    u32 csize = 0, dsize = 0, scale = cmdline_uint(mbi, "scale", 1);
    for (u32 rep = 0; rep < scale; rep++) {
        csize = compress(input, INPUT, packed);
        dsize = decompress(packed, csize, output, INPUT);
    }
    u32 diff = 0;
    for (u32 i = 0; i < INPUT; i++)
        diff += input[i] != output[i];
    kv("lz_input_fnv", fnv(input, INPUT));
    kv_dec("lz_compressed_size", csize);
    kv("lz_compressed_fnv", fnv(packed, csize));
    check("lz_smaller", csize < INPUT / 2, 1);
    check("lz_roundtrip_len", dsize, INPUT);
    check("lz_roundtrip_bytes_differing", diff, 0);
}
