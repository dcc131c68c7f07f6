/* code16: a 16-bit code segment (D=0) entered by a far JMP, with a B=0
 * stack segment whose ESP[31:16] must survive every stack operation:
 *
 *   - 16-bit arithmetic and flags; 0x66 (32-bit operands, CWDE, CWD);
 *   - 16-bit addressing wrapping at 64 KiB, LEA with 0x66 and/or 0x67,
 *     a 0x67 SIB operand;
 *   - PUSH/POP word and dword, PUSHA/POPA, PUSH DS (16 and 32 bit);
 *   - near CALL/RET (and CALLL/RETL with 0x66), RET imm16, far CALL/RET
 *     16-bit and with 0x66, a far JMP inside the segment;
 *   - MOVS/STOS/CMPS/LODS with SI/DI/CX (upper halves untouched), REP,
 *     REPE, DF=1, and 0x67 REP MOVSB using ECX/ESI/EDI;
 *   - LOOP with CX and with ECX (0x67), JCXZ vs JECXZ;
 *   - ENTER (levels 0 and 2) and LEAVE with 16-bit operands;
 *   - INT n through a 16-bit interrupt gate (FLAGS/CS/IP words, IRET
 *     restores FLAGS), and through a 32-bit gate (dword frame pushed through
 *     SP, IRETL back), then a 0x66 far JMP back to 32-bit code.
 * code16_asm.S holds the 16-bit code and stores each result in a slot. */
#include "rt.h"

#define CODE16 0x30
#define DS16 0x38
#define SS16 0x40

u32 r16[256] __attribute__((aligned(16)));
u8 stack16[8192] __attribute__((aligned(16)));
u32 c16_saved_esp;
extern char c16_start[], c16_isr[], h32from16[];
extern const u32 c16_offsets[7];
void c16_run(void);

struct slot {
    const char *name;
    u32 slot, expected;
};

void kmain(u32 magic, u32 mbi)
{
    gdt_set(6, (u32)c16_start, 0xffff, 0x9a, 0x0);
    gdt_set(7, (u32)r16, 0xffff, 0x92, 0x0);
    gdt_set(8, (u32)stack16, 0xffff, 0x92, 0x0);
    idt_gate(0x41, (u32)c16_isr - (u32)c16_start, CODE16, 0x86);
    idt_gate(0x42, (u32)h32from16, SEL_KCODE, 0x8e);
    c16_run();
    u16 cs;
    asm volatile("movw %%cs, %0" : "=r"(cs));
    check("back_in_32bit_cs", cs, SEL_KCODE);

    const u32 *o = c16_offsets;
    const struct slot slots[] = {
        { "add16_result_and_flags", 1, 0x80000055 },
        { "inc16_flags", 0, 0x08940000 },
        { "o32_add", 2, 0x23456789 },
        { "o16_mov_keeps_high", 3, 0x23451234 },
        { "mul16_dx_ax", 4, 0x00123400 },
        { "div16_rem_quot", 5, 0x0006008e },
        { "cwde", 6, 0xffff8000 },
        { "cwd_edx", 57, 0x7777ffff },
        { "a16_wraps_64k", 7, 0xbeef },
        { "o32_lea_a16", 8, 0x118 },
        { "o32_a32_lea", 9, 0x20118 },
        { "a32_sib_load", 10, 0xbeef },
        { "esp_start", 12, 0x5a5a1ff0 },
        { "pushw_esp", 13, 0x5a5a1fee },
        { "pushl_esp", 14, 0x5a5a1fea },
        { "popw_popw", 15, 0x89abcdef },
        { "popw_then_push_ds", 16, 0x00381234 },
        { "pushaw_esp", 17, 0x5a5a1fe0 },
        { "o32_push_ds_esp", 11, 0x5a5a1fec },
        { "call_pushed_ip", 18, o[0] },
        { "call_esp", 19, 0x5a5a1fee },
        { "o32_call_pushed_eip", 20, o[1] },
        { "ret_imm_esp", 21, 0x5a5a1ff0 },
        { "lcall16_pushed_cs_ip", 22, (CODE16 << 16) | o[2] },
        { "o32_lcall_pushed_eip", 23, o[3] },
        { "o32_lcall_pushed_cs", 24, CODE16 },
        { "rep_movsb_ecx", 25, 0xabcd0000 },
        { "rep_movsb_esi", 26, 0x11110145 },
        { "rep_movsb_edi", 27, 0x22220165 },
        { "rep_movsb_data0", 28, 0x44434241 },
        { "rep_movsb_data1", 29, 0x00000045 },
        { "rep_stosw_data", 30, 0x77777777 },
        { "rep_stosw_last_di", 31, 0x01767777 },
        { "repe_cmpsb_cx_si", 32, 0x01460002 },
        { "repe_cmpsb_di", 33, 0x166 },
        { "a32_rep_movsb_data", 34, 0x00434241 },
        { "a32_rep_movsb_esi", 35, 0x143 },
        { "std_lodsw", 36, 0x01404443 },
        { "loop_cx_count", 37, 3 },
        { "loop_cx_ecx", 38, 0x00010000 },
        { "a32_loop_count", 39, 2 },
        { "jcxz_taken_jecxz_not", 40, 2 },
        { "enter0_esp", 41, 0x5a5a1fe6 },
        { "enter0_ebp", 42, 0x6b6b1fee },
        { "enter0_saved_bp", 43, 0x1234 },
        { "leave_esp", 44, 0x5a5a1ff0 },
        { "leave_ebp", 45, 0x6b6b1234 },
        { "enter2_esp", 46, 0x5a5a1fe6 },
        { "enter2_ebp", 47, 0x6b6b1fee },
        { "enter2_copied_and_frame", 48, 0x1feecafe },
        { "enter2_leave_ebp", 58, 0x6b6b1234 },
        { "int16_gate_esp", 49, 0x5a5a1fea },
        { "int16_gate_cs_ip", 50, (CODE16 << 16) | o[4] },
        { "int16_gate_flags", 51, 0x0803 },
        { "iret16_flags", 52, 0x0801 },
        { "iret16_esp", 59, 0x5a5a1ff0 },
        { "int32_gate_from16_esp", 53, 0x5a5a1fe4 },
        { "int32_gate_from16_eip", 54, o[5] },
        { "int32_gate_from16_cs", 55, CODE16 },
        { "int32_gate_handler_cs", 56, SEL_KCODE },
        { "iretl_to16_esp", 60, 0x5a5a1ff0 },
    };
    for (u32 i = 0; i < sizeof(slots) / sizeof(slots[0]); i++)
        check(slots[i].name, r16[slots[i].slot], slots[i].expected);
}
