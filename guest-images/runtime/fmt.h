/* A tiny printf shared by the guest runtime and the native ALU build.
 * The caller supplies out_char(); tprintf knows %s %c %d %u %x %X with
 * an optional '0' flag and width, and %%. */
#ifndef BT86_FMT_H
#define BT86_FMT_H
#include <stdarg.h>
void out_char(char c);
void tvprintf(const char *fmt, va_list ap);
void tprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#endif
