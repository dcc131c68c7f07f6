/* alu-native: the ALU test core as a static i386 Linux program. Its stdout
 * must equal the alu kernel's serial output: the real CPU is the oracle. */
#include <unistd.h>
#include "alu_core.h"
#include "fmt.h"

static char buf[4096];
static unsigned used;

static void flush(void)
{
    unsigned off = 0;
    while (off < used) {
        ssize_t n = write(1, buf + off, used - off);
        if (n <= 0)
            _exit(2);
        off += (unsigned)n;
    }
    used = 0;
}

void out_char(char c)
{
    buf[used++] = c;
    if (used == sizeof(buf))
        flush();
}

int main(void)
{
    alu_run();
    flush();
    return 0;
}
