/* bt86 loader probe: prints the Multiboot v1 entry state QEMU gives a kernel
 * over COM1, then exits through isa-debug-exit (port 0xF4).
 * Built twice: as a plain ELF32 Multiboot kernel, and (with -DKLUDGE) with
 * header flag bit 16 so QEMU loads it through the a.out kludge fields.
 * EXTRA_FLAGS adds header flag bits (e.g. 4 = video mode) for probing. */
        .intel_syntax noprefix
#ifndef EXTRA_FLAGS
#define EXTRA_FLAGS 0
#endif
#ifdef KLUDGE
#define MB_FLAGS (0x00010003 | EXTRA_FLAGS)
#else
#define MB_FLAGS (0x00000003 | EXTRA_FLAGS)
#endif
        .section .text
        .globl _start
        .align 4
mb_header:
        .long 0x1BADB002
        .long MB_FLAGS
        .long -(0x1BADB002 + MB_FLAGS)
        .long mb_header         /* header_addr   (used only with bit 16) */
        .long _start_of_image   /* load_addr */
        .long _edata            /* load_end_addr */
        .long _end              /* bss_end_addr */
        .long _start            /* entry_addr */
#ifdef PAD
        .fill 16, 1, 0x90
#endif
_start:
        mov [s_eax], eax
        mov [s_ebx], ebx
        mov [s_ecx], ecx
        mov [s_edx], edx
        mov [s_esi], esi
        mov [s_edi], edi
        mov [s_ebp], ebp
        mov [s_esp], esp
        mov esp, offset stack_top
        pushfd
        pop eax
        mov [s_efl], eax
        mov ax, cs
        mov [s_cs], ax
        mov ax, ds
        mov [s_ds], ax
        mov ax, es
        mov [s_es], ax
        mov ax, fs
        mov [s_fs], ax
        mov ax, gs
        mov [s_gs], ax
        mov ax, ss
        mov [s_ss], ax
        sgdt [s_gdtr]
        sidt [s_idtr]
        mov eax, cr0
        mov [s_cr0], eax
        mov eax, cr3
        mov [s_cr3], eax
        mov eax, cr4
        mov [s_cr4], eax
        str ax
        mov [s_tr], ax
        sldt ax
        mov [s_ldtr], ax

        /* registers */
        lea esi, n_eax;  mov eax, [s_eax]; call field
        lea esi, n_ebx;  mov eax, [s_ebx]; call field
        lea esi, n_ecx;  mov eax, [s_ecx]; call field
        lea esi, n_edx;  mov eax, [s_edx]; call field
        lea esi, n_esi;  mov eax, [s_esi]; call field
        lea esi, n_edi;  mov eax, [s_edi]; call field
        lea esi, n_ebp;  mov eax, [s_ebp]; call field
        lea esi, n_esp;  mov eax, [s_esp]; call field
        lea esi, n_efl;  mov eax, [s_efl]; call field
        lea esi, n_cr0;  mov eax, [s_cr0]; call field
        lea esi, n_cr3;  mov eax, [s_cr3]; call field
        lea esi, n_cr4;  mov eax, [s_cr4]; call field
        lea esi, n_cs;   movzx eax, word ptr [s_cs]; call field
        lea esi, n_ds;   movzx eax, word ptr [s_ds]; call field
        lea esi, n_es;   movzx eax, word ptr [s_es]; call field
        lea esi, n_fs;   movzx eax, word ptr [s_fs]; call field
        lea esi, n_gs;   movzx eax, word ptr [s_gs]; call field
        lea esi, n_ss;   movzx eax, word ptr [s_ss]; call field
        lea esi, n_tr;   movzx eax, word ptr [s_tr]; call field
        lea esi, n_ldtr; movzx eax, word ptr [s_ldtr]; call field
        lea esi, n_gdtb; mov eax, [s_gdtr+2]; call field
        lea esi, n_gdtl; movzx eax, word ptr [s_gdtr]; call field
        lea esi, n_idtb; mov eax, [s_idtr+2]; call field
        lea esi, n_idtl; movzx eax, word ptr [s_idtr]; call field
        /* segment attributes through LAR/LSL (what the GDT says) */
        mov ax, [s_cs]; call larlsl
        mov ax, [s_ds]; call larlsl
        mov ax, [s_ss]; call larlsl
        /* the GDT, up to 16 descriptors */
        movzx ecx, word ptr [s_gdtr]
        inc ecx
        shr ecx, 3
        cmp ecx, 16
        jbe 1f
        mov ecx, 16
1:      mov ebx, [s_gdtr+2]
2:      test ecx, ecx
        jz 3f
        lea esi, n_gdte; mov eax, ebx; call field
        lea esi, n_lo; mov eax, [ebx]; call field
        lea esi, n_hi; mov eax, [ebx+4]; call field
        add ebx, 8
        dec ecx
        jmp 2b
3:
        /* the multiboot info: 30 dwords raw */
        mov ebx, [s_ebx]
        xor ecx, ecx
4:      lea esi, n_mbi; call puts; mov eax, ecx; shl eax, 2; call hex32
        mov eax, [ebx+ecx*4]; lea esi, n_eq; call field
        inc ecx
        cmp ecx, 30
        jb 4b
        /* cmdline */
        lea esi, n_cmdl; call puts
        mov esi, [ebx+16]; call puts
        lea esi, n_q; call puts
        /* boot loader name */
        lea esi, n_bln; call puts
        mov esi, [ebx+64]; call puts
        lea esi, n_q; call puts
        /* modules */
        mov ecx, [ebx+20]
        mov edi, [ebx+24]
5:      test ecx, ecx
        jz 6f
        lea esi, n_mod;  mov eax, edi; call field
        lea esi, n_mst;  mov eax, [edi]; call field
        lea esi, n_men;  mov eax, [edi+4]; call field
        lea esi, n_mstr; mov eax, [edi+8]; call field
        lea esi, n_mres; mov eax, [edi+12]; call field
        lea esi, n_mstrs; call puts
        mov esi, [edi+8]; call puts
        lea esi, n_q; call puts
        lea esi, n_mfirst; mov eax, [edi]; mov eax, [eax]; call field
        add edi, 16
        dec ecx
        jmp 5b
6:      /* memory map */
        mov edi, [ebx+48]
        mov edx, edi
        add edx, [ebx+44]
7:      cmp edi, edx
        jae 8f
        lea esi, n_mm;   mov eax, edi; call field
        lea esi, n_msz;  mov eax, [edi]; call field
        lea esi, n_mbl;  mov eax, [edi+4]; call field
        lea esi, n_mbh;  mov eax, [edi+8]; call field
        lea esi, n_mll;  mov eax, [edi+12]; call field
        lea esi, n_mlh;  mov eax, [edi+16]; call field
        lea esi, n_mty;  mov eax, [edi+20]; call field
        add edi, [edi]
        add edi, 4
        jmp 7b
8:      /* our own image bounds, to see where things went relative to it */
        lea esi, n_img;  mov eax, offset _start_of_image; call field
        lea esi, n_edat; mov eax, offset _edata; call field
        lea esi, n_iend; mov eax, offset _end; call field
        /* a probe of low memory: first dwords of the IVT and of 0x400 (BDA) */
        lea esi, n_ivt; mov eax, [0]; call field
        lea esi, n_bda; mov eax, [0x400]; call field
        lea esi, n_bss; mov eax, [bss_probe]; call field
        /* raw dumps: the low-memory area holding mmap and info, and the
         * page after the image (module list and strings) */
        mov ebx, 0x9000; mov ecx, 0x160; call dump
        mov ebx, offset _end; add ebx, 0xfff; and ebx, 0xfffff000; mov ecx, 0x18; call dump
        lea esi, n_done; call puts
        mov al, 0
        out 0xf4, al
        hlt

/* ebx = address, ecx = dword count: prints "dump@ADDR: dwords" 4 per line */
dump:   test ecx, ecx
        jz 2f
        lea esi, n_dump; call puts
        mov eax, ebx; call hex32
        mov al, ':'; call putc
        mov edx, 4
1:      mov al, ' '; call putc
        mov eax, [ebx]; call hex32
        add ebx, 4
        dec ecx
        jz 3f
        dec edx
        jnz 1b
        mov al, 10; call putc
        jmp dump
3:      mov al, 10; call putc
2:      ret

/* eax=selector: prints its LAR and LSL */
larlsl: push eax
        movzx eax, ax
        lea esi, n_sel; call field
        pop eax
        push eax
        lar eax, eax
        lea esi, n_lar; call field
        pop eax
        movzx eax, ax
        lsl eax, eax
        lea esi, n_lsl; call field
        ret

/* esi = name (NUL terminated), eax = value: prints "name: 0xXXXXXXXX\n" */
field:  push eax
        call puts
        pop eax
        call hex32
        mov al, 10
        call putc
        ret

hex32:  push ecx
        push edx
        mov edx, eax
        mov ecx, 8
1:      rol edx, 4
        mov eax, edx
        and eax, 15
        mov al, [hexd+eax]
        call putc
        loop 1b
        pop edx
        pop ecx
        ret

puts:   push eax
1:      mov al, [esi]
        test al, al
        jz 2f
        call putc
        inc esi
        jmp 1b
2:      pop eax
        ret

putc:   push edx
        push eax
        mov dx, 0x3fd
1:      in al, dx
        test al, 0x20
        jz 1b
        pop eax
        mov dx, 0x3f8
        out dx, al
        pop edx
        ret

        .section .data
hexd:   .ascii "0123456789abcdef"
n_eax:  .asciz "eax: 0x"
n_ebx:  .asciz "ebx: 0x"
n_ecx:  .asciz "ecx: 0x"
n_edx:  .asciz "edx: 0x"
n_esi:  .asciz "esi: 0x"
n_edi:  .asciz "edi: 0x"
n_ebp:  .asciz "ebp: 0x"
n_esp:  .asciz "esp: 0x"
n_efl:  .asciz "eflags: 0x"
n_cr0:  .asciz "cr0: 0x"
n_cr3:  .asciz "cr3: 0x"
n_cr4:  .asciz "cr4: 0x"
n_cs:   .asciz "cs: 0x"
n_ds:   .asciz "ds: 0x"
n_es:   .asciz "es: 0x"
n_fs:   .asciz "fs: 0x"
n_gs:   .asciz "gs: 0x"
n_ss:   .asciz "ss: 0x"
n_tr:   .asciz "tr: 0x"
n_ldtr: .asciz "ldtr: 0x"
n_gdtb: .asciz "gdtr.base: 0x"
n_gdtl: .asciz "gdtr.limit: 0x"
n_idtb: .asciz "idtr.base: 0x"
n_idtl: .asciz "idtr.limit: 0x"
n_sel:  .asciz "sel: 0x"
n_lar:  .asciz "  lar: 0x"
n_lsl:  .asciz "  lsl: 0x"
n_gdte: .asciz "gdt@0x"
n_lo:   .asciz "  lo: 0x"
n_hi:   .asciz "  hi: 0x"
n_mbi:  .asciz "mbi+0x"
n_eq:   .asciz "]: 0x"
n_cmdl: .asciz "cmdline: \""
n_bln:  .asciz "boot_loader_name: \""
n_q:    .asciz "\"\n"
n_mod:  .asciz "module@0x"
n_mst:  .asciz "  mod_start: 0x"
n_men:  .asciz "  mod_end: 0x"
n_mstr: .asciz "  string: 0x"
n_mres: .asciz "  reserved: 0x"
n_mstrs: .asciz "  string: \""
n_mfirst: .asciz "  first dword: 0x"
n_mm:   .asciz "mmap@0x"
n_msz:  .asciz "  size: 0x"
n_mbl:  .asciz "  base_lo: 0x"
n_mbh:  .asciz "  base_hi: 0x"
n_mll:  .asciz "  len_lo: 0x"
n_mlh:  .asciz "  len_hi: 0x"
n_mty:  .asciz "  type: 0x"
n_img:  .asciz "image.start: 0x"
n_edat: .asciz "image.edata: 0x"
n_iend: .asciz "image.end: 0x"
n_ivt:  .asciz "mem[0]: 0x"
n_bda:  .asciz "mem[0x400]: 0x"
n_bss:  .asciz "bss (must be 0): 0x"
n_dump: .asciz "dump@0x"
n_done: .asciz "probe: done\n"
        .align 4
        /* odd-sized padding so the image end is not page aligned */
        .fill 0x123, 1, 0x5a

        .section .bss
        .align 4
s_eax: .long 0
s_ebx: .long 0
s_ecx: .long 0
s_edx: .long 0
s_esi: .long 0
s_edi: .long 0
s_ebp: .long 0
s_esp: .long 0
s_efl: .long 0
s_cr0: .long 0
s_cr3: .long 0
s_cr4: .long 0
s_cs: .word 0
s_ds: .word 0
s_es: .word 0
s_fs: .word 0
s_gs: .word 0
s_ss: .word 0
s_tr: .word 0
s_ldtr: .word 0
s_gdtr: .word 0
        .long 0
s_idtr: .word 0
        .long 0
bss_probe: .long 0
        .space 0x2345
stack_top:
