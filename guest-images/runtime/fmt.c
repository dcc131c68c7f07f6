/* tprintf: the formatter both the kernels and alu-native print through, so
 * that their outputs are byte-for-byte comparable. */
#include "fmt.h"

static void put_str(const char *s)
{
    while (*s)
        out_char(*s++);
}

static void put_num(unsigned v, unsigned base, int width, char pad, int neg)
{
    char buf[12];
    int n = 0;
    do {
        unsigned d = v % base;
        buf[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v);
    if (neg)
        width--;
    if (neg && pad == '0')
        out_char('-');
    while (width-- > n)
        out_char(pad);
    if (neg && pad != '0')
        out_char('-');
    while (n)
        out_char(buf[--n]);
}

void tvprintf(const char *fmt, va_list ap)
{
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            out_char(*fmt);
            continue;
        }
        char pad = ' ';
        int width = 0;
        fmt++;
        if (*fmt == '0')
            pad = '0', fmt++;
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        switch (*fmt) {
        case 's': put_str(va_arg(ap, const char *)); break;
        case 'c': out_char((char)va_arg(ap, int)); break;
        case 'u': put_num(va_arg(ap, unsigned), 10, width, pad, 0); break;
        case 'x': put_num(va_arg(ap, unsigned), 16, width, pad, 0); break;
        case 'd': {
            int v = va_arg(ap, int);
            put_num(v < 0 ? 0u - (unsigned)v : (unsigned)v, 10, width, pad, v < 0);
            break;
        }
        case '%': out_char('%'); break;
        default: out_char('?'); break;
        }
    }
}

void tprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tvprintf(fmt, ap);
    va_end(ap);
}
