/* Fixed-width types shared by the runtime, the kernels and the native ALU build. */
#ifndef BT86_TYPES_H
#define BT86_TYPES_H
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef signed char s8;
typedef short s16;
typedef int s32;
typedef long long s64;
#endif
