/*
 * vmlinux_min.h: the few kernel types faultlat.bpf.c needs, for build
 * machines without /sys/kernel/btf/vmlinux (the build then copies this file
 * to vmlinux.h). Layouts are relocated at load time (CO-RE) against the
 * running kernel's BTF, so only the field names must be right. x86-64.
 */
#ifndef VMLINUX_MIN_H
#define VMLINUX_MIN_H
/* Tells bpf_tracing.h to use the kernel's pt_regs field names. */
#define __VMLINUX_H__

#include <linux/types.h>
#include <linux/bpf.h>

typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s8 s8;
typedef __s16 s16;
typedef __s32 s32;
typedef __s64 s64;
typedef _Bool bool;

struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
	unsigned long ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
} __attribute__((preserve_access_index));

#endif
