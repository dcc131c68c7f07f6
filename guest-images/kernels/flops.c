/* flops: CPU-bound benchmark in `double`, compiled to x87 code
 * (X87_ARCHFLAGS: -m80387 -mfpmath=387, no SSE), as C with floating point
 * compiles for an i686 target. Three classic kernels:
 *
 *   n-body     the five Jovian planets (the Computer Language Benchmarks
 *              Game's constants), STEPS steps of dt = 0.01: loads and
 *              stores of doubles, multiply-add chains, FSQRT, division
 *   spectral   the spectral norm of the infinite matrix A(i,j) =
 *              1/((i+j)(i+j+1)/2+i+1), N x N, ITERS power iterations:
 *              int -> double (FILD) and division in the inner loop
 *   mandelbrot escape counts over a W x H grid, at most MAXIT iterations:
 *              compares (FUCOMI), and double -> int conversions (C's
 *              truncation: FNSTCW/FLDCW/FISTP/FLDCW) of the escape point
 *
 * Only values that are exactly the same on every correct x87 are printed:
 * integers (counts, hashes of the conversions' results) and doubles
 * rounded to a fixed number of decimal digits by converting them to an
 * integer, the digits then printed in integer arithmetic. Everything runs
 * with the FNINIT control word (round to nearest, 64-bit precision), where
 * QEMU's soft-float and the real x87 agree on + - * / and FSQRT.
 *
 * The command line's scale=N (default 1) repeats the whole computation N
 * times (for benchmarks); the output does not depend on it. */
#include "rt.h"

#define STEPS 3000
#define N 100
#define ITERS 4
#define W 64
#define H 48
#define MAXIT 64

#define PI 3.141592653589793
#define SOLAR_MASS (4 * PI * PI)
#define DAYS_PER_YEAR 365.24
#define NBODIES 5

struct body {
    double x, y, z, vx, vy, vz, mass;
};

static const struct body initial[NBODIES] = {
    {0, 0, 0, 0, 0, 0, SOLAR_MASS},
    {4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01,
     1.66007664274403694e-03 * DAYS_PER_YEAR, 7.69901118419740425e-03 * DAYS_PER_YEAR,
     -6.90460016972063023e-05 * DAYS_PER_YEAR, 9.54791938424326609e-04 * SOLAR_MASS},
    {8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01,
     -2.76742510726862411e-03 * DAYS_PER_YEAR, 4.99852801234917238e-03 * DAYS_PER_YEAR,
     2.30417297573763929e-05 * DAYS_PER_YEAR, 2.85885980666130812e-04 * SOLAR_MASS},
    {1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01,
     2.96460137564761618e-03 * DAYS_PER_YEAR, 2.37847173959480950e-03 * DAYS_PER_YEAR,
     -2.96589568540237556e-05 * DAYS_PER_YEAR, 4.36624404335156298e-05 * SOLAR_MASS},
    {1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01,
     2.68067772490389322e-03 * DAYS_PER_YEAR, 1.62824170038242295e-03 * DAYS_PER_YEAR,
     -9.51592254519715870e-05 * DAYS_PER_YEAR, 5.15138902046611451e-05 * SOLAR_MASS},
};

static struct body bodies[NBODIES];

/* sqrt as the x87 does it (what <math.h>'s sqrt compiles to with
 * -fno-math-errno; this freestanding build has no libm). */
static inline double fsqrt(double x)
{
    double r;
    asm("fsqrt" : "=t"(r) : "0"(x));
    return r;
}

/* d rounded to the nearest multiple of 1e-digits, as an integer (C's
 * conversion truncates: add one half away from zero first). */
static s32 fixed(double d, double scale)
{
    double v = d * scale;
    return (s32)(v < 0 ? v - 0.5 : v + 0.5);
}

/* name: [-]I.FFFFFFFFF, from fixed(d, 1e9). */
static void kv_fixed9(const char *name, s32 n)
{
    u32 a = n < 0 ? 0u - (u32)n : (u32)n;
    tprintf("%s: %s%u.%09u\n", name, n < 0 ? "-" : "", a / 1000000000u, a % 1000000000u);
}

static void offset_momentum(void)
{
    double px = 0, py = 0, pz = 0;
    for (int i = 0; i < NBODIES; i++) {
        px += bodies[i].vx * bodies[i].mass;
        py += bodies[i].vy * bodies[i].mass;
        pz += bodies[i].vz * bodies[i].mass;
    }
    bodies[0].vx = -px / SOLAR_MASS;
    bodies[0].vy = -py / SOLAR_MASS;
    bodies[0].vz = -pz / SOLAR_MASS;
}

static double energy(void)
{
    double e = 0;
    for (int i = 0; i < NBODIES; i++) {
        struct body *b = &bodies[i];
        e += 0.5 * b->mass * (b->vx * b->vx + b->vy * b->vy + b->vz * b->vz);
        for (int j = i + 1; j < NBODIES; j++) {
            struct body *c = &bodies[j];
            double dx = b->x - c->x, dy = b->y - c->y, dz = b->z - c->z;
            e -= b->mass * c->mass / fsqrt(dx * dx + dy * dy + dz * dz);
        }
    }
    return e;
}

static void advance(double dt)
{
    for (int i = 0; i < NBODIES; i++) {
        struct body *b = &bodies[i];
        for (int j = i + 1; j < NBODIES; j++) {
            struct body *c = &bodies[j];
            double dx = b->x - c->x, dy = b->y - c->y, dz = b->z - c->z;
            double d2 = dx * dx + dy * dy + dz * dz;
            double mag = dt / (d2 * fsqrt(d2));
            b->vx -= dx * c->mass * mag;
            b->vy -= dy * c->mass * mag;
            b->vz -= dz * c->mass * mag;
            c->vx += dx * b->mass * mag;
            c->vy += dy * b->mass * mag;
            c->vz += dz * b->mass * mag;
        }
    }
    for (int i = 0; i < NBODIES; i++) {
        bodies[i].x += dt * bodies[i].vx;
        bodies[i].y += dt * bodies[i].vy;
        bodies[i].z += dt * bodies[i].vz;
    }
}

static void nbody(s32 *e0, s32 *e1)
{
    for (int i = 0; i < NBODIES; i++)
        bodies[i] = initial[i];
    offset_momentum();
    *e0 = fixed(energy(), 1e9);
    for (int s = 0; s < STEPS; s++)
        advance(0.01);
    *e1 = fixed(energy(), 1e9);
}

static double u[N], v[N], t[N];

static double a(int i, int j)
{
    return 1.0 / ((i + j) * (i + j + 1) / 2 + i + 1);
}

static void mul_av(const double *x, double *y)
{
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int j = 0; j < N; j++)
            s += a(i, j) * x[j];
        y[i] = s;
    }
}

static void mul_atv(const double *x, double *y)
{
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int j = 0; j < N; j++)
            s += a(j, i) * x[j];
        y[i] = s;
    }
}

static void mul_atav(const double *x, double *y)
{
    mul_av(x, t);
    mul_atv(t, y);
}

static s32 spectral(void)
{
    for (int i = 0; i < N; i++)
        u[i] = 1;
    for (int k = 0; k < ITERS; k++) {
        mul_atav(u, v);
        mul_atav(v, u);
    }
    double vbv = 0, vv = 0;
    for (int i = 0; i < N; i++) {
        vbv += u[i] * v[i];
        vv += v[i] * v[i];
    }
    return fixed(fsqrt(vbv / vv), 1e9);
}

/* Escape counts over [-2,1] x [-1,1]; the hash also takes the escape
 * point's coordinates, scaled and converted to int. */
static void mandelbrot(u32 *total, u32 *hash)
{
    u32 sum = 0, h = 0;
    for (int y = 0; y < H; y++) {
        double ci = -1.0 + 2.0 * y / H;
        for (int x = 0; x < W; x++) {
            double cr = -2.0 + 3.0 * x / W;
            double zr = 0, zi = 0;
            int n = 0;
            while (n < MAXIT && zr * zr + zi * zi <= 4.0) {
                double nzr = zr * zr - zi * zi + cr;
                zi = 2 * zr * zi + ci;
                zr = nzr;
                n++;
            }
            sum += (u32)n;
            h = h * 31 + (u32)n;
            if (n < MAXIT)
                h = h * 31 + (u32)(s32)(zr * 1000) + (u32)(s32)(zi * 1000);
        }
    }
    *total = sum;
    *hash = h;
}

void kmain(u32 magic, u32 mbi)
{
    u32 scale = cmdline_uint(mbi, "scale", 1);
    s32 e0 = 0, e1 = 0, sn = 0;
    u32 total = 0, hash = 0;
    /* The control word FNINIT sets (0x37F), under QEMU as on Linux. */
    asm volatile("fninit");
    /* scale=N (command line, default 1) repeats the work for benchmarks. */
    for (u32 rep = 0; rep < scale; rep++) {
        nbody(&e0, &e1);
        sn = spectral();
        mandelbrot(&total, &hash);
    }
    kv_fixed9("nbody_energy_start", e0);
    kv_fixed9("nbody_energy_end", e1);
    kv_fixed9("spectral_norm", sn);
    kv_dec("mandelbrot_iterations", total);
    kv("mandelbrot_hash", hash);
}
