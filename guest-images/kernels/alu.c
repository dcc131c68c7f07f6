/* alu: integer ALU, flags and string instructions (see alu_core.c). Prints
 * only what alu_core prints, so that the output equals alu-native's. */
#include "rt.h"
#include "alu_core.h"

void kmain(u32 magic, u32 mbi) { alu_run(); }
