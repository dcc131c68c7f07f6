/* The ALU test core, built twice: into the alu kernel and into alu-native
 * (static i386 Linux program). Both print through tprintf, so their outputs
 * must be byte-identical; the real CPU is the oracle.
 *
 * Each test runs one instruction in inline asm between POPF (known input
 * flags) and PUSHF, and prints the result and EFLAGS masked to the flags the
 * SDM defines for that instruction and operand. */
#ifndef BT86_ALU_CORE_H
#define BT86_ALU_CORE_H
#include "types.h"
#include "fmt.h"

#define F_C 0x001u
#define F_P 0x004u
#define F_A 0x010u
#define F_Z 0x040u
#define F_S 0x080u
#define F_O 0x800u
#define F_ALL (F_C | F_P | F_A | F_Z | F_S | F_O)
#define F_LOGIC (F_C | F_P | F_Z | F_S | F_O) /* AF undefined */

void alu_run(void);
void alu_arith(void);  /* alu_core.c: add..test, inc..not, shifts, mul/div */
void alu_more(void);   /* alu_more.c: BCD, bits, setcc, xchg family, lea, strings */
void alu_stack(void);  /* alu_stack.c: high bytes, flag ops, stack, xlat, loop */

extern const u32 alu_vals[3][6]; /* edge values for 8/16/32 bits */
extern const int alu_bits[3];
#endif
