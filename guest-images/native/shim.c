/* The native workload shim: the runtime calls a workload kernel makes
 * (kv, kv_dec, check, cmdline_uint, and out_char under fmt.c's tprintf),
 * for a static i386 Linux program with no libc. The workload's object file
 * is the kernel's own build/NAME.o, byte for byte, so the work runs the same
 * object code natively as under a VM.
 *
 *   NAME-native scale=N     same as the kernel with -append scale=N
 *
 * stdout is what the kernel prints on COM1 (written with write(2));
 * the exit status is 0 if every check() passed, 1 otherwise (the kernel's
 * port-0xF4 value). */
#include "rt.h"

#define SYS_EXIT 1
#define SYS_WRITE 4

int rt_failures;

static char **args; /* argv[1..], NULL-terminated */
static char obuf[4096];
static u32 used;

static int sys_write(int fd, const void *p, u32 n)
{
    int r;
    asm volatile("int $0x80" : "=a"(r) : "a"(SYS_WRITE), "b"(fd), "c"(p), "d"(n) : "memory");
    return r;
}

static void __attribute__((noreturn)) sys_exit(int code)
{
    for (;;)
        asm volatile("int $0x80" ::"a"(SYS_EXIT), "b"(code));
}

static void flush(void)
{
    u32 off = 0;
    while (off < used) {
        int n = sys_write(1, obuf + off, used - off);
        if (n <= 0)
            sys_exit(2);
        off += (u32)n;
    }
    used = 0;
}

void out_char(char c)
{
    obuf[used++] = c;
    if (used == sizeof(obuf))
        flush();
}

void check(const char *name, u32 got, u32 expected)
{
    if (got == expected) {
        tprintf("%s: ok\n", name);
    } else {
        rt_failures++;
        tprintf("%s: FAIL got 0x%x expected 0x%x\n", name, got, expected);
    }
}

void kv(const char *name, u32 value) { tprintf("%s: 0x%x\n", name, value); }
void kv_dec(const char *name, u32 value) { tprintf("%s: %u\n", name, value); }

/* "key=N" among the arguments, parsed as rt.c parses the Multiboot
 * command line (each argument is one word); mbi is ignored. */
u32 cmdline_uint(u32 mbi, const char *key, u32 dflt)
{
    for (char **a = args; *a; a++) {
        const char *k = key, *w = *a;
        while (*k && *w == *k) {
            k++;
            w++;
        }
        if (!*k && *w == '=' && w[1] >= '0' && w[1] <= '9') {
            u32 v = 0;
            for (w++; *w >= '0' && *w <= '9'; w++)
                v = v * 10 + (u32)(*w - '0');
            return v;
        }
    }
    return dflt;
}

void native_main(u32 *sp) __attribute__((noreturn));
void native_main(u32 *sp)
{
    args = (char **)(sp + 2); /* sp[0] = argc, sp[1] = argv[0] */
    kmain(0x2badb002, 0);
    flush();
    sys_exit(rt_failures ? EXIT_FAIL : EXIT_PASS);
}
