/*
 * ptvmm-exit N — make the VMM exit with status N (0..255), for tests inside the guest.
 *
 * Writes the byte N to I/O port 0x501: ptvmm's debug-exit port. (Under QEMU the same write hits
 * `-device isa-debug-exit,iobase=0x501,iosize=1`, which exits with status (N<<1)|1.)
 * The Debian cloud kernel has no /dev/port (CONFIG_DEVPORT is off), so this is a tiny static
 * program: ioperm(0x501) + outb. No libc: built by guest-images/build with
 *   cc -static -nostdlib -ffreestanding -fno-tree-loop-distribute-patterns -Os -fno-stack-protector -fno-pie -no-pie -o ptvmm-exit ptvmm-exit.c
 */
static long sys3(long n, long a, long b, long c)
{
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return r;
}

static void say(const char *s)
{
	long n = 0;
	while (s[n])
		n++;
	sys3(1 /* write */, 2, (long)s, n);
}

static void leave(int status)
{
	sys3(60 /* exit */, status, 0, 0);
	for (;;)
		;
}

void ptvmm_exit_main(long *sp)
{
	long argc = sp[0];
	char **argv = (char **)(sp + 1);
	const char *p;
	unsigned v = 0;

	if (argc != 2 || !argv[1][0]) {
		say("usage: ptvmm-exit N   (N = 0..255; the VMM exits with status N)\n");
		leave(2);
	}
	for (p = argv[1]; *p; p++) {
		if (*p < '0' || *p > '9' || v > 255) {
			say("ptvmm-exit: N must be a number in 0..255\n");
			leave(2);
		}
		v = v * 10 + (unsigned)(*p - '0');
	}
	if (v > 255) {
		say("ptvmm-exit: N must be a number in 0..255\n");
		leave(2);
	}
	if (sys3(173 /* ioperm */, 0x501, 1, 1) != 0) {
		say("ptvmm-exit: ioperm(0x501) failed (not root?)\n");
		leave(1);
	}
	__asm__ volatile("outb %b0, %w1" : : "a"(v), "Nd"(0x501));
	say("ptvmm-exit: the VMM did not exit (no debug-exit device at port 0x501?)\n");
	leave(1);
}

__asm__(".text\n.globl _start\n_start:\n\tmov %rsp, %rdi\n\tand $-16, %rsp\n\tcall ptvmm_exit_main\n\thlt\n");
